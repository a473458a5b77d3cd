"""What the client prints: a progress bar fed by the websocket's ``progress`` messages (redrawn in place on a
terminal, a line per quarter otherwise) and the cache report of each TaylorSeer / CG-Taylor node."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .validate import node_label

BAR_WIDTH = 30
KINDS = {"taylorseer": "TaylorSeer", "cg_gate": "CG-Taylor Gate"}


class Console:
    """Progress and reports for one graph; ``stream`` defaults to stderr (progress) / stdout (reports)."""

    def __init__(self, graph: dict[str, Any], progress_stream: TextIO | None = None,
                 report_stream: TextIO | None = None) -> None:
        self.graph = graph
        self.progress_stream = progress_stream or sys.stderr
        self.report_stream = report_stream or sys.stdout
        self.tty = self.progress_stream.isatty()
        self._open_bar = False
        self._last_quarter: dict[str, int] = {}

    def label(self, node_id: Any) -> str:
        node_id = str(node_id)
        node = self.graph.get(node_id)
        return node_label(node_id, node) if node else f"node {node_id}"

    def progress(self, node_id: Any, value: int, maximum: int) -> None:
        maximum = max(int(maximum), 1)
        value = min(max(int(value), 0), maximum)
        filled = round(BAR_WIDTH * value / maximum)
        line = f"{self.label(node_id)} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {value}/{maximum}"
        if self.tty:
            self.progress_stream.write("\r" + line + ("\n" if value == maximum else ""))
            self._open_bar = value != maximum
        else:
            quarter = 4 * value // maximum
            if self._last_quarter.get(str(node_id)) != quarter:
                self._last_quarter[str(node_id)] = quarter
                self.progress_stream.write(line + "\n")
        self.progress_stream.flush()

    def say(self, text: str, stream: TextIO | None = None) -> None:
        """A message line, after closing any bar being redrawn."""
        if self._open_bar:
            self.progress_stream.write("\n")
            self._open_bar = False
        stream = stream or self.progress_stream
        stream.write(text + "\n")
        stream.flush()

    def report(self, report: dict[str, Any]) -> None:
        """The cache report of one TaylorSeer / CG-Taylor node (a ``taylor_forecast.report`` message)."""
        kind = KINDS.get(report.get("kind"), report.get("kind"))
        lines = [f"{kind} on {self.label(report.get('node'))}: {report.get('summary')}, level {report.get('level')}",
                 f"  map: {report.get('step_map')} (F = full, T/R = forecast)"]
        if report.get("kind") == "cg_gate":
            errors = " ".join("-" if e is None else f"{e:.3f}" for e in report.get("gate_errors") or [])
            lines.append(f"  gate errors per step: {errors} (threshold {report.get('threshold')})")
        self.say("\n".join(lines), self.report_stream)
