"""Every failure of the pack's own code is a logged full compute: faults injected through the pack's own seams
(its adapter table, its per-level helpers) or an object patch on the test's own model clone, never into ComfyUI.

- output level: the step is computed in full and so is every later one: the plain model's latent, bit for bit.
- residual level: the step is computed in full and the run falls back to the output level: an output-level run's
  latent, bit for bit.
- modules level (a moved ComfyUI helper, a renamed attribute, a changed signature in a block's cheap path): the
  step is computed in full and the run falls back to the residual level: the real block calls show both.
- OUTER_SAMPLE: the guider's options are restored on every way out, an exception raised before sampling included.
"""

from __future__ import annotations

import copy
import dataclasses
import logging

import pytest
import torch
from test_flux_taylorseer import FLUX_STACKS, apply, full_steps

STEPS = 12


def failing_once(error: type[Exception]):
    """A stand-in for one of the pack's helpers that raises ``error`` at its first call."""
    def fail(*_args, **_kwargs):
        raise error("injected: the helper's ComfyUI counterpart changed")
    return fail


def faults():
    return pytest.mark.parametrize("error", [ImportError, AttributeError, TypeError])


@faults()
def test_output_level_failure_computes_that_step_and_the_rest_in_full(host, flux, conds, monkeypatch, caplog, error):
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)
    monkeypatch.setattr(host.pack_module("nodes.levels"), "_sigma_view", failing_once(error))
    with caplog.at_level(logging.INFO):
        out = host.ksample(apply(host, flux, level="output"), *conds, host.empty_latent(), steps=STEPS, cfg=2.0)
    assert torch.equal(out, reference)
    assert f"{error.__name__} in the pack's output level" in caplog.text
    assert "this step is computed in full, and every later step of the run too" in caplog.text
    assert f"steps {STEPS}, evaluations {STEPS}, full {STEPS}, forecast 0," in caplog.text


@faults()
def test_residual_level_failure_falls_back_to_the_output_level(host, flux, conds, monkeypatch, caplog, error):
    """The residual adapter fails at the first call (step 0, full): that step is computed in full and the rest of
    the run is the output level's, exactly."""
    reference = host.ksample(apply(host, flux, level="output", max_order=1), *conds, host.empty_latent(),
                             steps=STEPS, cfg=2.0)
    monkeypatch.setattr(host.pack_module("nodes.adapters.block_hooks"), "stream_copies", failing_once(error))
    with caplog.at_level(logging.INFO):
        out = host.ksample(apply(host, flux, level="residual", max_order=1), *conds, host.empty_latent(),
                           steps=STEPS, cfg=2.0)
    assert torch.equal(out, reference)
    assert f"{error.__name__} in the residual adapter" in caplog.text
    assert "falling back to level=output for this run" in caplog.text


def _broken_apply(error: type[Exception], adapter):
    """A block cheap path that fails as a ComfyUI update would make it: a moved helper, a renamed attribute, a
    helper whose signature changed."""
    def apply_moved_helper(block, args, forecasts):
        from comfy.ldm.flux.layers import apply_mod_moved_elsewhere  # noqa: F401

    def apply_renamed_attribute(block, args, forecasts):
        return block.modulation_renamed_in_comfyui(args["vec"])

    def apply_changed_signature(block, args, forecasts):
        return adapter.apply(block, args)

    return {ImportError: apply_moved_helper, AttributeError: apply_renamed_attribute,
            TypeError: apply_changed_signature}[error]


@faults()
def test_modules_level_failure_falls_back_to_the_residual_level(host, flux, conds, monkeypatch, caplog, error):
    """Every module adapter's cheap path fails: the first forecast step (3) is computed in full, and from then on
    the run is the residual level's: the first block every step, the other blocks on the plan's full steps and
    step 3."""
    table = host.pack_module("nodes.adapters.module_adapters").BLOCK_ADAPTERS
    for key, adapter in list(table.items()):
        monkeypatch.setitem(table, key, dataclasses.replace(adapter, apply=_broken_apply(error, adapter)))
    full = full_steps(STEPS, 4, 3, 1)
    assert 3 not in full
    with caplog.at_level(logging.INFO), host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls:
        out = host.ksample(apply(host, flux, interval=4, level="modules", clock="step"), *conds,
                           host.empty_latent(), steps=STEPS, cfg=2.0)
    assert torch.isfinite(out).all()
    computed = len(full) + 1
    assert calls["double_blocks"] == [STEPS] + [computed] * (len(calls["double_blocks"]) - 1)
    assert calls["single_blocks"] == [computed] * len(calls["single_blocks"])
    assert f"step 3: {error.__name__} in the modules adapter" in caplog.text
    assert "falling back to level=residual for this run" in caplog.text
    assert f"steps {STEPS}, evaluations {STEPS}, full {computed}, forecast {STEPS - computed}," in caplog.text


def _guider(host, model):
    import comfy.samplers

    guider = comfy.samplers.CFGGuider(model)
    positive, negative = host.flux_cond(1), host.flux_cond(2)
    guider.set_conds(positive, negative)
    guider.set_cfg(2.0)
    return guider


def _sample(guider, steps: int = 6) -> torch.Tensor:
    import comfy.samplers

    sigmas = comfy.samplers.calculate_sigmas(guider.model_patcher.get_model_object("model_sampling"), "simple",
                                             steps)
    noise = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(7))
    return guider.sample(noise, torch.zeros(1, 16, 16, 16), comfy.samplers.sampler_object("euler"), sigmas,
                         seed=7)


def _with_percent_to_sigma(model, failure):
    """A clone of ``model`` whose ``model_sampling`` (an object patch: a copy) raises from ``percent_to_sigma``."""
    patched = model.clone()
    sampling = copy.deepcopy(model.get_model_object("model_sampling"))
    sampling.percent_to_sigma = failure
    patched.add_object_patch("model_sampling", sampling)
    return patched


def test_an_exception_before_sampling_leaves_the_guider_options_as_they_were(host, flux):
    import comfy.model_management

    run_key = host.pack_module("nodes.run_state").RUN_KEY

    def interrupted(_percent):
        raise comfy.model_management.InterruptProcessingException()

    guider = _guider(host, _with_percent_to_sigma(apply(host, flux), interrupted))
    options = guider.model_options
    before = copy.copy(options.get("transformer_options", {}))
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        _sample(guider)
    assert guider.model_options is options
    assert guider.model_options.get("transformer_options", {}) == before
    assert run_key not in guider.model_options.get("transformer_options", {})


def test_a_failure_while_planning_samples_the_run_without_forecasting(host, flux, caplog):
    reference = _sample(_guider(host, flux))
    guider = _guider(host, _with_percent_to_sigma(apply(host, flux), failing_once(TypeError)))
    options = guider.model_options
    with caplog.at_level(logging.INFO):
        out = _sample(guider)
    assert torch.equal(out, reference)
    assert "TypeError while planning the run" in caplog.text and "sampling it without forecasting" in caplog.text
    assert guider.model_options is options
