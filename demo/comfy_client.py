"""A minimal client for ComfyUI's HTTP API (standard library only): queue a prompt, wait, fetch images."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from taylor_queue.api import describe_rejection  # the repository root is on sys.path (run_demo, the tests)


class ComfyError(RuntimeError):
    """The server refused or failed a prompt; the message is the server's, made readable."""


class ComfyClient:
    def __init__(self, server: str, timeout_s: float = 600.0) -> None:
        self.server = server.rstrip("/")
        self.timeout_s = timeout_s
        self.client_id = uuid.uuid4().hex

    def _request(self, path: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.server + path, data=data,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise ComfyError(describe_rejection(exc.code, exc.read())) from exc
        return json.loads(body) if body else {}

    def queue(self, prompt: dict) -> str:
        """POST /prompt; returns the prompt id. Validation errors raise ComfyError."""
        return self._request("/prompt", {"prompt": prompt, "client_id": self.client_id})["prompt_id"]

    def wait(self, prompt_id: str) -> dict:
        """Poll /history until the prompt finished; returns its history entry."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            entry = self._request(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if status.get("status_str") == "error":
                    raise ComfyError(_execution_error(status))
                return entry
            time.sleep(0.05)
        raise ComfyError(f"prompt {prompt_id} did not finish within {self.timeout_s:.0f} s")

    def run(self, prompt: dict) -> dict:
        return self.wait(self.queue(prompt))

    def image(self, info: dict) -> bytes:
        query = urllib.parse.urlencode({k: info[k] for k in ("filename", "subfolder", "type")})
        with urllib.request.urlopen(f"{self.server}/view?{query}", timeout=30) as response:
            return response.read()

    def free(self) -> None:
        """Drop the server's execution cache (and loaded models) so the next prompt runs every node."""
        self._request("/free", {"unload_models": True, "free_memory": True})


def execution_seconds(entry: dict) -> float:
    """Server-side wall time of a finished prompt, from its execution_start to execution_success messages."""
    stamps = {kind: data.get("timestamp") for kind, data in entry["status"].get("messages", [])}
    return (stamps["execution_success"] - stamps["execution_start"]) / 1000.0


def output_images(entry: dict) -> list[dict]:
    return [image for output in entry.get("outputs", {}).values() for image in output.get("images", [])]


def _execution_error(status: dict) -> str:
    for kind, data in status.get("messages", []):
        if kind == "execution_error":
            return (f"node {data.get('node_id')} ({data.get('node_type')}) failed: "
                    f"{data.get('exception_type', 'error')}: {str(data.get('exception_message')).strip()}")
    return "the prompt failed"
