"""One decision per step across ranks: the tiny Flux through ComfyUI's real KSampler on 2 forked CPU ranks of a
gloo group, each rank on its own shard of the input (its own conditioning and noise, as CFG-parallel ranks hold
different conds and sequence-parallel ranks different tokens), the model marked as split across them, and a
collective inside every block (as sequence-parallel attention has) that fails the run as soon as the ranks'
block calls differ. A rank whose decision differed would hang or fail there (bounded: ``ranks_harness``).
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from ranks_harness import run_ranks
from test_flux_taylorseer import FLUX_STACKS

STEPS = 12
THRESHOLD = 0.4
SHARDS = ((1, 1, 3.5), (2, 9, 1.0))  # per rank: (noise seed, cond seed, guidance)
# On their own, shard 0's gate error at the first gated step is above THRESHOLD, shard 1's below (0.45 and 0.32
# on the tiny Flux): ranks deciding alone would disagree there; their mean (0.38) forecasts on both.


def gate(host, model, threshold: float = THRESHOLD):
    return host.run_node("CGTaylorGate", model, threshold, 1, 1, 3, 1, 0.0, 1.0, 0, "sigma", "auto")[0]


def taylorseer(host, model, level: str):
    return host.run_node("TaylorSeerApply", model, target_speedup=0, interval=3, max_order=1, warmup_steps=2,
                         tail_steps=1, start_percent=0.0, end_percent=1.0, level=level, clock="sigma",
                         cache_device="auto")[0]


def _sample(host, patched, shard: tuple[int, int, float]) -> dict:
    """One KSampler run on one CPU thread (as every rank runs: the same float reduction order); ``full``: the
    timesteps of the steps whose model call ran the last block (euler: one evaluation per step), in order."""
    diffusion_model = patched.model.diffusion_model
    timestep, full = [None], []

    def note_timestep(_module, inputs):
        timestep[0] = float(inputs[1].reshape(-1)[0])

    def note_full(*_):
        if not full or full[-1] != timestep[0]:  # a forecast redone in full calls the model twice in its step
            full.append(timestep[0])

    handles = [diffusion_model.register_forward_pre_hook(note_timestep),
               diffusion_model.single_blocks[-1].register_forward_hook(note_full)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed, cond, guidance = shard
        out = host.ksample(patched, host.flux_cond(cond, guidance=guidance), host.flux_cond(2), host.empty_latent(),
                           steps=STEPS, seed=seed)
    finally:
        torch.set_num_threads(threads)
        for handle in handles:
            handle.remove()
    return {"out": out, "full": full}


def _block_collectives(diffusion_model: torch.nn.Module) -> list:
    """The collective a sequence-parallel attention makes inside each block: a forward hook on every block that
    all-reduces which block of which model call this rank is running, and fails when the ranks' differ."""
    calls = [0]

    def count_call(_module, _inputs):
        calls[0] += 1

    def exchange_for(position: int):
        def exchange(_module, _inputs, _output):
            tag = calls[0] * 1000 + position
            tags = torch.tensor([tag, -tag], dtype=torch.int64)
            dist.all_reduce(tags, op=dist.ReduceOp.MAX)
            if int(tags[0]) != -int(tags[1]):
                raise RuntimeError(f"ranks ran different blocks: model call and block {divmod(tag, 1000)} here, "
                                   f"tags {-int(tags[1])} to {int(tags[0])} across the ranks")
        return exchange

    blocks = [block for name in FLUX_STACKS for block in getattr(diffusion_model, name)]
    return [diffusion_model.register_forward_pre_hook(count_call),
            *(block.register_forward_hook(exchange_for(position)) for position, block in enumerate(blocks))]


def _poison(block: torch.nn.Module):
    """A forward hook that makes ``block``'s outputs NaN: everything this rank computes after it is not finite."""
    return block.register_forward_hook(lambda _module, _inputs, output: tuple(o * float("nan") for o in output))


def _split_rank(rank: int, world: int, host, patched, shards, poisoned: int | None = None,
                marked: bool = True) -> dict:
    """A rank's run of ``patched`` on its shard, the model marked as split across the group (unless not
    ``marked``: then no block collective either), rank ``poisoned``'s first block returning NaN; numpy out, and
    how many all_reduces of the pack's consensus it made (float64: the block collectives are int64). ``patched``:
    one model for every rank, or a tuple of one per rank."""
    split = (patched[rank] if isinstance(patched, tuple) else patched).clone()
    split.model_options.setdefault("transformer_options", {})[host.pack_module("nodes.ranks").SPLIT_KEY] = marked
    agreed = []
    all_reduce = dist.all_reduce

    def counted(tensor, *args, **kwargs):
        if tensor.dtype == torch.float64:
            agreed.append(tensor.numel())
        return all_reduce(tensor, *args, **kwargs)

    dist.all_reduce = counted
    handles = _block_collectives(split.model.diffusion_model) if world > 1 and marked else []
    if rank == poisoned:
        handles.append(_poison(split.model.diffusion_model.double_blocks[0]))
    try:
        result = _sample(host, split, shards[rank])
    finally:
        dist.all_reduce = all_reduce
        for handle in handles:
            handle.remove()
    return {**result, "out": result["out"].numpy(), "collectives": len(agreed)}


def _on_ranks(host, patched, shards, world: int = 2, poisoned: int | None = None, marked: bool = True) -> list[dict]:
    return run_ranks(_split_rank, world, host, patched, shards, poisoned, marked)


def test_the_gate_decides_alike_on_every_rank_of_different_shards(host, flux):
    """Different latents and noise per rank: different probe errors, one verdict (their mean) per step."""
    answers = _on_ranks(host, gate(host, flux), SHARDS)
    full = answers[0]["full"]
    assert all(answer["full"] == full for answer in answers)
    assert 4 < len(full) < STEPS  # the gate forecast some steps and computed others
    forced, forecasts = 4, STEPS - len(full)  # warm-up 3, tail 1: the other steps are gated
    for answer in answers:
        assert torch.isfinite(torch.from_numpy(answer["out"])).all()
        # one agreement per evaluation, one per gated probe, one per forecast's end
        assert answer["collectives"] == STEPS + (STEPS - forced) + forecasts


def test_the_same_shard_on_every_rank_gives_the_single_process_run_bit_for_bit(host, flux):
    """The mean of equal errors is that error: every rank's run is the single-process run, bits and steps."""
    patched = gate(host, flux)
    single = _sample(host, patched, SHARDS[1])
    answers = _on_ranks(host, patched, (SHARDS[1], SHARDS[1]))
    assert 4 < len(single["full"]) < STEPS
    for answer in answers:
        assert answer["full"] == single["full"]
        assert torch.equal(torch.from_numpy(answer["out"]), single["out"])


@pytest.mark.parametrize("level", ["residual", "output"])
def test_a_schedule_needs_no_agreement_beyond_its_checks_and_keeps_each_shards_bits(host, flux, level):
    """The interval schedule decides from the step alone: each rank's run is the single-process run of its
    shard, bit for bit, with one agreement per evaluation and one per forecast's check."""
    patched = taylorseer(host, flux, level)
    answers = _on_ranks(host, patched, SHARDS)
    for rank, answer in enumerate(answers):
        single = _sample(host, patched, SHARDS[rank])
        assert answer["full"] == single["full"] == answers[0]["full"]
        assert torch.equal(torch.from_numpy(answer["out"]), single["out"])
        assert answer["collectives"] == STEPS + (STEPS - len(single["full"]))


def test_a_forecast_failing_on_one_rank_is_computed_on_every_rank(host, flux):
    """Rank 1's blocks give NaN, so each of its forecasts is not finite: every rank recomputes every scheduled
    forecast in full, so rank 0's latent is the unpatched model's on its shard, bit for bit."""
    patched = taylorseer(host, flux, "residual")
    planned_full = len(_sample(host, patched, SHARDS[0])["full"])
    answers = _on_ranks(host, patched, SHARDS, poisoned=1)
    assert answers[0]["full"] == answers[1]["full"] and len(answers[0]["full"]) == STEPS
    assert torch.equal(torch.from_numpy(answers[0]["out"]), _sample(host, flux, SHARDS[0])["out"])
    assert not torch.isfinite(torch.from_numpy(answers[1]["out"])).any()
    for answer in answers:  # one agreement per evaluation, one per forecast's end (every one failed)
        assert answer["collectives"] == STEPS + (STEPS - planned_full)


def test_a_rank_at_a_lower_level_brings_every_rank_down_to_it(host, flux):
    """Rank 1 runs at the output level (as after a fall-back), rank 0 at the residual level: rank 0 follows it
    down at the first evaluation, so each rank's run is its shard's single-process run at the output level."""
    output = taylorseer(host, flux, "output")
    answers = _on_ranks(host, (taylorseer(host, flux, "residual"), output), SHARDS)
    for rank, answer in enumerate(answers):
        single = _sample(host, output, SHARDS[rank])
        assert answer["full"] == single["full"] and len(single["full"]) < STEPS
        assert torch.equal(torch.from_numpy(answer["out"]), single["out"])


@pytest.mark.parametrize(("world", "marked"), [(1, True), (2, False)])
def test_one_rank_or_an_unsplit_model_calls_no_collective_and_changes_no_bit(host, flux, world, marked):
    """torch.distributed with one rank (the model marked as split), or with two ranks and a model nobody split:
    nothing is agreed, and each rank's run is its shard's single-process run, bit for bit."""
    patched = gate(host, flux)
    shards = SHARDS[1:] if world == 1 else SHARDS
    for shard, answer in zip(shards, _on_ranks(host, patched, shards, world=world, marked=marked), strict=True):
        single = _sample(host, patched, shard)
        assert answer["collectives"] == 0
        assert answer["full"] == single["full"]
        assert torch.equal(torch.from_numpy(answer["out"]), single["out"])
