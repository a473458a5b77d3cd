"""Turns a finished run into one JSON-safe report: the log lines and the web badge's message both render it."""

from __future__ import annotations

import math
from typing import Any

from .module_level import memory_line
from .run_state import RunState


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def run_report(run: RunState) -> dict[str, Any]:
    """The run's report, JSON-safe (no NaN/inf: browsers refuse them), keyed by the patching node's id.

    ``evaluations``, ``full``, ``forecast`` and ``compute_ratio`` count model evaluations (calls); ``full_steps``
    and ``step_ratio`` count sampling steps (what a speed-up budget counts). ``step_map`` has one character per
    step (``F`` full, ``T``/``R`` forecast, ``-`` not run); ``gate_errors`` one entry per step, the gate's
    relative L1 error of the step's first gated evaluation or None; ``threshold`` is the gate's resolved
    threshold, None for TaylorSeer Apply; ``calibrated``: the plan came from a calibration profile.
    ``prompt_id`` is filled by the sender.
    """
    stats, steps = run.stats, run.num_steps
    gate_errors: list[float | None] = [None] * steps
    for step, _sigma, _full, _reason, error in stats.as_dict(steps)["records"]:
        if error is not None and 0 <= step < steps and gate_errors[step] is None:
            gate_errors[step] = _finite_or_none(error)
    threshold = run.config.gate_threshold
    return {
        "node": run.config.node_id,
        "prompt_id": None,
        "kind": "taylorseer" if threshold is None else "cg_gate",
        "level": run.level,
        "steps": steps,
        "evaluations": stats.evaluations,
        "full": stats.full_computes,
        "forecast": stats.forecasts,
        "fallbacks": stats.fallbacks,
        "compute_ratio": stats.compute_ratio,
        "full_steps": stats.full_steps(steps),
        "step_ratio": stats.step_ratio(steps),
        "cache_peak_bytes": stats.peak_cache_bytes,
        "summary": stats.summary(steps),
        "step_map": stats.step_map(steps, run.forecast_char),
        "gate_errors": gate_errors,
        "threshold": _finite_or_none(threshold),
        "calibrated": bool(run.config.full_steps),
        "modules_memory": memory_line(run),  # level modules: its cache beside the residual level's, else None
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    """The summary, the per-step map and, for a gated run, every gate error with its verdict (from ``run_report``)."""
    calibrated = ", calibrated plan" if report.get("calibrated") else ""
    lines = [f"{report['summary']}, level {report['level']}{calibrated}", f"map: {report['step_map']}"]
    if report.get("modules_memory"):
        lines.append(report["modules_memory"])
    if report["kind"] == "cg_gate":
        errors = [f"{step}:{error:.4f}{'' if report['step_map'][step] == 'F' else '*'}"
                  for step, error in enumerate(report["gate_errors"]) if error is not None]
        lines.append(f"gate errors: {' '.join(errors) or 'none'} (threshold {report['threshold']:g}; "
                     "* = forecast)")
    return lines
