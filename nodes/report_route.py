"""The last run reports over HTTP, for clients without a websocket. ComfyUI's ``/history`` cannot carry them:
a report is made while the sampler runs, after the patching node returned its output.

``GET /taylor_forecast/reports``: ``{prompt id: {node id: report}}`` of the last ``KEEP_PROMPTS`` prompts that
sampled with a forecasting node, oldest first; ``GET /taylor_forecast/reports/{prompt_id}``: ``{node id: report}``
of one prompt, HTTP 404 when it has none. Reports as ``nodes.report.run_report`` makes them, ``prompt_id`` filled.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from .logs import LOG_PREFIX, logger

ROUTE = "/taylor_forecast/reports"
KEEP_PROMPTS = 64

_reports: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()
_lock = threading.Lock()  # reports are kept from the execution thread, read from the server's loop
_installed: list[Any] = []  # the servers whose routes hold ours


def keep_report(report: dict[str, Any]) -> None:
    """Keep ``report`` (with its ``prompt_id``) as the latest of its node in its prompt; forget the oldest prompt
    beyond ``KEEP_PROMPTS``."""
    prompt_id, node = report.get("prompt_id"), report.get("node")
    if prompt_id is None:
        return
    with _lock:
        _reports.setdefault(str(prompt_id), {})[str(node)] = report
        _reports.move_to_end(str(prompt_id))
        while len(_reports) > KEEP_PROMPTS:
            _reports.popitem(last=False)


def reports(prompt_id: str | None = None) -> dict[str, Any] | None:
    """All kept reports, or one prompt's (None when it has none); copies."""
    with _lock:
        if prompt_id is None:
            return {key: dict(nodes) for key, nodes in _reports.items()}
        kept = _reports.get(prompt_id)
        return dict(kept) if kept is not None else None


def install_routes(server: Any) -> bool:
    """Add the two GET routes to ComfyUI's ``PromptServer`` ``server`` (before it starts; once). False when it has
    no route table."""
    routes = getattr(server, "routes", None)
    if routes is None or not hasattr(routes, "get"):
        logger.info("%s this ComfyUI's server has no route table: run reports only in the log and "
                    "over the websocket", LOG_PREFIX)
        return False
    if server in _installed:
        return True
    from aiohttp import web

    @routes.get(ROUTE)
    async def all_reports(_request: web.Request) -> web.Response:
        return web.json_response(reports())

    @routes.get(ROUTE + "/{prompt_id}")
    async def prompt_reports(request: web.Request) -> web.Response:
        kept = reports(request.match_info["prompt_id"])
        if kept is None:
            return web.json_response({"error": "no report for this prompt id"}, status=404)
        return web.json_response(kept)

    _installed.append(server)
    return True
