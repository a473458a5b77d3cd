"""Registration of the pack's nodes with ComfyUI, one node group at a time.

A group whose modules cannot be imported, or whose schema cannot be built, on this ComfyUI or torch (e.g. a
torch without float8 types for the FP8 Loader) is left out with one logged line naming it and the reason; the
other groups register. A ComfyUI without the V3 node API (``comfy_api.latest``) gets one logged line and no
nodes, never a traceback.
"""

from __future__ import annotations

import importlib

from .logs import LOG_PREFIX, logger

NODE_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "TaylorSeer (TaylorSeer Apply, CG-Taylor Gate)": (("taylorseer_apply", "TaylorSeerApply"),
                                                      ("cg_taylor_gate", "CGTaylorGate")),
    "FP8 (FP8 Loader)": (("fp8.loader", "FP8Loader"),),
}
"""Node group name (as logged) -> (module relative to this package, e.g. ``fp8.loader``, node class) of each node."""


def v3_api_missing() -> str | None:
    """Why this ComfyUI's V3 node API cannot be used (logged once), or None when it can."""
    try:
        from comfy_api.latest import ComfyExtension, io  # noqa: F401
    except ImportError as exc:
        reason = (f"{LOG_PREFIX} this ComfyUI has no V3 node API (comfy_api.latest: {exc}); the pack needs "
                  "ComfyUI 0.3.75 or later: no nodes registered")
        logger.error(reason)
        return reason
    return None


def group_nodes(members: tuple[tuple[str, str], ...]) -> list[type]:
    """The node classes of one node group, each schema built once (ComfyUI builds it again at registration)."""
    classes = [getattr(importlib.import_module(f".{module}", __package__), name) for module, name in members]
    for cls in classes:
        cls.GET_SCHEMA()
    return classes


def node_classes() -> list[type]:
    """Every node class of the node groups that load here; a group that fails is logged and left out."""
    classes = []
    for group, members in NODE_GROUPS.items():
        try:
            classes += group_nodes(members)
        except Exception as exc:  # any failure of one group must leave the others registered
            logger.error("%s the %s nodes are not registered: %s: %s", LOG_PREFIX, group, type(exc).__name__,
                         exc)
    return classes


def install_server_hooks() -> None:
    """With ComfyUI's server running (not in-process use): the validation's prompt hook and the reports' routes."""
    from .report_route import install_routes
    from .telemetry import prompt_server
    from .validation import install_prompt_hook

    server = prompt_server()
    if server is not None:
        install_prompt_hook(server)
        install_routes(server)


def comfy_entrypoint():
    """ComfyUI's V3 entry point: the pack's ``ComfyExtension``."""
    from comfy_api.latest import ComfyExtension

    class TaylorForecastExtension(ComfyExtension):
        async def get_node_list(self) -> list[type]:
            install_server_hooks()
            return node_classes()

    return TaylorForecastExtension()
