"""The demo's workflow, ``demo_wan_digits_taylorseer``: the pack's tiny trained Wan 2.1 model drawing digits.

No official template has its nodes (its conditioning and decoding are the demo's own, ``demo/comfy_nodes``), so
the graph is built from ``NODES`` here: the UI graph (ComfyUI's template browser lists it, with its thumbnail) and
the API graph (``workflows/api/``: ``scripts/demo.sh``, the headless client and the tests queue it). Called by
``build.build_all``; widget order and defaults come from the server's ``/object_info`` as there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from . import PACK_ID
from .api import ui_to_api
from .build import Built, dump, templates_version
from .graph import GAP, TITLE_HEIGHT, Graph
from .insert import OUR_BGCOLOR, OUR_COLOR, our_node
from .note import step_plan
from .specs import WAN, Insert, WorkflowSpec
from .thumbnail import thumbnail
from .widgets import CONTROL, input_kind, input_spec, widget_dict

DEMO_MODEL = "taylor_demo_wan_digits.safetensors"  # demo/demo_model.py's name; scripts/demo.sh trains it


@dataclass(frozen=True)
class DemoNode:
    """One node of the demo graph: its widget settings (the others take the node's defaults) and its links
    (input name -> (origin node id, output slot))."""

    id: int
    type: str
    title: str
    settings: dict[str, Any]
    links: dict[str, tuple[int, int]] = field(default_factory=dict)
    column: int = 0  # left to right in the UI graph


DEMO = WorkflowSpec(
    "demo_wan_digits_taylorseer", "Demo: tiny Wan 2.1 digits + TaylorSeer Apply", "", "wan",
    Insert("TaylorSeerApply", WAN, "the recommended settings (README): a speed-up budget of 3, measured on "
              "this demo model at 30 euler steps: 10 steps computed (3.00x) at 44.61 dB PSNR (docs/benchmarks.md)."))

NODES: tuple[DemoNode, ...] = (
    DemoNode(1, "UNETLoader", "Load the demo model (trained tiny Wan 2.1)",
             {"unet_name": DEMO_MODEL, "weight_dtype": "default"}),
    DemoNode(2, "TaylorSeerApply", "TaylorSeer Apply", DEMO.insert.settings, {"model": (1, 0)}, column=1),
    DemoNode(3, "TaylorDemoDigitConditioning", "Positive: the digit to draw", {"digit": 3, "unconditional": False}),
    DemoNode(4, "TaylorDemoDigitConditioning", "Negative: unconditional", {"digit": 0, "unconditional": True}),
    DemoNode(5, "EmptyHunyuanLatentVideo", "Empty latent (Wan layout)",
             {"width": 128, "height": 128, "length": 1, "batch_size": 8}),
    DemoNode(6, "KSampler", "KSampler", {"seed": 0, CONTROL: "fixed", "steps": 30, "cfg": 4.0,
                                         "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0},
             {"model": (2, 0), "positive": (3, 0), "negative": (4, 0), "latent_image": (5, 0)}, column=2),
    DemoNode(7, "TaylorDemoDigitDecode", "Decode the demo latent", {}, {"samples": (6, 0)}, column=3),
    DemoNode(8, "SaveImage", "Save", {"filename_prefix": "taylor_demo"}, {"images": (7, 0)}, column=4),
)
STEPS = 30  # KSampler's steps (node 6)


def _ui_node(graph: Graph, spec: DemoNode, object_info: dict, pos: list[float]) -> dict:
    """A UI node with ``spec``'s widget values (defaults elsewhere) and unlinked input slots."""
    info = object_info[spec.type]
    node = our_node(graph, spec.type, spec.settings, info, pos=pos, node_id=spec.id, inputs=[
        {"name": name, "type": input_kind(input_spec(info, name))[0], "link": None} for name in spec.links])
    node["title"] = spec.title
    if spec.type != DEMO.insert.node_type:  # the pack's node keeps its colour and registry id
        for key in ("color", "bgcolor"):
            del node[key]
        node["properties"] = {"Node name for S&R": spec.type}
    if spec.type == "UNETLoader":  # what the stand-in files and the missing-models dialog list
        node["properties"]["models"] = [{"name": DEMO_MODEL, "directory": "diffusion_models"}]
    return node


def build_demo_ui(object_info: dict) -> dict:
    """The demo's UI graph: ``NODES`` in columns, linked, and a note with the settings and the step plan."""
    graph = Graph({"last_node_id": 0, "last_link_id": 0, "nodes": [], "links": [], "groups": [],
                      "config": {}, "version": 0.4})
    tops: dict[int, float] = {}
    for spec in NODES:
        y = tops.get(spec.column, 0.0)
        node = _ui_node(graph, spec, object_info, [spec.column * 380.0, y + TITLE_HEIGHT])
        graph.nodes[spec.id] = node
        tops[spec.column] = y + TITLE_HEIGHT + node["size"][1] + GAP
    for spec in NODES:
        for slot, (origin, origin_slot) in enumerate(spec.links.values()):
            graph.connect(origin, origin_slot, spec.id, slot, graph.nodes[spec.id]["inputs"][slot]["type"])
    ours = graph.nodes[2]
    plan = step_plan(ours, object_info[ours["type"]], STEPS)
    values = widget_dict(ours, object_info[ours["type"]])
    text = "\n".join([
        f"## {DEMO.title}", "", "The pack's tiny Wan 2.1 model, trained on digits: `bash scripts/demo.sh` trains it "
        f"once into `models/diffusion_models/{DEMO_MODEL}` and installs the demo's nodes (`demo/comfy_nodes`), then "
        "queues this graph and prints the speed-up and the PSNR against the same graph without TaylorSeer Apply.",
        "", "### TaylorSeer Apply", "", ", ".join(f"`{k}` {v}" for k, v in values.items()) + ".", "",
        f"Node 2, {STEPS} steps per run: `{plan}` (F computed, T forecast): {plan.count('F')} of {STEPS} steps "
        f"computed, {STEPS / plan.count('F'):.2f}x fewer model evaluations.", "", f"Why: {DEMO.insert.why}"])
    note_id = graph.new_node_id()
    graph.nodes[note_id] = {"id": note_id, "type": "MarkdownNote", "pos": [0, tops[0] + TITLE_HEIGHT],
                            "size": [560, 360], "flags": {}, "order": 0, "mode": 0, "inputs": [], "outputs": [],
                            "title": "The demo and its TaylorSeer settings", "properties": {},
                            "widgets_values": [text], "color": OUR_COLOR, "bgcolor": OUR_BGCOLOR}
    data = graph.finish()
    data["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{PACK_ID}/workflows/{DEMO.name}"))
    data["revision"] = 0
    data["extra"] = {"ds": {"scale": 0.8, "offset": [60, 60]},
                     "taylor_forecast": {"generated_by": "scripts/build_workflows.py (scripts/workflow_build/demo.py)",
                                         "template": None, "templates_version": templates_version(),
                                         "family": DEMO.family}}
    return data


def build_demo(object_info: dict, built: Built, with_thumbnails: bool = True) -> None:
    """Add the demo's UI graph, API graph and thumbnail to ``built``."""
    ui = build_demo_ui(object_info)
    built.json_files[f"workflows/{DEMO.name}.json"] = dump(ui)
    built.json_files[f"workflows/api/{DEMO.name}_api.json"] = dump(ui_to_api(ui, object_info))
    if with_thumbnails:
        built.thumbnails[f"workflows/{DEMO.name}.jpg"] = thumbnail(DEMO, ui, object_info)
