"""ComfyUI's HTTP API as this client uses it: ``/object_info``, ``/prompt``, ``/queue``, ``/interrupt``,
``/history/<id>``, ``/view``. Standard library only; network failures raise ``QueueError`` with
``Exit.UNREACHABLE``, refusals with ``Exit.SERVER`` and the server's own words."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from .errors import Exit, QueueError

REQUEST_TIMEOUT_S = 60.0


class ComfyServer:
    """One ComfyUI server at ``url`` (e.g. ``http://127.0.0.1:8188``), seen by one client id."""

    def __init__(self, url: str) -> None:
        if "://" not in url:
            url = "http://" + url
        self.url = url.rstrip("/")
        self.client_id = uuid.uuid4().hex

    @property
    def ws_url(self) -> str:
        """The websocket stream of this client's messages."""
        scheme, rest = self.url.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws?clientId={self.client_id}"

    def request(self, path: str, payload: Any = None, raw: bool = False) -> Any:
        """GET ``path`` (POST JSON when ``payload`` is given); the decoded JSON, or the bytes when ``raw``."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=data,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise QueueError(Exit.SERVER, describe_rejection(exc.code, exc.read())) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise QueueError(Exit.UNREACHABLE, f"cannot reach ComfyUI at {self.url}: {reason}. Is the server "
                             "running, and is --server its address (e.g. http://127.0.0.1:8188)?") from exc
        if raw:
            return body
        return json.loads(body) if body else {}

    def object_info(self) -> dict[str, Any]:
        return self.request("/object_info")

    def queue(self, prompt: dict[str, Any]) -> str:
        """``POST /prompt``; the prompt id. A graph the server refuses raises ``QueueError`` (``Exit.SERVER``)."""
        return self.request("/prompt", {"prompt": prompt, "client_id": self.client_id})["prompt_id"]

    def history(self, prompt_id: str) -> dict[str, Any]:
        return self.request(f"/history/{urllib.parse.quote(prompt_id)}").get(prompt_id, {})

    def view(self, item: dict[str, Any]) -> bytes:
        """The bytes of one output file (an ``images``/``gifs``/... entry of a history's outputs)."""
        query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
        return self.request(f"/view?{query}", raw=True)

    def cancel(self, prompt_id: str) -> None:
        """Take the prompt off the pending queue, and interrupt it if it is the one running (only then: an
        older server's ``/interrupt`` ignores the id and would stop someone else's prompt)."""
        self.request("/queue", {"delete": [prompt_id]}, raw=True)
        running = self.request("/queue").get("queue_running", [])
        if any(len(item) > 1 and item[1] == prompt_id for item in running):
            self.request("/interrupt", {"prompt_id": prompt_id}, raw=True)


def describe_rejection(status: int, body: bytes) -> str:
    """The server's refusal of a request, one readable line per problem."""
    try:
        data = json.loads(body)
    except ValueError:
        return f"the server answered HTTP {status}: {body.decode(errors='replace').strip()[:500]}"
    error = data.get("error", {}) if isinstance(data, dict) else {}
    message = error.get("message", f"HTTP {status}") if isinstance(error, dict) else str(error)
    details = error.get("details") if isinstance(error, dict) else None
    lines = [f"the server refused the prompt: {message}" + (f" ({details})" if details else "")]
    for node_id, node in (data.get("node_errors") or {}).items():
        for problem in node.get("errors", []):
            details = str(problem.get("details") or "")
            where = f"  node {node_id} ({node.get('class_type')})"
            if problem.get("type") == "custom_validation_failed":  # "<input> - <reason>", once per input:
                details = details.split(" - ", 1)[-1]  # the node's own reason, which names its inputs
            elif (problem.get("extra_info") or {}).get("input_name"):
                where += f", input '{problem['extra_info']['input_name']}'"
            line = f"{where}: {problem.get('message')}" + (f": {details}" if details else "")
            if line not in lines:
                lines.append(line)
    return "\n".join(lines)
