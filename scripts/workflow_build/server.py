"""``/object_info`` of a running ComfyUI, or of the host's, started on a free port for the call."""

from __future__ import annotations

import json
import socket
import sys
import urllib.request

from . import REPO


def fetch_object_info(server: str) -> dict:
    with urllib.request.urlopen(server.rstrip("/") + "/object_info", timeout=60) as response:
        return json.loads(response.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_object_info(server: str | None) -> dict:
    """``/object_info`` of ``server``, or (None) of the host's server, started on a free port for the call."""
    if server:
        return fetch_object_info(server)
    sys.path.insert(0, str(REPO / "scripts"))
    import comfy_host

    port = free_port()
    comfy_host.start(port)
    try:
        return fetch_object_info(comfy_host.server_url(port))
    finally:
        comfy_host.stop(port)

