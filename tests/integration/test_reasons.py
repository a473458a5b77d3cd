"""Every ``Reason`` the step controller gives, produced by the pack's code on real ComfyUI runs of the tiny Flux
and read from the run's statistics: each case forces its reason through a public mechanism (a node's inputs, a
timestep-ranged cond, another node's block replacement or APPLY_MODEL wrapper, ComfyUI's skip-layer guidance)
or, for failures of the pack's own code, through the pack's own seams (its helpers, its adapter table)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_bad_input import _poison_at_step
from test_cg_taylor_gate import gate
from test_compat import v3
from test_failure_paths import failing_once
from test_flux_taylorseer import _RunCapture, apply

from taylor_core import Reason

STEPS = 12


def records(host, model, positive, negative, steps: int = STEPS) -> list[tuple]:
    """``(step, sigma, full, reason, gate_error)`` per evaluation of one KSampler run of ``model``."""
    import comfy.patcher_extension as ext

    capture = _RunCapture(host.pack_module("nodes.run_state").RUN_KEY)
    captured = model.clone()
    captured.add_wrapper_with_key(ext.WrappersMP.OUTER_SAMPLE, "test_capture", capture)
    host.ksample(captured, positive, negative, host.empty_latent(), steps=steps, cfg=2.0)
    (run,) = capture.runs
    return [tuple(record) for record in run.stats.as_dict(steps)["records"]]


def steps_with(found: list[tuple], reason: str) -> list[int]:
    return sorted({step for step, _sigma, _full, why, _error in found if why == reason})


def at_step(step: int, outer):
    """An APPLY_MODEL wrapper (registered before the pack's, so it runs outside it) that calls ``outer(executor,
    x, t, args, kwargs)`` for the calls of ``step`` and passes every other call on unchanged."""
    def wrapper(executor, x, t, *args, **kwargs):
        options = args[3] if len(args) > 3 else kwargs["transformer_options"]
        if float(t[0]) != float(options["sample_sigmas"][step]):
            return executor(x, t, *args, **kwargs)
        return outer(executor, x, t, args, kwargs)
    return wrapper


def replacing_block(block: int, replacement):
    """``outer`` for ``at_step``: the call runs with another node's replacement of double block ``block`` in its
    ``transformer_options`` (where the pack's own replacement of that block was)."""
    def outer(executor, x, t, args, kwargs):
        args = list(args)
        options = args[3]
        replace = options.get("patches_replace", {})
        dit = {**replace.get("dit", {}), ("double_block", block): replacement}
        args[3] = {**options, "patches_replace": {**replace, "dit": dit}}
        return executor(x, t, *args, **kwargs)
    return outer


def passthrough(args, _extra):
    return {"img": args["img"], "txt": args["txt"]}


def with_outer(model, step: int, outer):
    import comfy.patcher_extension as ext

    patched = model.clone()
    patched.add_wrapper_with_key(ext.WrappersMP.APPLY_MODEL, "test_outer", at_step(step, outer))
    return patched


def test_schedule_gate_and_cap(host, flux, conds):
    """An interval run decides by schedule; a gate that trusts every probe, capped at 2, by the gate and its cap."""
    found = records(host, apply(host, flux, interval=3), *conds)
    assert {why for *_, why, _error in found} == {"schedule"}
    found = records(host, gate(host, flux, 1e9, max_consecutive=2), *conds)
    assert steps_with(found, "schedule") == [0, 1, 2, STEPS - 1]
    assert steps_with(found, "cap") == [5, 8]
    assert steps_with(found, "gate") == [3, 4, 6, 7, 9, 10]


def test_speedup_budget(host, flux, conds):
    """A gate with a speed-up budget and a probe that always trusts: the pacer computes the budget's steps."""
    gated = host.run_node("CGTaylorGate", flux, 1e9, 1, 1, 1, 1, 0.0, 1.0, 0, "sigma", "auto",
                          target_speedup=3.0)[0]
    found = records(host, gated, *conds)
    assert len([r for r in found if r[2]]) == 4  # round(12 / 3) full steps
    assert steps_with(found, "budget")


def test_no_history_for_a_cond_that_starts_mid_run(host, flux):
    """A positive cond limited to the second half of the run (ConditioningSetTimestepRange's ``start_percent``)
    joins the batch at a forecast step: that evaluation has no history for it and is computed."""
    late = [[host.flux_cond(5)[0][0], {**host.flux_cond(5)[0][1], "start_percent": 0.5}]]
    found = records(host, apply(host, flux, interval=STEPS), host.flux_cond(1) + late, host.flux_cond(2))
    (step,) = steps_with(found, "no-history")
    assert 3 <= step < STEPS - 1


def test_repeat_call_under_skip_layer_guidance(host, flux, conds):
    guided = v3("SkipLayerGuidanceDiT", flux, 3.0, 0.0, 1.0, "1", "1", 0.0)
    found = records(host, apply(host, guided, interval=3), *conds)
    assert steps_with(found, "repeat-call") == list(range(STEPS))


def test_non_finite_forecast(host, flux, conds):
    """Another node's replacement of the last block returns one inf at full step 6: the forecast of step 7
    extrapolates it and is computed instead."""
    poisoned = flux.clone()
    last_single = len(flux.model.diffusion_model.single_blocks) - 1
    poisoned.set_model_patch_replace(_poison_at_step(6), "dit", "single_block", last_single)
    assert steps_with(records(host, apply(host, poisoned, interval=4), *conds), "non-finite")[0] == 7


@pytest.mark.parametrize("level", ["residual", "output"])
def test_shape_change_of_the_input(host, flux, conds, level):
    """The latent the model sees is cropped at step 4 (a forecast step), then restored: both steps find history
    recorded under other shapes."""
    def crop(executor, x, t, args, kwargs):
        out = x.clone()
        out[..., :12, :12] = executor(x[..., :12, :12], t, *args, **kwargs)
        return out

    found = records(host, apply(host, with_outer(flux, 4, crop), interval=4, level=level), *conds)
    assert steps_with(found, "shape-change") == [4, 5]


def test_shape_change_inside_the_blocks(host, flux, conds):
    """At forecast step 4 another node's replacement of block 0 returns one more image token, once: the stream
    entering the skipped blocks no longer has the forecast's shape, and the step is computed."""
    calls = []

    def longer(args, extra):
        out = extra["original_block"](args)
        calls.append(1)
        if len(calls) == 1:
            out = {**out, "img": torch.cat([out["img"], out["img"][:, :1]], dim=1)}
        return out

    model = apply(host, with_outer(flux, 4, replacing_block(0, longer)), interval=4)
    assert steps_with(records(host, model, *conds), "shape-change") == [4]


def test_adapter_mismatch_when_a_block_is_never_reached(host, flux, conds):
    """At forecast step 4 another node replaces block 1 (the first one a forecast skips) without calling the
    pack's replacement: the forecast is not trusted and the run falls back to the output level."""
    model = apply(host, with_outer(flux, 4, replacing_block(1, passthrough)), interval=4)
    found = records(host, model, *conds)
    assert steps_with(found, "adapter-mismatch") == [4]


def test_adapter_mismatch_when_the_adapter_fails(host, flux, conds, monkeypatch):
    monkeypatch.setattr(host.pack_module("nodes.adapters.block_hooks"), "stream_copies", failing_once(AttributeError))
    assert steps_with(records(host, apply(host, flux, interval=4), *conds), "adapter-mismatch") == [0]


def test_no_probe_when_the_probe_block_is_never_reached(host, flux, conds):
    """At gated step 4 another node replaces block 1, where the gate probes: the call ends without a verdict."""
    model = gate(host, with_outer(flux, 4, replacing_block(1, passthrough)), 1e9)
    found = records(host, model, *conds)
    assert steps_with(found, "no-probe") == [4]
    assert steps_with(found, "stopped") == list(range(5, STEPS))  # the gate lost its blocks: every step computed


def test_no_cheap_path(host, flux, conds, monkeypatch):
    """Every module adapter's cheap path refuses the call (``CheapPathUnsupported``): each forecast step is
    computed at the modules level."""
    adapters = host.pack_module("nodes.adapters.module_adapters")

    def refuse(block, args, forecasts):
        raise adapters.CheapPathUnsupported("refused by the test")

    for key, adapter in list(adapters.BLOCK_ADAPTERS.items()):
        monkeypatch.setitem(adapters.BLOCK_ADAPTERS, key, dataclasses.replace(adapter, apply=refuse))
    found = records(host, apply(host, flux, interval=4, level="modules"), *conds)
    assert steps_with(found, "no-cheap-path") and all(full for *_, full, _why, _error in found)


def test_stopped_after_a_failure_of_the_pack(host, flux, conds, monkeypatch):
    monkeypatch.setattr(host.pack_module("nodes.levels"), "_sigma_view", failing_once(TypeError))
    found = records(host, apply(host, flux, interval=4, level="output"), *conds)
    assert steps_with(found, "stopped") == list(range(STEPS))


def test_every_reason_has_a_case_here():
    reasons = {str(reason) for reason in Reason}
    cases = {"schedule", "gate", "cap", "budget", "no-history", "repeat-call", "non-finite", "shape-change",
             "adapter-mismatch", "no-probe", "no-cheap-path", "stopped"}
    assert reasons == cases
