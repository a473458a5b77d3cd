"""The options that fit a predictor to one sampling run's clock (units: the clock's, sigma or step)."""

from __future__ import annotations


def run_options(name: str, span: tuple[float, float] | None, step: float | None) -> dict:
    """Keyword options of predictor ``name`` for a run whose forecast times lie in ``span`` (``(lo, hi)``,
    lo < hi) with a typical step of ``step`` (> 0; 1 on the step clock): FoCa damps after ``damp_after`` such
    steps and hermite's argument counts them (their ``unit``), spectral maps ``span`` onto its Chebyshev domain,
    auto passes these to its candidates. Either argument None leaves that predictor's own default; newton takes
    none."""
    per_step = {"unit": step} if step is not None else {}
    spectral = {"domain": span} if span is not None else {}
    if name in ("foca", "hermite"):
        return per_step
    if name == "spectral":
        return spectral
    if name == "auto":
        return {"options": {"foca": per_step, "hermite": per_step, "spectral": spectral}}
    return {}
