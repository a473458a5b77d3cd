"""The answer for one model call: a mode (compute in full, forecast, or let the gate's probe decide) and why.

``StepController`` (``taylor_core.controller``) is the one producer of these answers. The enums are
``str``-valued: ``Mode.FULL == "full"``, ``str(Reason.CAP) == "cap"``, so logs, run statistics and JSON carry
plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class _Name(str, Enum):
    """A ``str`` enum that prints, formats and hashes as its value on every Python version (so ``"cap"`` finds
    ``Reason.CAP`` in a set or dict)."""

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Mode(_Name):
    FULL = "full"
    FORECAST = "forecast"
    GATE = "gate"
    """Forecast only if the gate's probe agrees (decided at the first block)."""


class Reason(_Name):
    SCHEDULE = "schedule"
    """The step policy (interval, speed-up budget, or the gate's forced warm-up/tail/window steps) says so."""
    GATE = "gate"
    """The confidence gate decides, or decided (its verdict)."""
    BUDGET = "budget"
    """The speed-up budget's pacer decides (spent, or its full steps must be spent now: ``pacing.Pace``)."""
    CAP = "cap"
    """The gate's cap on consecutive forecasts is reached."""
    NO_HISTORY = "no-history"
    """A feature to forecast has no anchor under this call's key yet."""
    REPEAT_CALL = "repeat-call"
    """A second call for the same cond in one evaluation (e.g. skip-layer guidance): computed, not recorded."""
    NON_FINITE = "non-finite"
    """A forecast (or the probe a follower needs) came out NaN/inf: the call is redone in full."""
    SHAPE_CHANGE = "shape-change"
    """The call's shapes differ from those its features' history was recorded with."""
    ADAPTER_MISMATCH = "adapter-mismatch"
    """The model's blocks do not run as the family adapter says (a block the replacement never reached, or the
    adapter's own code failed)."""
    NO_CHEAP_PATH = "no-cheap-path"
    """The modules level cannot take a block's cheap path on this call (no adapter for it, or a call the cheap
    path cannot reproduce): the call is redone in full at the same level."""
    NO_PROBE = "no-probe"
    """A gated call ended before the gate's probe ran (its verdict is then full)."""
    STOPPED = "stopped"
    """Forecasting stopped for the rest of the run after a failure of the pack's own code."""


FALLBACKS = frozenset({Reason.NO_HISTORY, Reason.NON_FINITE, Reason.SHAPE_CHANGE, Reason.NO_CHEAP_PATH})
"""Reasons that mark a full compute forced by a forecast that failed or could not run (``stats.FALLBACK_REASONS``)."""


@dataclass(frozen=True)
class Decision:
    """What one model call does (``mode``) and why (``reason``)."""

    mode: Mode
    reason: Reason

    @property
    def full(self) -> bool:
        return self.mode is Mode.FULL
