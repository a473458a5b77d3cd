"""A model without a block adapter (SD3/MMDiT, loaded by ComfyUI's stock detection; it also lacks the
DIFFUSION_MODEL wrapper): TaylorSeer falls back to the output level, the gate to full compute, both logged."""

from __future__ import annotations

import logging

import pytest
import torch
from test_flux_taylorseer import apply, full_steps


@pytest.fixture(scope="module")
def sd3(host):
    return host.tiny_sd3(seed=0)


@pytest.fixture(scope="module")
def sd3_conds(host):
    return host.sd3_cond(1), host.sd3_cond(2, tokens=40)


def test_residual_request_falls_back_to_output_level(host, sd3, sd3_conds, caplog):
    reference = host.ksample(sd3, *sd3_conds, host.empty_latent(), steps=12, cfg=2.0)
    with caplog.at_level(logging.INFO):
        exact = host.ksample(apply(host, sd3, interval=1), *sd3_conds, host.empty_latent(), steps=12, cfg=2.0)
    assert torch.equal(exact, reference)
    assert "OpenAISignatureMMDITWrapper has no residual adapter yet: using level=output" in caplog.text
    with host.count_block_calls(sd3.model.diffusion_model, ("joint_blocks",)) as calls:
        out = host.ksample(apply(host, sd3, interval=3), *sd3_conds, host.empty_latent(), steps=12, cfg=2.0)
    assert torch.isfinite(out).all() and not torch.equal(out, reference)
    calls_per_step = 2  # cond and uncond have different text lengths: separate calls
    assert calls["joint_blocks"] == [len(full_steps(12, 3, 3, 1)) * calls_per_step] * 2


def test_gate_without_block_adapter_computes_every_step(host, sd3, sd3_conds, caplog):
    reference = host.ksample(sd3, *sd3_conds, host.empty_latent(), steps=6, cfg=2.0)
    with caplog.at_level(logging.WARNING):
        gated = host.node("CGTaylorGate").apply(sd3, 0.5, 1, 1, 2, 1, 0.0, 1.0, 0, "sigma", "auto")[0]
    assert "no first block to probe" in caplog.text
    assert torch.equal(host.ksample(gated, *sd3_conds, host.empty_latent(), steps=6, cfg=2.0), reference)
