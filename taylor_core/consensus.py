"""One answer per evidence reading across the ranks that share a model split across processes.

When a model is split across ``torch.distributed`` ranks (sequence-parallel attention, FSDP), every rank runs
the same sampling run on its own shard and the blocks exchange tensors with the other ranks: a rank that skips
a block while another computes it hangs or corrupts the run. Each rank reads its own evidence (a probe error
on its shard, a forecast that is not finite on its shard only, history it lacks), so every reading that can
differ goes through ``Consensus.agree`` before the decision reads it: errors become their mean over the ranks,
failures any rank's failure. ``Consensus`` itself (one process) returns the reading unchanged and calls no
collective; ``GroupConsensus`` makes one ``all_reduce`` of a 12-element tensor per reading (one per group
when it reduces over several).

Ownership: a consensus holds only the process groups it was given, never tensors of the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

LEVELS = 8
"""Levels are small ints in ``range(LEVELS)``; a lower one is a fallback of a higher one."""


@dataclass(frozen=True)
class Reading:
    """One rank's reading at one decision point: ``error`` (a relative L1 error, None where the point reads no
    error), ``failed`` (this rank cannot go on forecasting at this point: no history, a forecast that is not
    finite, a shape it cannot take) and ``level`` (the level this rank runs at, None where the point reads none).

    Agreed: ``error`` the mean over the ranks that read one (``inf`` when one is not finite), ``failed`` when any
    rank failed or the ranks' levels differ, ``level`` the lowest (the fallback every rank then takes)."""

    error: float | None = None
    failed: bool = False
    level: int | None = None


class Consensus:
    """The single-rank form: every reading is already everyone's (no collective)."""

    size = 1

    def agree(self, reading: Reading) -> Reading:
        """The reading every rank acts on; here ``reading`` itself."""
        return reading

    def all_ok(self, ok: bool) -> bool:
        """True when no rank failed (``ok`` is this rank's success)."""
        return not self.agree(Reading(failed=not ok)).failed

    def mean_error(self, error: float) -> float:
        """The mean of every rank's ``error`` (``inf`` when any rank's is not finite)."""
        agreed = self.agree(Reading(error=error)).error
        return math.inf if agreed is None else agreed


class GroupConsensus(Consensus):
    """The ``torch.distributed`` form over ``groups``: one ``all_reduce`` (sum) per group, in order. One group is
    the usual case (the ranks sharing the model); several orthogonal groups (e.g. xDiT's sequence-parallel and
    CFG-parallel groups when data-parallel replicas share the world) reduce over their product. ``device`` is
    where the reading's tensor lives (CUDA for NCCL, CPU for gloo)."""

    def __init__(self, groups: Sequence, device: torch.device | str = "cpu") -> None:
        self.groups = tuple(groups)
        self.device = torch.device(device)
        self.size = math.prod(dist.get_world_size(group) for group in self.groups)

    def agree(self, reading: Reading) -> Reading:
        error, level = reading.error, reading.level
        finite = error is not None and math.isfinite(error)
        # [sum of the finite errors, ranks with an error, ranks with a non-finite error, ranks that failed,
        #  ranks at each level]
        sums = torch.zeros(4 + LEVELS, dtype=torch.float64)
        sums[:4] = torch.tensor([error if finite else 0.0, float(error is not None),
                                 float(error is not None and not finite), float(reading.failed)])
        if level is not None:
            sums[4 + level] = 1.0
        sums = sums.to(self.device)
        for group in self.groups:
            dist.all_reduce(sums, op=dist.ReduceOp.SUM, group=group)
        total, counted, non_finite, failures, *at_level = sums.tolist()
        levels = [index for index, count in enumerate(at_level) if count > 0]
        mean = None if counted == 0 else (math.inf if non_finite else total / counted)
        return Reading(error=mean, failed=failures > 0 or len(levels) > 1, level=levels[0] if levels else None)
