"""Per-run bookkeeping: one record per model evaluation, plus the peak forecast-cache size."""

from __future__ import annotations

from typing import Any

from .decision import FALLBACKS

FALLBACK_REASONS = frozenset(str(reason) for reason in FALLBACKS)
"""Reasons that mark a full compute forced by a failed or impossible forecast, as strings."""

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(n: int) -> str:
    """Human-readable size in binary units, e.g. ``512 B``, ``1.20 MiB``."""
    if n < 0:
        raise ValueError(f"byte count must be >= 0, got {n}")
    size, unit = float(n), 0
    while size >= 1024 and unit < len(_BYTE_UNITS) - 1:
        size, unit = size / 1024, unit + 1
    return f"{n} B" if unit == 0 else f"{size:.2f} {_BYTE_UNITS[unit]}"


class RunStats:
    """Records ``(step, sigma, full, reason, gate_error)`` per model evaluation; ``step`` is the sampling-step
    index, ``gate_error`` the confidence gate's relative L1 error of that evaluation (None when not gated).

    Several evaluations may share a step (multi-evaluation samplers); a step counts as full in
    the map when any of its evaluations was full.
    """

    def __init__(self) -> None:
        self._records: list[tuple[int, float, bool, str, float | None]] = []
        self._peak_cache_bytes = 0

    def record(self, step: int, sigma: float, full: bool, reason: str = "", gate_error: float | None = None) -> None:
        """Add one evaluation; ``reason`` e.g. "schedule", "gate", "no-history", "non-finite"."""
        self._records.append((int(step), float(sigma), bool(full), reason, gate_error))

    def note_cache_bytes(self, n: int) -> None:
        """Report the current cache size in bytes; the peak is kept."""
        self._peak_cache_bytes = max(self._peak_cache_bytes, int(n))

    @property
    def evaluations(self) -> int:
        return len(self._records)

    @property
    def full_computes(self) -> int:
        return sum(record[2] for record in self._records)

    @property
    def forecasts(self) -> int:
        return self.evaluations - self.full_computes

    @property
    def fallbacks(self) -> int:
        """Evaluations whose reason is in ``FALLBACK_REASONS``."""
        return sum(record[3] in FALLBACK_REASONS for record in self._records)

    @property
    def compute_ratio(self) -> float:
        """``evaluations / full_computes`` (1.0 when nothing was computed in full)."""
        full = self.full_computes
        return self.evaluations / full if full else 1.0

    @property
    def peak_cache_bytes(self) -> int:
        return self._peak_cache_bytes

    def step_map(self, num_steps: int, forecast_char: str = "T") -> str:
        """Per step: ``F`` if any evaluation was full, ``forecast_char`` if none was, ``-`` if never run."""
        cells = ["-"] * num_steps
        for step, _, full, *_ in self._records:
            if 0 <= step < num_steps and cells[step] != "F":
                cells[step] = "F" if full else forecast_char
        return "".join(cells)

    def full_steps(self, num_steps: int) -> int:
        """Steps with a full evaluation (``F`` in ``step_map``): what a speed-up budget counts."""
        return self.step_map(num_steps).count("F")

    def step_ratio(self, num_steps: int) -> float:
        """``num_steps / full_steps`` (1.0 when no step was full): the ratio a speed-up budget asks for; on a
        sampler with one evaluation per step it is ``compute_ratio``."""
        full = self.full_steps(num_steps)
        return num_steps / full if full else 1.0

    def summary(self, num_steps: int) -> str:
        """One log line: model evaluations (full and forecast, their ratio) then steps computed, e.g. "steps 10,
        evaluations 19, full 5, forecast 14, compute ratio 3.80x, computed steps 3/10 (3.33x), cache peak ..."."""
        return (
            f"steps {num_steps}, evaluations {self.evaluations}, full {self.full_computes}, "
            f"forecast {self.forecasts}, compute ratio {self.compute_ratio:.2f}x, "
            f"computed steps {self.full_steps(num_steps)}/{num_steps} ({self.step_ratio(num_steps):.2f}x), "
            f"cache peak {format_bytes(self.peak_cache_bytes)}"
        )

    def as_dict(self, num_steps: int) -> dict[str, Any]:
        """JSON-friendly summary; ``records`` lists ``[step, sigma, full, reason, gate_error]`` per evaluation."""
        return {
            "steps": num_steps,
            "evaluations": self.evaluations,
            "full_computes": self.full_computes,
            "forecasts": self.forecasts,
            "fallbacks": self.fallbacks,
            "compute_ratio": self.compute_ratio,
            "peak_cache_bytes": self.peak_cache_bytes,
            "step_map": self.step_map(num_steps),
            "records": [list(r) for r in self._records],
        }
