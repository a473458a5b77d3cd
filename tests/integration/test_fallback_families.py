"""A model without a block adapter (Cosmos Predict2: no block-replacement hook, and its blocks take more than the
stream; tiny, loaded by ComfyUI's detection with the test-only head-count override): TaylorSeer falls back to the
output level, the gate to full compute, both logged."""

from __future__ import annotations

import logging

import pytest
import torch
from test_flux_taylorseer import apply, full_steps

LATENT = {"samples": torch.zeros(1, 16, 1, 16, 16)}


@pytest.fixture(scope="module")
def cosmos(host):
    return host.TINY_MODELS["cosmos_predict2"].load(seed=0)


@pytest.fixture(scope="module")
def cosmos_conds(host):
    cosmos = host.TINY_MODELS["cosmos_predict2"]
    return cosmos.cond(1), cosmos.cond(2, tokens=40)


def test_residual_request_falls_back_to_output_level(host, cosmos, cosmos_conds, caplog):
    reference = host.ksample(cosmos, *cosmos_conds, LATENT, steps=12, cfg=2.0)
    with caplog.at_level(logging.INFO):
        exact = host.ksample(apply(host, cosmos, interval=1), *cosmos_conds, LATENT, steps=12, cfg=2.0)
    assert torch.equal(exact, reference)
    assert "MiniTrainDIT (cosmos_predict2: Cosmos Predict2, Anima) runs at level=output only" in caplog.text
    assert "level=output only: its forward calls no patches_replace block hook: using level=output" in caplog.text
    with host.count_block_calls(cosmos.model.diffusion_model, ("blocks",)) as calls:
        out = host.ksample(apply(host, cosmos, interval=3), *cosmos_conds, LATENT, steps=12, cfg=2.0)
    assert torch.isfinite(out).all() and not torch.equal(out, reference)
    calls_per_step = 2  # cond and uncond have different text lengths: separate calls
    assert calls["blocks"] == [len(full_steps(12, 3, 3, 1)) * calls_per_step] * 2


def test_gate_without_block_adapter_computes_every_step(host, cosmos, cosmos_conds, caplog):
    reference = host.ksample(cosmos, *cosmos_conds, LATENT, steps=6, cfg=2.0)
    with caplog.at_level(logging.WARNING):
        gated = host.run_node("CGTaylorGate", cosmos, 0.5, 1, 1, 2, 1, 0.0, 1.0, 0, "sigma", "auto")[0]
    assert "no first block to probe" in caplog.text
    assert torch.equal(host.ksample(gated, *cosmos_conds, LATENT, steps=6, cfg=2.0), reference)
