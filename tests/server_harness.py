"""One real ComfyUI server for the whole test session (``scripts/comfy_host.py``, CPU, a free port), with the
demo model in place: started by the first test that asks, stopped when the session ends.

Test modules ask through a fixture of their own: ``server_harness.comfy_server(request)``.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from comfy_harness import REPO

sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "demo"))

DEMO_WORKFLOW = REPO / "workflows" / "demo_wan_digits_taylorseer_api.json"


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:<port>
    port: int
    log_path: Path  # the server's stdout and stderr

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):] + "/ws"


_server: Server | None = None


def free_port() -> int:
    """A TCP port nobody listens on right now (also what a refused-connection test points at)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def comfy_server(request) -> Server:
    """The session's server (``request``: any pytest fixture request), started on first use."""
    global _server
    if _server is None:
        import comfy_host
        from demo_model import ensure_trained

        ensure_trained(comfy_host.comfy_root())
        port = free_port()
        comfy_host.start(port)
        _server = Server(comfy_host.server_url(port), port, comfy_host.log_file(port))
        request.session.addfinalizer(_stop)
    return _server


def _stop() -> None:
    global _server
    if _server is not None:
        import comfy_host

        comfy_host.stop(_server.port)
        _server = None
