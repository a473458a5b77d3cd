"""One real ComfyUI server for the whole test session (``scripts/comfy_host.py``, CPU, a free port), with the
demo model in place: started by the first test that asks, stopped when the session ends.

Test modules ask through a fixture of their own: ``server_harness.comfy_server(request)``.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from comfy_harness import REPO

sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "demo"))

DEMO_WORKFLOW = REPO / "workflows" / "api" / "demo_wan_digits_taylorseer_api.json"


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


@contextmanager
def models_server(base: Path, folders: Iterable[str], custom_nodes: Path | None = None) -> Iterator[Server]:
    """A real ComfyUI server of its own (not the session's; no demo model needed) whose extra model folders are
    ``base/models/<folder>`` for each of ``folders`` (files put there are listed as the folder's), which writes
    its outputs to ``base/output`` and also loads the custom nodes of ``custom_nodes``; stopped on exit."""
    import comfy_host

    config = base / "extra_model_paths.yaml"
    config.write_text("taylor_test_models:\n" + f"    base_path: {json.dumps(str(base))}\n"
                      + "".join(f"    {f}: models/{f}\n" for f in sorted(set(folders)))
                      + (f"    custom_nodes: {json.dumps(str(custom_nodes))}\n" if custom_nodes else ""))
    port = free_port()
    comfy_host.start(port, extra_args=("--extra-model-paths-config", str(config),
                                       "--output-directory", str(base / "output")))
    try:
        yield Server(comfy_host.server_url(port), port, comfy_host.log_file(port))
    finally:
        comfy_host.stop(port)
