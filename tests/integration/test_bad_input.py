"""Bad input: clear errors at validation, logged fall-backs to full compute, never a crash in the sampler."""

from __future__ import annotations

import logging

import pytest
import torch
from test_flux_taylorseer import FLUX_STACKS, apply, full_steps


def test_bad_values_get_comfyuis_own_error_once(host, flux):
    """In process (no server): ComfyUI's own checks, one error per bad input (``nodes/validation.py``); a start
    after the end is refused when the node runs (at validation only through a server: test_node_api)."""
    def errors(**inputs) -> list[str]:
        return host.validate_node("TaylorSeerApply", **inputs)

    window = dict(interval=4, max_order=1, warmup_steps=3, tail_steps=1)
    assert errors(**window, start_percent=0.2, end_percent=0.8) == []
    assert errors(max_order=7) == ["Value 7 bigger than max of 4: max_order"]
    assert errors(interval=0, max_order=1) == ["Value 0 smaller than min of 1: interval"]
    assert errors(start_percent=float("nan")) == ["Value nan smaller than min of 0.0: start_percent"]
    assert errors(level="bogus") == ["Value not in list: level: 'bogus' not in ['residual', 'output', 'modules']"]
    with pytest.raises(ValueError, match="start_percent"):
        apply(host, flux, start=0.9, end=0.1)


def test_warmup_plus_tail_covering_the_run_computes_every_step(host, flux, conds, caplog):
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=4)
    with caplog.at_level(logging.WARNING):
        out = host.ksample(apply(host, flux, interval=2, warmup=3, tail=2), *conds, host.empty_latent(), steps=4)
    assert torch.equal(out, reference)
    assert "every step is computed" in caplog.text


def _poison_at_step(step: int):
    """A block replacement (another node's, registered before TaylorSeer Apply) that makes the last single
    block return one non-finite value at ``step``: the residual recorded there cannot be extrapolated."""
    def replacement(args, extra):
        out = extra["original_block"](args)
        options = args["transformer_options"]
        if float(options["sigmas"][0]) == float(options["sample_sigmas"][step]):
            out["img"] = out["img"].clone()
            out["img"][0, -1, 0] = float("inf")
        return out
    return replacement


def test_non_finite_forecast_falls_back_to_full_compute(host, flux, conds, caplog):
    poisoned = flux.clone()
    last_single = len(flux.model.diffusion_model.single_blocks) - 1
    poisoned.set_model_patch_replace(_poison_at_step(6), "dit", "single_block", last_single)
    planned = full_steps(20, 4, 3, 1)
    assert 6 in planned and 7 not in planned
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls, caplog.at_level(logging.INFO):
        out = host.ksample(apply(host, poisoned, interval=4), *conds, host.empty_latent(), steps=20)
    assert out.shape == (1, 16, 16, 16)
    assert "is not finite" in caplog.text and "computing it in full" in caplog.text
    # step 7 was planned as a forecast and was computed instead (the poisoned model keeps failing after it)
    assert calls["single_blocks"][0] > len(planned)


def test_non_finite_output_level_forecast_falls_back(host, flux, conds, caplog):
    import comfy.patcher_extension as ext

    def poison(executor, x, t, *args, **kwargs):
        out = executor(x, t, *args, **kwargs)
        options = args[3] if len(args) > 3 else kwargs["transformer_options"]
        if float(t[0]) == float(options["sample_sigmas"][6]):
            out = out.clone()
            out[0, 0, 0, 0] = float("inf")
        return out

    patched = apply(host, flux, interval=4, level="output").clone()
    patched.add_wrapper_with_key(ext.WrappersMP.APPLY_MODEL, "test_poison", poison)  # inner: full steps only
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls, caplog.at_level(logging.INFO):
        host.ksample(patched, *conds, host.empty_latent(), steps=20)
    assert "forecast at step 7 is not finite" in caplog.text
    assert calls["single_blocks"][0] > len(full_steps(20, 4, 3, 1))
