"""Sends a run's report to the front end over ComfyUI's websocket (the ``taylor_forecast.report`` event).

Best effort: without a running ``PromptServer`` (in-process use, tests without a server) nothing is sent, and a
failure to send is logged, never raised, so telemetry can never break sampling.
"""

from __future__ import annotations

import sys
from typing import Any

from .logs import logger
from .report_route import keep_report

EVENT = "taylor_forecast.report"


def prompt_server():
    """The running ``server.PromptServer`` instance, or None. Looked up, never imported: importing ComfyUI's
    ``server`` module outside a server process would start nothing and cost seconds."""
    module = sys.modules.get("server")
    return getattr(getattr(module, "PromptServer", None), "instance", None)


def send_report(report: dict[str, Any]) -> bool:
    """Send ``report`` (from ``nodes.report.run_report``) to the client that queued the prompt (all clients when
    it has no client id, as ComfyUI's own progress messages do); returns whether it was handed to the server."""
    try:
        instance = prompt_server()
        if instance is None:
            logger.debug("no PromptServer instance: the run report is only logged")
            return False
        payload = dict(report, prompt_id=getattr(instance, "last_prompt_id", None))
        keep_report(payload)
        instance.send_sync(EVENT, payload, getattr(instance, "client_id", None))
        return True
    except Exception:  # telemetry must never break sampling
        logger.warning("could not send the run report to the front end", exc_info=True)
        return False
