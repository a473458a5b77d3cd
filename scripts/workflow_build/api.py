"""A UI graph as an API-format prompt (``POST /prompt``), as the front end's graphToPrompt makes it."""

from __future__ import annotations

from typing import Any

from .widgets import VIRTUAL_NODES, widget_dict


def ui_to_api(ui: dict, object_info: dict) -> dict:
    """The API-format prompt of a UI graph, as the front end's graphToPrompt makes it: active, non-virtual nodes;
    widget values by name; linked inputs as ``[origin id, output slot]``."""
    links = {link[0]: link for link in ui["links"]}
    prompt: dict[str, dict] = {}
    for node in sorted(ui["nodes"], key=lambda n: n["id"]):
        if node["type"] in VIRTUAL_NODES or node.get("mode", 0) == 2:
            continue
        if node.get("mode", 0) != 0:
            raise ValueError(f"node {node['id']} ({node['type']}) has mode {node['mode']}: not handled here")
        info = object_info[node["type"]]
        inputs: dict[str, Any] = dict(widget_dict(node, info))
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, origin, origin_slot, *_ = links[slot["link"]]
                inputs[slot.get("widget", {}).get("name", slot["name"])] = [str(origin), origin_slot]
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": node["type"],
                                   "_meta": {"title": node.get("title") or info["display_name"] or node["type"]}}
    return prompt

