"""The adaptive step controller (``forecaster`` auto with a ``target_speedup``) through ComfyUI's real samplers on
the tiny Flux: the last block runs on exactly the budget's steps whatever the evidence moves, every evaluation of
a step takes that step's one decision, and a budget of 1 is the unpatched model bit for bit.

Full computes are counted where the model computes them (a replacement of the last single block, ComfyUI's own
``patches_replace``, records the sigma of every real call), never read from the pack's statistics."""

from __future__ import annotations

import logging

import pytest
import torch
from test_cg_taylor_gate import _step_of


def adaptive(host, model, speedup: float, level: str = "output", warmup: int = 1, tail: int = 1,
             max_order: int = 1):
    return host.run_node("TaylorSeerApply", model, interval=4, max_order=max_order, warmup_steps=warmup,
                         tail_steps=tail, level=level, clock="step", forecaster="auto", target_speedup=speedup)[0]


def witnessed(flux, computed: list[int]):
    """``flux`` with its last single block replaced by itself plus a record of the step of every real call."""

    def witness(args, extra):
        computed.append(_step_of(args))
        return extra["original_block"](args)

    model = flux.clone()
    model.set_model_patch_replace(witness, "dit", "single_block", len(flux.model.diffusion_model.single_blocks) - 1)
    return model


@pytest.mark.parametrize("level", ["output", "residual"])
@pytest.mark.parametrize(("sampler", "steps", "speedup"), [("euler", 20, 3.0), ("euler", 20, 5.0),
                                                           ("dpmpp_2m", 16, 2.5), ("heun", 10, 2.5)])
def test_the_controller_spends_exactly_the_budget(host, flux, conds, caplog, level, sampler, steps, speedup):
    computed: list[int] = []
    patched = adaptive(host, witnessed(flux, computed), speedup, level=level)
    with caplog.at_level(logging.INFO):
        out = host.ksample(patched, *conds, host.empty_latent(), steps=steps, cfg=2.0, sampler=sampler, seed=5)
    assert torch.isfinite(out).all()
    full = set(computed)
    assert len(full) == round(steps / speedup)
    assert {0, steps - 1} <= full  # step 0 and the tail are forced
    evaluations_per_sigma = 2 if sampler == "heun" else 1  # heun: sigma_i ends step i - 1 and starts step i
    assert len(computed) == sum(1 if s == 0 else evaluations_per_sigma for s in full)
    assert "adaptive: each F moves with the forecast errors" in caplog.text
    step_map = next(line for line in caplog.text.splitlines() if "map: " in line).rsplit("map: ", 1)[1]
    assert {i for i, c in enumerate(step_map) if c == "F"} == full


@pytest.mark.parametrize("sampler", ["euler", "dpmpp_2m", "heun"])
def test_a_budget_of_one_is_bit_identical(host, flux, conds, sampler):
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=8, cfg=2.0, sampler=sampler, seed=2)
    patched = host.ksample(adaptive(host, flux, 1.0), *conds, host.empty_latent(), steps=8, cfg=2.0,
                           sampler=sampler, seed=2)
    assert torch.equal(patched, reference)


def test_every_full_step_after_the_first_brings_each_candidates_error(host, flux, conds):
    """The controller of a real run receives, at every full step but the first, each candidate's forecast error of
    that step (from the bank's ``auto`` predictors, conds averaged) at the horizon since the previous full step."""
    import comfy.patcher_extension as ext

    runs = []

    def capture(executor, *args, **kwargs):
        options = kwargs.get("transformer_options") or (args[5] if len(args) > 5 else {})
        runs.append(options.get("taylor_forecast_run"))
        return executor(*args, **kwargs)

    computed: list[int] = []
    model = adaptive(host, witnessed(flux, computed), 4.0)
    model.add_wrapper_with_key(ext.WrappersMP.APPLY_MODEL, "test_capture", capture)
    host.ksample(model, *conds, host.empty_latent(), steps=24, cfg=2.0, seed=1)
    controller = runs[-1].adaptive
    full = sorted(set(computed))
    assert [e.step for e in controller.evidence] == full[1:]
    assert [e.horizon for e in controller.evidence] == [b - a for a, b in zip(full, full[1:])]
    candidates = host.pack_module("taylor_core.adaptive").CANDIDATES
    assert all(set(e.errors) == set(candidates) and all(v >= 0 for v in e.errors.values())
               for e in controller.evidence)
    assert controller.choice in candidates
