"""Queues one graph and follows it over the websocket until it finishes, fails or runs out of time; then
downloads its outputs."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import ComfyServer
from .console import Console
from .errors import Exit, QueueError
from .websocket import WebSocket, WebSocketClosed

REPORT_EVENT = "taylor_forecast.report"


@dataclass
class RunResult:
    prompt_id: str
    history: dict[str, Any]
    reports: list[dict[str, Any]] = field(default_factory=list)
    cached_nodes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_graph(server: ComfyServer, graph: dict[str, Any], timeout_s: float, console: Console) -> RunResult:
    """Queue ``graph`` and wait for it. The websocket is opened before queueing so no message is missed.
    Raises ``QueueError``: ``Exit.SERVER`` (refused or failed), ``Exit.TIMEOUT`` (the prompt is then cancelled
    on the server), ``Exit.UNREACHABLE``."""
    start = time.monotonic()
    try:
        ws = WebSocket(server.ws_url)
    except OSError as exc:
        raise QueueError(Exit.UNREACHABLE, f"cannot open the websocket of {server.url}: {exc}") from exc
    with ws:
        prompt_id = server.queue(graph)
        console.say(f"queued prompt {prompt_id}")
        result = RunResult(prompt_id, {})
        try:
            _follow(ws, prompt_id, start + timeout_s, timeout_s, console, result)
        except KeyboardInterrupt:
            server.cancel(prompt_id)
            raise
        except QueueError as exc:
            if exc.exit_code == Exit.TIMEOUT:
                server.cancel(prompt_id)
            raise
    result.history = _finished_history(server, prompt_id, start + timeout_s)
    result.seconds = time.monotonic() - start
    return result


def _finished_history(server: ComfyServer, prompt_id: str, deadline: float) -> dict[str, Any]:
    """The prompt's history entry: the server writes it just after its last websocket message, so poll."""
    while True:
        history = server.history(prompt_id)
        if history.get("status", {}).get("completed") is not None or time.monotonic() > deadline:
            return history
        time.sleep(0.05)


def _follow(ws: WebSocket, prompt_id: str, deadline: float, timeout_s: float, console: Console,
            result: RunResult) -> None:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise QueueError(Exit.TIMEOUT, f"prompt {prompt_id} did not finish within --timeout {timeout_s:g} s; "
                             "it was cancelled on the server")
        try:
            message = ws.recv(remaining)
        except TimeoutError:
            continue
        except (WebSocketClosed, OSError) as exc:
            raise QueueError(Exit.UNREACHABLE,
                             f"lost the connection to the server while prompt {prompt_id} ran: {exc}") from exc
        if isinstance(message, bytes):
            continue  # previews
        event = json.loads(message)
        kind, data = event.get("type"), event.get("data") or {}
        if data.get("prompt_id") not in (None, prompt_id):
            continue
        if kind == "progress":
            console.progress(data.get("node"), data.get("value", 0), data.get("max", 1))
        elif kind == REPORT_EVENT:
            result.reports.append(data)
            console.report(data)
        elif kind == "execution_cached":
            result.cached_nodes = [str(n) for n in data.get("nodes", [])]
        elif kind == "execution_error":
            raise QueueError(Exit.SERVER, f"{console.label(data.get('node_id'))} ({data.get('node_type')}) failed: "
                             f"{data.get('exception_type', 'error')}: {str(data.get('exception_message')).strip()}")
        elif kind == "execution_interrupted":
            raise QueueError(Exit.SERVER, f"prompt {prompt_id} was interrupted on the server")
        elif kind == "execution_success" or (kind == "executing" and data.get("node") is None
                                             and data.get("prompt_id") == prompt_id):
            return


def output_files(history: dict[str, Any]) -> list[dict[str, Any]]:
    """Every file a finished prompt produced (``images``, ``gifs``, ``audio``, ... entries with a filename)."""
    return [item for output in (history.get("outputs") or {}).values() for items in output.values()
            if isinstance(items, list) for item in items if isinstance(item, dict) and "filename" in item]


def download_outputs(server: ComfyServer, history: dict[str, Any], out_dir: Path) -> list[Path]:
    """Save every output file under ``out_dir`` (keeping the server's subfolder); the paths written."""
    saved = []
    for item in output_files(history):
        parts = [p for p in Path(str(item.get("subfolder") or "")).parts if p not in ("..", "/", "\\")]
        target = out_dir.joinpath(*parts, Path(str(item["filename"])).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(server.view(item))
        saved.append(target)
    return saved
