"""Consensus: the single-rank form calls nothing; the gloo form gives every rank the same answer with one
all_reduce per reading (3 forked CPU ranks)."""

from __future__ import annotations

import math

import pytest
import torch.distributed as dist
from ranks_harness import run_ranks

from taylor_core.consensus import Consensus, GroupConsensus, Reading

READINGS = (  # per rank: the Reading each of 3 ranks reads at one point
    [Reading(error=0.1), Reading(error=0.2), Reading(error=0.6)],
    [Reading(error=0.1), Reading(error=math.inf), Reading(error=0.6)],
    [Reading(error=0.1), Reading(error=math.nan), Reading(error=0.6)],
    [Reading(failed=False), Reading(failed=True), Reading(failed=False)],
    [Reading(level=2), Reading(level=1), Reading(level=2)],
    [Reading(level=1), Reading(level=1), Reading(level=1)],
    [Reading(), Reading(), Reading()],
)
AGREED = (
    Reading(error=pytest.approx(0.3), failed=False),
    Reading(error=math.inf, failed=False),
    Reading(error=math.inf, failed=False),
    Reading(failed=True),
    Reading(failed=True, level=1),  # levels differ: everyone computes while the higher ones step down
    Reading(failed=False, level=1),
    Reading(),
)


def test_single_rank_answers_each_reading_itself_and_calls_no_collective(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a collective was called with one rank")

    monkeypatch.setattr(dist, "all_reduce", forbidden)
    consensus = Consensus()
    for readings in READINGS:
        assert consensus.agree(readings[0]) == readings[0]
    assert consensus.all_ok(False) is False and consensus.all_ok(True) is True
    assert consensus.mean_error(0.25) == 0.25
    assert consensus.size == 1


def _agree_on_every_reading(rank: int, world: int) -> tuple[list[Reading], int]:
    calls = []
    all_reduce = dist.all_reduce

    def counted(tensor, *args, **kwargs):
        calls.append(tensor.numel())
        return all_reduce(tensor, *args, **kwargs)

    dist.all_reduce = counted
    consensus = GroupConsensus([None])
    assert consensus.size == world
    answers = [consensus.agree(readings[rank]) for readings in READINGS]
    answers.append(Reading(failed=not consensus.all_ok(rank != 2)))
    answers.append(Reading(error=consensus.mean_error([0.5, 1.0, 1.5][rank])))
    return answers, len(calls)


def test_every_rank_gets_the_same_answer_from_one_collective_per_reading():
    answers = run_ranks(_agree_on_every_reading, 3)
    for agreed, collectives in answers:
        assert collectives == len(READINGS) + 2
        assert agreed[:len(AGREED)] == list(AGREED)
        assert agreed[-2:] == [Reading(failed=True), Reading(error=pytest.approx(1.0))]
