"""What one model call does: its ``CallPlan``, and the decision its evaluation's calls share
(``EvaluationDecision``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..taylor_core import Decision, Mode
from .feature_cache import Chunk


class EvaluationDecision:
    """The decision of one evaluation, shared by all its calls and device threads. FULL and FORECAST are final
    when made; GATE is pending until the deciding call (the evaluation's first) settles it (at its probe, or as
    NO_PROBE on any other way out of the call); the other calls wait for it."""

    def __init__(self, evaluation: int, decision: Decision) -> None:
        self.evaluation = evaluation
        self.decision = decision
        self._final = threading.Event()
        if decision.mode is not Mode.GATE:
            self._final.set()

    def settle(self, decision: Decision) -> None:
        """The verdict of a pending gate (a final decision is kept: the first verdict wins)."""
        if not self._final.is_set():
            self.decision = decision
            self._final.set()

    def final(self) -> Decision:
        """The evaluation's decision, waiting for the deciding call while a gate is pending."""
        self._final.wait()
        return self.decision


@dataclass(frozen=True)
class CallPlan:
    """What one ``apply_model`` call does: its ``decision`` (FULL: computed, recorded when ``record``; FORECAST;
    GATE: the gate decides at the first block, only on the deciding call of an evaluation)."""

    step: int
    sigma: float
    time: float
    decision: Decision
    record: bool
    chunks: tuple[Chunk, ...]
    evaluation: EvaluationDecision
    deciding: bool  # the evaluation's first call: it settles a gate and tells the controller what happened

    @property
    def full(self) -> bool:
        return self.decision.full
