"""Fixtures shared by the integration tests: one tiny Flux (random weights) and its conditioning."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def flux(host):
    model = host.tiny_flux(seed=0)
    host.ksample(model, host.flux_cond(1), host.flux_cond(2), host.empty_latent(), steps=2)  # warm-up
    return model


@pytest.fixture(scope="session")
def conds(host):
    return host.flux_cond(1), host.flux_cond(2)
