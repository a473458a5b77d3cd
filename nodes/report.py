"""Turns a finished run into the lines logged after it (the web badge will read the same data)."""

from __future__ import annotations

from .run_state import RunState


def report_lines(run: RunState) -> list[str]:
    """The summary, the per-step map and, for a gated run, every gate error with its verdict."""
    lines = [f"{run.stats.summary(run.num_steps)}, level {run.level}",
             f"map: {run.stats.step_map(run.num_steps, run.forecast_char)}"]
    if run.config.gate_threshold is not None:
        errors = [f"{step}:{error:.4f}{'' if full else '*'}"
                  for step, _sigma, full, _reason, error in run.stats.as_dict(run.num_steps)["records"]
                  if error is not None]
        lines.append(f"gate errors: {' '.join(errors) or 'none'} (threshold {run.config.gate_threshold:g}; "
                     "* = forecast)")
    return lines
