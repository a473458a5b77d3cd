"""The adaptive controller's evidence cost for ``demo/benchmark.py --evidence-cost``: the time its forecast-error
evidence adds per full step at the output level, against a full model call of a demo model."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import fidelity
import torch


def evidence_seconds(shape: tuple[int, ...], repeats: int = 200) -> float:
    """Median seconds of the evidence the adaptive controller adds per full step and feature: every candidate of
    ``taylor_core.adaptive.CANDIDATES`` (order 1, three anchors held) forecasting a value of ``shape``, scored."""
    from taylor_core.adaptive import CANDIDATES
    from taylor_core.evidence import forecast_errors
    from taylor_core.predictors import make_predictor

    gen = torch.Generator().manual_seed(0)
    values = [torch.randn(shape, generator=gen) for _ in range(4)]
    candidates = {name: make_predictor(name, 1) for name in CANDIDATES}
    for t, value in enumerate(values[:3]):
        for candidate in candidates.values():
            candidate.update(float(t), value)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forecast_errors(candidates, 3.0, values[3])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def full_call(harness: Callable, arch: str, steps: int) -> tuple[tuple[int, ...], float]:
    """(the input shape of one model call, the median seconds of a full call) of an uncached euler run of
    ``steps`` steps; ``harness(arch)``: ``benchmark.Harness``."""
    import comfy.patcher_extension as ext

    h, captured = harness(arch), {}

    def shape_of(executor, x, *args, **kwargs):
        captured["shape"] = tuple(x.shape)
        return executor(x, *args, **kwargs)

    try:
        model = h.model.clone()
        model.add_wrapper_with_key(ext.WrappersMP.APPLY_MODEL, "benchmark_shape", shape_of)
        probe = h.sample(model, fidelity.cases(1)[0], steps, "euler")[2]
    finally:
        h.close()
    return captured["shape"], statistics.median(probe.full_call_s)


def evidence_cost(harness: Callable, archs: list[str], steps: int) -> list[str]:
    """Markdown rows: per demo model, a full model call's median time, the evidence's per full step at the output
    level (``evidence_seconds``) and their ratio; then the evidence alone on a FLUX.1-dev 1024x1024 output latent
    (no such model call to compare with on CPU). ``harness``, ``steps``: as ``full_call``'s."""
    rows = []
    for arch in archs:
        shape, full_s = full_call(harness, arch, steps)
        seconds = evidence_seconds(shape)
        rows.append(f"| {arch} | {shape} | {full_s * 1e3:.2f} | {seconds * 1e3:.3f} | {100 * seconds / full_s:.2f} % |")
    flux_dev = evidence_seconds((1, 16, 128, 128))
    rows.append(f"| FLUX.1-dev 1024x1024 output latent | (1, 16, 128, 128) | - | {flux_dev * 1e3:.3f} | - |")
    return rows
