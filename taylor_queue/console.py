"""What the client prints: a progress bar fed by the websocket's ``progress`` messages, drawn as ComfyUI's own
console draws its sampler bar (tqdm's layout; redrawn in place on a terminal, a line per quarter otherwise),
and the cache report of each TaylorSeer / CG-Taylor node."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .validate import node_label

BAR_WIDTH = 30
KINDS = {"taylorseer": "TaylorSeer", "cg_gate": "CG-Taylor Gate"}


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60:d}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes:02d}:{secs:02d}"


def progress_line(value: int, maximum: int, elapsed_s: float, label: str = "") -> str:
    """One bar in tqdm's layout, as ComfyUI prints its steps: ``label: 40%|####      | 12/30 [00:03<00:04,
    4.00it/s]`` (elapsed<remaining, rate; ``s/it`` below one a second)."""
    filled = round(BAR_WIDTH * value / maximum)
    rate = value / elapsed_s if elapsed_s > 0 else 0.0
    remaining = _clock((maximum - value) / rate) if rate > 0 else "?"
    speed = f"{rate:.2f}it/s" if rate >= 1 or rate == 0 else f"{1 / rate:.2f}s/it"
    return (f"{label + ': ' if label else ''}{100 * value // maximum:3d}%|{'#' * filled}{' ' * (BAR_WIDTH - filled)}| "
            f"{value}/{maximum} [{_clock(elapsed_s)}<{remaining}, {speed}]")


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
        self._bar_start: dict[str, float] = {}  # node id -> when its bar was at 0

    def label(self, node_id: Any) -> str:
        node_id = str(node_id)
        node = self.graph.get(node_id)
        return node_label(node_id, node) if node else f"node {node_id}"

    def progress(self, node_id: Any, value: int, maximum: int) -> None:
        maximum = max(int(maximum), 1)
        value = min(max(int(value), 0), maximum)
        now = time.monotonic()
        if value <= 1 or str(node_id) not in self._bar_start:
            self._bar_start[str(node_id)] = now
        line = progress_line(value, maximum, now - self._bar_start[str(node_id)], self.label(node_id))
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
