"""Every line the pack logs names the node it belongs to and the prompt that ran it: `` [node 2, prompt <id>]``.

The node is the patching node (TaylorSeer Apply or CG-Taylor Gate) whose code or sampling run logs, held in a
context variable for the span of the node's ``execute`` and of its sampling run (``node_scope``); the prompt is
the server's running prompt. Either is left out where unknown (in-process use without a server; a thread ComfyUI
started, which does not inherit the context variable, names only the prompt).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

from .telemetry import prompt_server

LOGGER = "taylor_forecast"
CURRENT_NODE: ContextVar[str | None] = ContextVar("taylor_forecast_node", default=None)
"""The id of the patching node whose code is running (set by ``node_scope``)."""


def running_prompt_id() -> str | None:
    """The id of the prompt the server is running, or None (no server)."""
    return getattr(prompt_server(), "last_prompt_id", None)


def ids_suffix() -> str:
    """`` [node N, prompt P]`` for the current node and prompt, either left out where unknown; "" if both are."""
    parts = [f"{kind} {value}" for kind, value in (("node", CURRENT_NODE.get()), ("prompt", running_prompt_id()))
             if value is not None]
    return f" [{', '.join(parts)}]" if parts else ""


@contextlib.contextmanager
def node_scope(node_id: str | None) -> Iterator[None]:
    """Log lines within name ``node_id`` (None: unknown, e.g. a node run outside a prompt)."""
    token = CURRENT_NODE.set(node_id)
    try:
        yield
    finally:
        CURRENT_NODE.reset(token)


class _IdsFilter(logging.Filter):
    """Appends ``ids_suffix()`` to each record of the pack's logger (once per record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "taylor_ids", False):
            suffix = ids_suffix().replace("%", "%%") if record.args else ids_suffix()
            record.msg, record.taylor_ids = f"{record.msg}{suffix}", True
        return True


def install() -> None:
    """Attach the filter to the pack's logger (idempotent: a reloaded module does not attach a second one)."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(f, logging.Filter) and type(f).__name__ == _IdsFilter.__name__ for f in logger.filters):
        logger.addFilter(_IdsFilter())


install()
