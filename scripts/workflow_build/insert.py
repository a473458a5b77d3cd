"""The pack's nodes put into a template: a new node before a sampler, a loader swapped for the pack's."""

from __future__ import annotations

import re
from typing import Any

from . import PACK_ID, REPO
from .graph import GAP, TITLE_HEIGHT, Graph
from .specs import Insert
from .widgets import MODEL_FOLDERS, input_kind, input_spec, widget_dict, widget_names

OUR_COLOR, OUR_BGCOLOR = "#232", "#353"
SLOT_HEIGHT, WIDGET_HEIGHT = 20, 24
# The height the web badge (web/) adds below the widgets, as the front end 1.32.9 lays the nodes out.
BADGE_HEIGHT = {"TaylorSeerApply": 96, "CGTaylorGate": 134}


def pack_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE).group(1)


def node_size(node_type: str, widgets: int) -> list[float]:
    """A node's size (title bar excluded) with one row of slots, ``widgets`` widgets and its badge, if any."""
    return [320, SLOT_HEIGHT + widgets * WIDGET_HEIGHT + 16 + BADGE_HEIGHT.get(node_type, 0)]


def our_node(graph: Graph, node_type: str, settings: dict[str, Any], info: dict, pos: list[float] | None = None,
             node_id: int | None = None, inputs: list[dict] | None = None) -> dict:
    """A UI node of the pack: widget values from ``settings`` or the node's defaults, in widget order."""
    values = []
    for name in widget_names(info):
        if name in settings:
            values.append(settings[name])
            continue
        kind, options = input_kind(input_spec(info, name))
        if "default" not in options:
            raise ValueError(f"{node_type}.{name} has no default: give it in the spec")
        values.append(options["default"])
    unknown = set(settings) - set(widget_names(info))
    if unknown:
        raise ValueError(f"{node_type} has no widget {sorted(unknown)}")
    return {
        "id": node_id if node_id is not None else graph.new_node_id(), "type": node_type, "pos": pos or [0, 0],
        "size": node_size(node_type, len(values)), "flags": {}, "order": 0, "mode": 0, "inputs": inputs or [],
        "outputs": [{"name": name, "type": kind, "links": []} for name, kind in zip(info["output_name"],
                                                                                    info["output"])],
        "properties": {"Node name for S&R": node_type, "cnr_id": PACK_ID, "ver": pack_version()},
        "widgets_values": values, "color": OUR_COLOR, "bgcolor": OUR_BGCOLOR,
    }


def insert_before(graph: Graph, sampler: dict, spec: Insert, object_info: dict) -> dict:
    """Put a new ``spec.node_type`` node on the ``model`` input of ``sampler``; returns the new node."""
    info = object_info[spec.node_type]
    slot = graph.input_slot(sampler, "model")
    _, origin, origin_slot, _, _, kind = graph.unlink(sampler["inputs"][slot]["link"])
    node = our_node(graph, spec.node_type, spec.settings, info,
                    inputs=[{"name": "model", "type": "MODEL", "link": None}])
    near = (sampler["pos"][0], sampler["pos"][1] - node["size"][1] - TITLE_HEIGHT - GAP)
    node["pos"] = graph.free_spot(node["size"], near)
    graph.nodes[node["id"]] = node
    graph.connect(origin, origin_slot, node["id"], 0, kind)
    graph.connect(node["id"], 0, sampler["id"], slot, kind)
    return node


def swap_loader(graph: Graph, node_id: int, node_type: str, settings: dict[str, Any], object_info: dict) -> None:
    """Replace a loader by ``node_type`` (same id, output links and model-file properties, the free place
    nearest the old one); its model-file widget values carry over by name."""
    old = graph.node(node_id)
    old_values = widget_dict(old, object_info[old["type"]])
    info = object_info[node_type]
    carried = {k: v for k, v in old_values.items() if k in MODEL_FOLDERS and k in widget_names(info)}
    new = our_node(graph, node_type, {**carried, **settings}, info, node_id=node_id)
    del graph.nodes[node_id]
    new["pos"] = graph.free_spot(new["size"], tuple(old["pos"]))  # it is taller than the loader it replaces
    if len(new["outputs"]) != len(old["outputs"]) or any(
            a["type"] != b["type"] for a, b in zip(new["outputs"], old["outputs"])):
        raise ValueError(f"{node_type} does not give the outputs of {old['type']}")
    for new_out, old_out in zip(new["outputs"], old["outputs"]):
        new_out["links"] = list(old_out.get("links") or [])
    if "models" in old.get("properties", {}):
        new["properties"]["models"] = old["properties"]["models"]
    graph.nodes[node_id] = new

