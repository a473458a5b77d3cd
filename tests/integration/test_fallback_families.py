"""A model without a block adapter (Lumina 2: its forward calls no block-replacement hook; tiny, loaded by
ComfyUI's detection with the test-only head/rope override): TaylorSeer falls back to the output level, the gate
to full compute, both logged."""

from __future__ import annotations

import logging

import pytest
import torch
from test_flux_taylorseer import apply, full_steps


@pytest.fixture(scope="module")
def lumina2(host):
    return host.TINY_MODELS["lumina2"].load(seed=0)


@pytest.fixture(scope="module")
def lumina2_conds(host):
    lumina2 = host.TINY_MODELS["lumina2"]
    return lumina2.cond(1), lumina2.cond(2, tokens=40)


def test_residual_request_falls_back_to_output_level(host, lumina2, lumina2_conds, caplog):
    reference = host.ksample(lumina2, *lumina2_conds, host.empty_latent(), steps=12, cfg=2.0)
    with caplog.at_level(logging.INFO):
        exact = host.ksample(apply(host, lumina2, interval=1), *lumina2_conds, host.empty_latent(), steps=12, cfg=2.0)
    assert torch.equal(exact, reference)
    assert "NextDiT (lumina2: Lumina 2, Z-Image) runs at level=output only" in caplog.text
    assert "level residual requested: using level=output" in caplog.text
    with host.count_block_calls(lumina2.model.diffusion_model, ("layers",)) as calls:
        out = host.ksample(apply(host, lumina2, interval=3), *lumina2_conds, host.empty_latent(), steps=12, cfg=2.0)
    assert torch.isfinite(out).all() and not torch.equal(out, reference)
    calls_per_step = 2  # cond and uncond have different text lengths: separate calls
    assert calls["layers"] == [len(full_steps(12, 3, 3, 1)) * calls_per_step] * 2


def test_gate_without_block_adapter_computes_every_step(host, lumina2, lumina2_conds, caplog):
    reference = host.ksample(lumina2, *lumina2_conds, host.empty_latent(), steps=6, cfg=2.0)
    with caplog.at_level(logging.WARNING):
        gated = host.node("CGTaylorGate").apply(lumina2, 0.5, 1, 1, 2, 1, 0.0, 1.0, 0, "sigma", "auto")[0]
    assert "no first block to probe" in caplog.text
    assert torch.equal(host.ksample(gated, *lumina2_conds, host.empty_latent(), steps=6, cfg=2.0), reference)
