"""CG-Taylor Gate through ComfyUI's real samplers on the tiny Flux: exactness and the cap's schedule."""

from __future__ import annotations

import logging

import pytest
import torch
from test_flux_taylorseer import FLUX_STACKS, apply

STEPS = 20


def gate(host, model, threshold, max_consecutive=0, warmup=3, tail=1, max_order=1, first_block_order=1,
         start=0.0, end=1.0):
    return host.run_node("CGTaylorGate", model, threshold, max_order, first_block_order, warmup, tail, start, end,
                         max_consecutive, "sigma", "auto")[0]


def capped_full_steps(num_steps: int, cap: int, warmup: int, tail: int) -> list[int]:
    """With a gate that always trusts its probe, the cap alone decides: after the forced steps, ``cap``
    forecasts then one full step, written out independently of the implementation."""
    full, run = [], 0
    for i in range(num_steps):
        if i == 0 or i < warmup or i >= num_steps - tail or run >= cap:
            full.append(i)
            run = 0
        else:
            run += 1
    return full


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_threshold_zero_is_bit_identical(host, flux, conds, cfg):
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=10, cfg=cfg)
    assert torch.equal(host.ksample(gate(host, flux, 0.0), *conds, host.empty_latent(), steps=10, cfg=cfg),
                       reference)


@pytest.mark.parametrize("cap", [1, 2, 4])
def test_huge_threshold_gives_exactly_the_capped_schedule(host, flux, conds, cap):
    expected = capped_full_steps(STEPS, cap, 3, 1)
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls:
        out = host.ksample(gate(host, flux, 1e9, max_consecutive=cap), *conds, host.empty_latent(), steps=STEPS,
                           cfg=2.0)
    assert torch.isfinite(out).all()
    assert calls["double_blocks"][0] == STEPS  # the probe block runs every step
    assert calls["double_blocks"][1:] == [len(expected)] * (len(calls["double_blocks"]) - 1)
    assert calls["single_blocks"] == [len(expected)] * len(calls["single_blocks"])


def test_gate_logs_its_errors_and_its_auto_threshold(host, flux, conds, caplog):
    with caplog.at_level(logging.INFO):
        host.ksample(gate(host, flux, -1.0, max_consecutive=3), *conds, host.empty_latent(), steps=STEPS)
    assert "threshold auto = 0.03 for flux" in caplog.text
    assert "gate errors:" in caplog.text


def test_bad_gate_inputs_are_validation_errors(host, flux):
    def errors(**inputs) -> str:
        return "\n".join(host.validate_node("CGTaylorGate", **inputs))

    assert errors(max_consecutive=-1) == "Value -1 smaller than min of 0: max_consecutive"
    assert errors(first_block_order=9) == "Value 9 bigger than max of 4: first_block_order"
    assert errors(threshold=float("nan")) == "Value nan smaller than min of -1.0: threshold"
    assert errors(error_budget="sum").startswith("Value not in list: error_budget: 'sum' not in")
    assert errors() == ""
    with pytest.raises(ValueError, match="max_consecutive"):
        gate(host, flux, 0.1, max_consecutive=-2)


def test_a_second_node_on_the_same_model_replaces_the_first(host, flux, conds, caplog):
    """TaylorSeer Apply then CG-Taylor Gate on one chain: only the gate runs (no double skip), and a gate of
    threshold 0 after it gives the unpatched output."""
    taylorseer = apply(host, flux, interval=2, max_order=1, warmup=1, tail=0)
    with caplog.at_level(logging.INFO):
        chained = gate(host, taylorseer, 0.0)
    assert "the later one replaces it" in caplog.text
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=8)
    assert torch.equal(host.ksample(chained, *conds, host.empty_latent(), steps=8), reference)


def _step_of(args: dict) -> int:
    options = args["transformer_options"]
    return [float(s) for s in options["sample_sigmas"]].index(float(options["sigmas"][0]))


def test_a_non_finite_first_block_is_computed_in_full_and_logged(host, flux, conds, caplog):
    """Another node's replacement makes the first double block return inf at a step the capped gate would
    forecast: from there on the model's own stream is non-finite, and the gate never forecasts on top of it:
    every later step is computed in full (logged), and the steps before follow the cap's schedule."""
    poison_step, cap = 7, 2
    assert poison_step not in capped_full_steps(STEPS, cap, 3, 1)
    computed = set()

    def poison(args, extra):
        out = extra["original_block"](args)
        return {**out, "img": torch.full_like(out["img"], float("inf"))} if _step_of(args) == poison_step else out

    def witness(args, extra):
        computed.add(_step_of(args))
        return extra["original_block"](args)

    patched = flux.clone()
    patched.set_model_patch_replace(poison, "dit", "double_block", 0)
    patched.set_model_patch_replace(witness, "dit", "single_block", len(flux.model.diffusion_model.single_blocks) - 1)
    with caplog.at_level(logging.WARNING):
        host.ksample(gate(host, patched, 1e9, max_consecutive=cap), *conds, host.empty_latent(), steps=STEPS)
    assert f"step {poison_step}: the first block returned non-finite values" in caplog.text
    assert set(range(poison_step, STEPS)) <= computed
    assert {step for step in computed if step < poison_step} == {
        step for step in capped_full_steps(STEPS, cap, 3, 1) if step < poison_step}


@pytest.mark.parametrize("threshold", [0.0, 1e9, 0.05])
@pytest.mark.parametrize("sampler, steps, speedup", [("euler", STEPS, 4.0), ("heun", 10, 2.5)])
def test_a_budget_spends_exactly_its_full_steps_whatever_the_threshold(host, flux, conds, threshold, sampler,
                                                                       steps, speedup, caplog):
    """Threshold 0 (never trusts), 1e9 (always trusts) and one between: the last block runs on exactly
    ``round(steps / target_speedup)`` sigmas of the schedule, every evaluation at a sigma taking its step's
    decision (heun evaluates sigma_i as step i's first and step i-1's second evaluation: twice but at sigma_0),
    and the plan line shows the budget's map."""
    budget = round(steps / speedup)
    computed: list[int] = []

    def witness(args, extra):
        computed.append(_step_of(args))
        return extra["original_block"](args)

    witnessed = flux.clone()
    witnessed.set_model_patch_replace(witness, "dit", "single_block", len(flux.model.diffusion_model.single_blocks) - 1)
    patched = host.run_node("CGTaylorGate", witnessed, threshold, 1, 1, 3, 1, 0.0, 1.0, 0, "sigma", "auto",
                            target_speedup=speedup)[0]
    with caplog.at_level(logging.INFO):
        out = host.ksample(patched, *conds, host.empty_latent(), steps=steps, cfg=2.0, sampler=sampler)
    assert torch.isfinite(out).all()
    evaluations_per_sigma = 1 if sampler == "euler" else 2
    assert len(set(computed)) == budget
    assert len(computed) == sum(1 if s == 0 else evaluations_per_sigma for s in set(computed))
    assert f"target_speedup {speedup:g}" in caplog.text and "steps early or late" in caplog.text


@pytest.mark.parametrize("forecaster", ["newton", "foca", "auto"])
def test_a_budget_of_one_is_bit_identical_even_with_a_trusting_gate(host, flux, conds, forecaster):
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=10, cfg=2.0)
    patched = host.run_node("CGTaylorGate", flux, 1e9, 1, 1, 3, 1, 0.0, 1.0, 0, "sigma", "auto",
                            target_speedup=1.0, forecaster=forecaster)[0]
    assert torch.equal(host.ksample(patched, *conds, host.empty_latent(), steps=10, cfg=2.0), reference)


def test_a_gate_budget_below_one_is_a_validation_error(host):
    widgets = dict(max_order=1, first_block_order=1, max_consecutive=0, warmup_steps=3, tail_steps=1,
                   start_percent=0.0, end_percent=1.0)
    errors = "\n".join(host.validate_node("CGTaylorGate", **widgets, target_speedup=0.5))
    assert errors == "Value 0.5 smaller than min of 1 (or 0: the threshold alone decides): target_speedup"
    assert host.validate_node("CGTaylorGate", **widgets, target_speedup=3.0) == []
