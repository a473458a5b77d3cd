"""The ``forecaster`` and ``target_speedup`` inputs through ComfyUI's real samplers on a tiny Flux.

Block calls are counted with torch forward hooks on the real modules, never read from our stats.
"""

from __future__ import annotations

import logging

import pytest
import torch
from test_flux_taylorseer import FLUX_STACKS, full_steps

FORECASTERS = ("newton", "hermite", "foca", "spectral", "auto")


def apply(host, model, forecaster="newton", target_speedup=0.0, interval=3, level="output", warmup=2, tail=1,
          max_order=1, clock="step"):
    return host.run_node("TaylorSeerApply", model, interval=interval, max_order=max_order, warmup_steps=warmup,
                         tail_steps=tail, level=level, clock=clock, forecaster=forecaster,
                         target_speedup=target_speedup)[0]


def test_the_inputs_offer_every_predictor_and_default_to_newton(host):
    predictors = tuple(host.pack_module("taylor_core").PREDICTORS)
    assert set(FORECASTERS) == set(predictors)
    for node in ("TaylorSeerApply", "CGTaylorGate"):
        spec = host.schema_inputs(node)["forecaster"]
        assert spec.options == list(predictors) and spec.default == "newton" and spec.optional
    speedup = host.schema_inputs("TaylorSeerApply")["target_speedup"]
    assert speedup.default == host.pack_module("nodes.inputs").RECOMMENDED_SPEEDUP == 3.0 and speedup.optional
    assert host.schema_inputs("CGTaylorGate")["target_speedup"].default == 0.0  # the gate: the threshold decides
    assert speedup.max == host.pack_module("taylor_core").MAX_TARGET_SPEEDUP


@pytest.mark.parametrize("forecaster", FORECASTERS)
def test_exact_settings_are_bit_identical_for_every_forecaster(host, flux, conds, forecaster):
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=6, cfg=2.0, seed=4)
    for settings in (dict(interval=1), dict(target_speedup=1.0)):
        patched = host.ksample(apply(host, flux, forecaster, level="residual", **settings), *conds,
                               host.empty_latent(), steps=6, cfg=2.0, seed=4)
        assert torch.equal(patched, reference), settings


def test_target_speedup_three_computes_a_third_of_twelve_steps(host, flux, conds, caplog):
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls, caplog.at_level(logging.INFO):
        out = host.ksample(apply(host, flux, target_speedup=3.0, warmup=1), *conds, host.empty_latent(), steps=12)
    assert torch.isfinite(out).all()
    assert calls["single_blocks"] == [round(12 / 3)] * len(calls["single_blocks"])
    assert "target_speedup 3" in caplog.text and "evaluations 12, full 4," in caplog.text


@pytest.mark.parametrize("settings, warmup", [(dict(target_speedup=3.0), 1), (dict(interval=3), 3),
                                              (dict(target_speedup=3.0, warmup=2), 2)])
def test_auto_warmup_is_one_with_a_budget_and_three_with_an_interval(host, flux, conds, caplog, settings, warmup):
    """warmup_steps -1 (the schema's default) is resolved per run: the plan line says which, and the plan holds
    it (every step before it computed)."""
    settings = {"warmup": -1} | settings
    assert host.schema_inputs("TaylorSeerApply")["warmup_steps"].default == -1
    with caplog.at_level(logging.INFO):
        host.ksample(apply(host, flux, **settings), *conds, host.empty_latent(), steps=12)
    plan = next(line for line in caplog.text.splitlines() if "plan (12 steps" in line)
    assert f"warmup {warmup}," in plan
    assert plan.rsplit(": ", 1)[1].startswith("F" * warmup)


def test_a_budget_the_forced_steps_exceed_is_logged_and_the_run_completes(host, flux, conds, caplog):
    """4 steps at 4x allow one full step; step 0 and the tail step are forced: both run, the rest is forecast."""
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls, \
            caplog.at_level(logging.WARNING):
        out = host.ksample(apply(host, flux, target_speedup=4.0, warmup=1), *conds, host.empty_latent(), steps=4)
    assert torch.isfinite(out).all()
    assert "target_speedup 4 allows 1 full steps of 4" in caplog.text and "running at 2.00x instead" in caplog.text
    assert calls["single_blocks"][0] == 2


def test_bad_forecaster_and_speedup_are_validation_errors(host):
    for node in ("TaylorSeerApply", "CGTaylorGate"):
        errors = "\n".join(host.validate_node(node, forecaster="taylor"))
        assert "Value not in list: forecaster: 'taylor' not in ['newton', 'hermite', 'foca', 'spectral'" in errors
        assert host.validate_node(node, forecaster="foca") == []
    widgets = dict(interval=4, max_order=1, warmup_steps=3, tail_steps=1, start_percent=0.0, end_percent=1.0)
    errors = "\n".join(host.validate_node("TaylorSeerApply", **widgets, target_speedup=0.5))
    assert errors == "Value 0.5 smaller than min of 1 (or 0: use interval): target_speedup"
    assert "Value 25.0 bigger than max of 20" in "\n".join(
        host.validate_node("TaylorSeerApply", **widgets, target_speedup=25.0))
    assert host.validate_node("TaylorSeerApply", **widgets, target_speedup=2.5) == []
    assert host.validate_node("TaylorSeerApply", **widgets) == []  # a graph saved before the input


@pytest.mark.parametrize("level", ["output", "residual", "modules"])
@pytest.mark.parametrize("forecaster", ["foca", "spectral"])
def test_forecasters_forecast_at_every_level(host, flux, conds, level, forecaster, caplog):
    steps, expected_full = 10, len(full_steps(10, 3, 2, 1))
    assert expected_full < steps
    dm = flux.model.diffusion_model
    double = host.pack_module("nodes.adapters.module_adapters").FLUX_DOUBLE
    modules = {name: [block.get_submodule(name) for block in dm.double_blocks] for name in double.expensive}
    with host.count_block_calls(dm, FLUX_STACKS) as calls, host.count_calls(modules) as branch_calls, \
            caplog.at_level(logging.INFO):
        out = host.ksample(apply(host, flux, forecaster, level=level), *conds, host.empty_latent(), steps=steps)
    assert torch.isfinite(out).all()
    assert f"forecaster {forecaster}" in caplog.text and f"full {expected_full}," in caplog.text
    if level == "modules":  # every block runs; its attention and MLP only on the full steps
        assert all(counts == [expected_full] * len(dm.double_blocks) for counts in branch_calls.values())
    else:
        assert calls["single_blocks"] == [expected_full] * len(calls["single_blocks"])


def test_foca_forecasts_differ_from_newton_on_the_same_plan(host, flux, conds):
    """FoCa recurses on its own forecasts: after the second anchor its local slope is no longer the anchors'."""
    runs = [host.ksample(apply(host, flux, name), *conds, host.empty_latent(), steps=10, seed=2)
            for name in ("newton", "foca")]
    assert not torch.equal(*runs)


def test_gate_probe_and_residual_use_the_forecaster(host, flux, conds, caplog):
    steps = 10
    gate = host.run_node("CGTaylorGate", flux, 10.0, 1, 1, 2, 1, 0.0, 1.0, 3, "step", "auto",
                         forecaster="spectral")[0]
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls, caplog.at_level(logging.INFO):
        out = host.ksample(gate, *conds, host.empty_latent(), steps=steps)
    assert torch.isfinite(out).all()
    assert "forecaster spectral" in caplog.text
    assert calls["double_blocks"][0] == steps and calls["single_blocks"][0] < steps
