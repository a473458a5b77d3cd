"""One workflow from its official template (``build_ui``), and every file of every spec (``build_all``)."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import PACK_ID
from .api import ui_to_api
from .graph import GAP, TITLE_HEIGHT, Graph
from .insert import OUR_BGCOLOR, OUR_COLOR, insert_before, swap_loader
from .note import note_text, run_steps, step_plan
from .specs import SAMPLERS, SPECS, WorkflowSpec
from .thumbnail import thumbnail

TEMPLATES_DIST = "comfyui-workflow-templates"


def template_path(template_id: str) -> Path:
    import comfyui_workflow_templates

    return Path(comfyui_workflow_templates.get_asset_path(template_id, f"{template_id}.json"))


def templates_version() -> str:
    from importlib.metadata import version

    return version(TEMPLATES_DIST)


def build_ui(spec: WorkflowSpec, object_info: dict) -> dict:
    """The UI graph of ``spec`` (the template, edited)."""
    path = template_path(spec.template)
    template = json.loads(path.read_text(encoding="utf-8"))
    graph = Graph(copy.deepcopy(template))
    dropped_centres = []
    for node_id in spec.drop:
        x0, y0, x1, y1 = graph.bounds(graph.node(node_id))
        dropped_centres.append(((x0 + x1) / 2, (y0 + y1) / 2))
        graph.drop(node_id)
    graph.data["groups"] = [g for g in graph.groups() if not any(
        g["bounding"][0] <= x <= g["bounding"][0] + g["bounding"][2]
        and g["bounding"][1] <= y <= g["bounding"][1] + g["bounding"][3] for x, y in dropped_centres)]
    for node_id in spec.enable:
        graph.node(node_id)["mode"] = 0
    if spec.loader is not None:
        swap_loader(graph, *spec.loader, object_info)
    leftover = [n["id"] for n in graph.nodes.values() if n.get("mode", 0) == 4]
    if leftover:
        raise ValueError(f"{spec.name}: bypassed nodes {leftover} left: drop or enable them")
    samplers = [n for n in sorted(graph.nodes.values(), key=lambda n: n["id"])
                if n["type"] in SAMPLERS and n.get("mode", 0) == 0]
    if not samplers:
        raise ValueError(f"{spec.name}: no sampler in the template")
    inserted = []
    for sampler in samplers:
        node = insert_before(graph, sampler, spec.insert, object_info)
        steps = run_steps(graph, sampler, object_info)
        inserted.append((node, steps, step_plan(node, object_info[node["type"]], steps)))
    x0 = min(graph.bounds(n)[0] for n in graph.nodes.values())
    y0 = min(graph.bounds(n)[1] for n in graph.nodes.values())
    version = templates_version()
    note = {"id": graph.new_node_id(), "type": "MarkdownNote", "pos": [x0 - 560 - GAP * 2, y0 + TITLE_HEIGHT],
            "size": [560, 640], "flags": {}, "order": 0, "mode": 0, "inputs": [], "outputs": [],
            "title": "Model files and TaylorSeer settings", "properties": {},
            "widgets_values": [note_text(spec, graph, inserted, object_info, version)],
            "color": OUR_COLOR, "bgcolor": OUR_BGCOLOR}
    graph.nodes[note["id"]] = note
    data = graph.finish()
    data["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{PACK_ID}/workflows/{spec.name}"))
    data["revision"] = 0
    data["extra"] = {"ds": {"scale": 0.6, "offset": [60, 60]},
                     "taylor_forecast": {"generated_by": "scripts/build_workflows.py", "template": spec.template,
                                         "template_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                         "templates_version": version, "family": spec.family}}
    return data


def dump(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@dataclass
class Built:
    """The files of every spec, by path relative to the repository: JSON text, and thumbnails as bytes."""

    json_files: dict[str, str] = field(default_factory=dict)
    thumbnails: dict[str, bytes] = field(default_factory=dict)


def build_all(object_info: dict, with_thumbnails: bool = True) -> Built:
    built = Built()
    for spec in SPECS:
        ui = build_ui(spec, object_info)
        built.json_files[f"workflows/{spec.name}.json"] = dump(ui)
        built.json_files[f"workflows/api/{spec.name}_api.json"] = dump(ui_to_api(ui, object_info))
        if with_thumbnails:
            built.thumbnails[f"workflows/{spec.name}.jpg"] = thumbnail(spec, ui, object_info)
    from .demo import build_demo  # here: it builds on this module

    build_demo(object_info, built, with_thumbnails)
    return built

