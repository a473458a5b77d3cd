"""Build the shipped workflows from ComfyUI's official templates.

For every entry of ``SPECS`` this reads the official template (the ``comfyui-workflow-templates`` packages
ComfyUI installs), inserts TaylorSeer Apply or the CG-Taylor Gate on the model input of every sampler (or
guider), applies the entry's edits (a loader swapped for the FP8 Loader, alternative branches dropped), adds a
note saying which model files go where, and writes:

- ``workflows/<name>.json``: the UI graph (ComfyUI lists it in its template browser, under the pack's name);
- ``workflows/<name>.jpg``: its thumbnail in the template browser (a card drawn here: the node chain, the
  settings and the step plan; nothing is copied from the templates' media);
- ``workflows/api/<name>_api.json``: the same graph in API format, for ``POST /prompt``.

Widget order, defaults and display names come from a running server's ``/object_info``, so a node whose inputs
change gives different files (``tests/integration/test_workflows.py`` fails until they are rebuilt).

Usage (host Python, which has the template packages)::

    .host/venv/bin/python scripts/build_workflows.py            # starts the host's server on a free port
    .host/venv/bin/python scripts/build_workflows.py --server http://127.0.0.1:8188
    .host/venv/bin/python scripts/build_workflows.py --check    # exit 1 if a committed file is stale
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import math
import re
import socket
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
API_DIR = WORKFLOWS / "api"
TEMPLATES_DIST = "comfyui-workflow-templates"
PACK_ID = "comfyui-taylor-forecast"  # the pack's registry id (pyproject name), for ComfyUI's missing-node help

CONTROL = "control_after_generate"  # the front end's extra widget after a seed: a value in widgets_values only
VIRTUAL_NODES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})  # front-end only, never queued
WIDGET_KINDS = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SAMPLERS = ("KSampler", "KSamplerAdvanced", "BasicGuider", "CFGGuider")  # the nodes whose "model" is sampled
MODEL_FOLDERS = {"unet_name": "diffusion_models", "clip_name": "text_encoders", "clip_name1": "text_encoders",
                 "clip_name2": "text_encoders", "clip_name3": "text_encoders", "vae_name": "vae",
                 "ckpt_name": "checkpoints", "lora_name": "loras"}  # model-file widgets -> ComfyUI/models/ folder
OUR_COLOR, OUR_BGCOLOR = "#232", "#353"
TITLE_HEIGHT, SLOT_HEIGHT, WIDGET_HEIGHT, GAP = 30, 20, 24, 40
# The height the web badge (web/) adds below the widgets, as the front end 1.32.9 lays the nodes out (measured).
BADGE_HEIGHT = {"TaylorSeerApply": 78, "CGTaylorGate": 134}


@dataclass(frozen=True)
class Insert:
    """The pack's node put on the model input of every sampler/guider of the template (``SAMPLERS``)."""

    node_type: str  # "TaylorSeerApply" or "CGTaylorGate"
    settings: dict[str, Any]  # widget name -> value; the other widgets take the node's defaults
    why: str  # where the settings come from (shown in the note)


@dataclass(frozen=True)
class WorkflowSpec:
    """One shipped workflow: the official template it is built on and what changes."""

    name: str
    title: str
    template: str  # template id in comfyui-workflow-templates
    family: str
    insert: Insert
    drop: tuple[int, ...] = ()  # template nodes removed; consumers of a pass-through node get its input
    enable: tuple[int, ...] = ()  # bypassed/muted template nodes switched on
    loader: tuple[int, str, dict[str, Any]] | None = None  # (template node id, new type, its widget settings)
    changes: str = ""  # the edits besides the insertion, in words (shown in the note)


BUDGET = {"target_speedup": 3.0, "max_order": 1, "warmup_steps": 1, "tail_steps": 1, "level": "output",
          "forecaster": "newton"}
FLUX = WAN = BUDGET  # one measured setting for both families
FLUX_WHY = ("a speed-up budget of 3: on the pack's tiny FLUX.1-dev demo model at 20 dpmpp_2m steps it computed 7 "
            "steps (2.86x) at 39.74 dB PSNR, against 35.77 dB for TaylorSeer's interval 4 at 2.50x; warm-up 1 and "
            "forecaster newton order 1 were the closest of every warm-up and forecaster measured at that budget "
            "(docs/benchmarks.md).")
WAN_WHY = ("a speed-up budget of 3: on the pack's tiny Wan 2.1 demo model at 30 euler steps it computed 10 steps "
           "(3.00x) at 44.61 dB PSNR, against 38.66 dB for TaylorSeer's interval 4 at the same compute; warm-up 1 "
           "and forecaster newton order 1 were the closest measured there (docs/benchmarks.md).")
FLUX_LIKE_WHY = ("{family}: no measurement on this family{extra}, so the FLUX settings: a speed-up budget of 3, "
                 "order 1, 1 warm-up step, level output (works on every model).")

SPECS: tuple[WorkflowSpec, ...] = (
    WorkflowSpec("flux1_dev_taylorseer", "FLUX.1-dev + TaylorSeer Apply", "flux_dev_full_text_to_image", "flux",
                 Insert("TaylorSeerApply", FLUX, FLUX_WHY), drop=(43,)),
    WorkflowSpec("flux1_dev_fp8_loader_taylorseer", "FLUX.1-dev, FP8 Loader + TaylorSeer Apply",
                 "flux_dev_full_text_to_image", "flux", Insert("TaylorSeerApply", FLUX, FLUX_WHY), drop=(43,),
                 loader=(38, "FP8Loader", {}),
                 changes="The UNETLoader is replaced by the pack's FP8 Loader: the bf16 flux1-dev.safetensors is "
                         "quantized to scaled fp8 while it loads (README, FP8 Loader)."),
    WorkflowSpec("flux1_dev_cg_taylor_gate", "FLUX.1-dev + CG-Taylor Gate", "flux_dev_full_text_to_image", "flux",
                 Insert("CGTaylorGate", {"threshold": 0.2, "target_speedup": 3.0, "max_order": 1, "warmup_steps": 1,
                                         "tail_steps": 1, "max_consecutive": 0},
                        "the gate with a speed-up budget of 3: the probe places the budget's 7 computes of 20 steps; "
                        "on the tiny FLUX.1-dev demo model at 20 dpmpp_2m steps, threshold 0.2 and warm-up 1 gave "
                        "38.83 dB PSNR at 2.86x against 34.22 dB for the threshold alone at 2.50x "
                        "(docs/benchmarks.md)."), drop=(43,)),
    WorkflowSpec("wan2.1_t2v_taylorseer", "Wan 2.1 text to video + TaylorSeer Apply", "text_to_video_wan", "wan",
                 Insert("TaylorSeerApply", WAN, WAN_WHY)),
    WorkflowSpec("wan2.2_t2v_14B_taylorseer", "Wan 2.2 14B text to video (high + low noise) + TaylorSeer Apply",
                 "video_wan2_2_14B_t2v", "wan", Insert("TaylorSeerApply", WAN, WAN_WHY),
                 drop=(71, 72, 73, 74, 75, 76, 78, 80, 81, 82, 83, 85, 86, 87, 88, 89, 62, 64, 106, 110, 112),
                 enable=(90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 104),
                 changes="The template's 20-step branch is kept (two KSamplerAdvanced, high noise then low noise, "
                         "one TaylorSeer Apply per model); its 4-step Lightx2v LoRA branch is dropped (4 steps "
                         "leave nothing to forecast)."),
    WorkflowSpec("hunyuan_video_t2v_taylorseer", "HunyuanVideo text to video + TaylorSeer Apply",
                 "hunyuan_video_text_to_video", "hunyuan_video",
                 Insert("TaylorSeerApply", FLUX, FLUX_LIKE_WHY.format(
                     family="HunyuanVideo", extra=" (official HunyuanVideo code: interval 5, order 1 at 50 steps)")),
                 drop=(78,)),
    WorkflowSpec("qwen_image_taylorseer", "Qwen-Image + TaylorSeer Apply", "image_qwen_image", "qwen_image",
                 Insert("TaylorSeerApply", FLUX, FLUX_LIKE_WHY.format(family="Qwen-Image", extra="")),
                 drop=(73, 67, 69, 74),
                 changes="The template's (bypassed) 8-step Lightning LoRA is dropped: 8 steps leave little to "
                         "forecast."),
    WorkflowSpec("sd3.5_large_taylorseer", "SD3.5 Large + TaylorSeer Apply", "sd3.5_simple_example", "sd3",
                 Insert("TaylorSeerApply", FLUX, FLUX_LIKE_WHY.format(family="SD3.5 (MMDiT)", extra="")),
                 drop=(54,)),
    WorkflowSpec("chroma1_hd_taylorseer", "Chroma1-HD + TaylorSeer Apply", "image_chroma_text_to_image", "chroma",
                 Insert("TaylorSeerApply", FLUX,
                        "Chroma has Flux's block structure; the FLUX settings (not measured on Chroma)."), drop=(743,)),
)


# ----------------------------------------------------------------------------------------------------------
# Node definitions (/object_info) and the front end's widget rule


def widget_names(info: dict) -> list[str]:
    """The names of a node's ``widgets_values`` entries, in order, from its ``/object_info`` entry.

    The front end makes a widget of every INT/FLOAT/STRING/BOOLEAN/COMBO input (required, then optional, in
    ``input_order``) that is not ``forceInput``, and adds a ``CONTROL`` value after an INT with
    ``control_after_generate`` (or named seed/noise_seed when the option is absent)."""
    names: list[str] = []
    for section in ("required", "optional"):
        inputs = info["input"].get(section, {})
        for name in info.get("input_order", {}).get(section, list(inputs)):
            kind, options = input_kind(inputs[name])
            if kind not in WIDGET_KINDS or options.get("forceInput"):
                continue
            if any(options.get(k) for k in ("image_upload", "video_upload", "audio_upload")):
                raise NotImplementedError(f"{info['name']}.{name}: upload widgets are not handled here")
            names.append(name)
            if options.get(CONTROL, kind == "INT" and name in ("seed", "noise_seed")):
                if kind != "INT":
                    raise NotImplementedError(f"{info['name']}.{name}: a combo control widget is not handled here")
                names.append(CONTROL)
    return names


def input_kind(spec: list) -> tuple[str, dict]:
    """(kind, options) of an ``/object_info`` input spec; a list of choices is kind COMBO with ``options``."""
    options = dict(spec[1]) if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(spec[0], list):
        return "COMBO", {**options, "options": spec[0]}
    return spec[0], options


def input_spec(info: dict, name: str) -> list | None:
    for section in ("required", "optional"):
        if name in info["input"].get(section, {}):
            return info["input"][section][name]
    return None


def widget_dict(node: dict, info: dict) -> dict[str, Any]:
    """Widget name -> value of a UI node (``CONTROL`` entries dropped); raises on a count mismatch."""
    names, values = widget_names(info), node.get("widgets_values") or []
    if len(names) != len(values):
        raise ValueError(f"node {node['id']} ({node['type']}): {len(values)} widget values for the {len(names)} "
                         f"widgets {names}")
    return {n: v for n, v in zip(names, values) if n != CONTROL}


# ----------------------------------------------------------------------------------------------------------
# A UI graph: nodes, links and their bookkeeping


class Graph:
    """A UI-format workflow (``nodes`` + ``links`` lists) with the edits this script makes."""

    def __init__(self, data: dict) -> None:
        self.data = data
        self.nodes: dict[int, dict] = {n["id"]: n for n in data["nodes"]}
        self.links: dict[int, list] = {link[0]: link for link in data["links"]}

    def node(self, node_id: int) -> dict:
        if node_id not in self.nodes:
            raise KeyError(f"node {node_id} is not in the template (did the template change?)")
        return self.nodes[node_id]

    def new_node_id(self) -> int:
        self.data["last_node_id"] = max([self.data.get("last_node_id", 0), *self.nodes]) + 1
        return self.data["last_node_id"]

    def connect(self, origin: int, origin_slot: int, target: int, target_slot: int, kind: str) -> int:
        link_id = self.data["last_link_id"] = max([self.data.get("last_link_id", 0), *self.links]) + 1
        self.links[link_id] = [link_id, origin, origin_slot, target, target_slot, kind]
        output = self.nodes[origin]["outputs"][origin_slot]
        output["links"] = [*(output.get("links") or []), link_id]
        self.nodes[target]["inputs"][target_slot]["link"] = link_id
        return link_id

    def unlink(self, link_id: int) -> list:
        link = self.links.pop(link_id)
        _, origin, origin_slot, target, target_slot, _ = link
        if origin in self.nodes:
            output = self.nodes[origin]["outputs"][origin_slot]
            output["links"] = [i for i in output.get("links") or [] if i != link_id]
        if target in self.nodes:
            self.nodes[target]["inputs"][target_slot]["link"] = None
        return link

    def input_slot(self, node: dict, name: str) -> int:
        return next(i for i, slot in enumerate(node["inputs"]) if slot["name"] == name)

    def drop(self, node_id: int) -> None:
        """Remove a node; the consumers of an output of the same type as one of its linked inputs (a
        pass-through such as a LoRA) are reconnected to that input's source."""
        node = self.node(node_id)
        sources = {}
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                link = self.unlink(slot["link"])
                sources.setdefault(link[5], (link[1], link[2]))
        for output in node.get("outputs", []):
            for link_id in list(output.get("links") or []):
                _, _, _, target, target_slot, kind = self.unlink(link_id)
                if kind in sources and target in self.nodes:
                    self.connect(*sources[kind], target, target_slot, kind)
        del self.nodes[node_id]

    def bounds(self, node: dict) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of a node, its title bar included."""
        (x, y), (w, h) = node["pos"], node["size"]
        return x, y - TITLE_HEIGHT, x + w, y + h

    def free_spot(self, size: tuple[float, float], near: tuple[float, float]) -> list[float]:
        """The grid point nearest ``near`` where a node of ``size`` overlaps no node or group (with a margin)."""
        boxes = [self.bounds(n) for n in self.nodes.values()] + [
            (x, y, x + w, y + h) for x, y, w, h in (g["bounding"] for g in self.groups())]
        w, h = size
        candidates = sorted(((near[0] + dx * 20, near[1] + dy * 20) for dx in range(-60, 61) for dy in range(-60, 61)),
                            key=lambda p: (math.dist(p, near), p))
        for x, y in candidates:
            box = (x - GAP / 2, y - TITLE_HEIGHT - GAP / 2, x + w + GAP / 2, y + h + GAP / 2)
            if all(box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3] for b in boxes):
                return [x, y]
        raise RuntimeError("no free spot for a node")

    def finish(self) -> dict:
        """The graph as a UI workflow: nodes in id order with execution ``order``, links, positions shifted so
        the graph starts at (0, 0)."""
        x0 = min([self.bounds(n)[0] for n in self.nodes.values()] + [g["bounding"][0] for g in self.groups()])
        y0 = min([self.bounds(n)[1] for n in self.nodes.values()] + [g["bounding"][1] for g in self.groups()])
        for node in self.nodes.values():
            node["pos"] = [node["pos"][0] - x0, node["pos"][1] - y0 + TITLE_HEIGHT]
        for group in self.groups():
            group["bounding"] = [group["bounding"][0] - x0, group["bounding"][1] - y0 + TITLE_HEIGHT,
                                 *group["bounding"][2:]]
        for order, node_id in enumerate(self.execution_order()):
            self.nodes[node_id]["order"] = order
        self.data["nodes"] = [self.nodes[i] for i in sorted(self.nodes)]
        self.data["links"] = [self.links[i] for i in sorted(self.links)]
        return self.data

    def groups(self) -> list[dict]:
        return self.data.get("groups", [])

    def execution_order(self) -> list[int]:
        """Node ids in a topological order of the links (ties by id)."""
        pending = {i: {self.links[s["link"]][1] for s in n.get("inputs", []) if s.get("link") is not None}
                   for i, n in self.nodes.items()}
        order: list[int] = []
        while pending:
            ready = sorted(i for i, deps in pending.items() if not deps - set(order))
            if not ready:
                raise ValueError("the graph has a cycle")
            order.extend(ready)
            for i in ready:
                del pending[i]
        return order


# ----------------------------------------------------------------------------------------------------------
# Building one workflow


def template_path(template_id: str) -> Path:
    import comfyui_workflow_templates

    return Path(comfyui_workflow_templates.get_asset_path(template_id, f"{template_id}.json"))


def templates_version() -> str:
    from importlib.metadata import version

    return version(TEMPLATES_DIST)


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


def run_steps(graph: Graph, sampler: dict, object_info: dict) -> int:
    """How many steps one sampling run of ``sampler`` (a sampler or a guider) takes."""
    values = widget_dict(sampler, object_info[sampler["type"]])
    if sampler["type"] == "KSampler":
        return values["steps"]
    if sampler["type"] == "KSamplerAdvanced":
        return min(values["end_at_step"], values["steps"]) - values["start_at_step"]
    for link in graph.links.values():  # a guider: the custom sampler it feeds, and that one's sigmas
        if link[1] == sampler["id"] and graph.nodes[link[3]]["type"] == "SamplerCustomAdvanced":
            custom = graph.nodes[link[3]]
            sigmas = graph.links[custom["inputs"][graph.input_slot(custom, "sigmas")]["link"]]
            scheduler = graph.nodes[sigmas[1]]
            return widget_dict(scheduler, object_info[scheduler["type"]])["steps"]
    raise ValueError(f"cannot tell the steps of {sampler['type']} {sampler['id']}")


def step_plan(node: dict, info: dict, steps: int) -> str | None:
    """TaylorSeer Apply's plan for ``steps`` steps (``F`` computed, ``T`` forecast), from ``taylor_core``; None
    for the gate (it decides per step)."""
    if node["type"] != "TaylorSeerApply":
        return None
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from taylor_core.schedule import make_schedule

    v = widget_dict(node, info)
    schedule = make_schedule(v["interval"], v.get("target_speedup", 0.0), v["warmup_steps"], v["tail_steps"],
                             v["start_percent"], v["end_percent"])
    return schedule.plan(steps, [True] * steps).render()  # start/end percent 0..1: every step is in the window


def model_files(graph: Graph, object_info: dict) -> list[tuple[str, str, str | None]]:
    """(folder, file, url) of every model file the graph loads, from the loaders' widgets and the template's
    ``properties.models`` (which give the download addresses)."""
    files: dict[tuple[str, str], str | None] = {}
    for node in graph.nodes.values():
        if node["type"] in VIRTUAL_NODES or node.get("mode", 0) != 0:
            continue
        urls = {m["name"]: m.get("url") for m in node.get("properties", {}).get("models", [])}
        for name, value in widget_dict(node, object_info[node["type"]]).items():
            if name in MODEL_FOLDERS:
                files[(MODEL_FOLDERS[name], value)] = urls.get(value)
    return [(folder, name, url) for (folder, name), url in sorted(files.items())]


def note_text(spec: WorkflowSpec, graph: Graph, inserted: list[tuple[dict, int, str | None]], object_info: dict,
              version: str) -> str:
    """The markdown of the workflow's note: what it is, the model files and where they go, the settings."""
    display = object_info[spec.insert.node_type]["display_name"]
    lines = [f"## {spec.title}", "",
             f"Built by `scripts/build_workflows.py` (comfyui-taylor-forecast) from ComfyUI's official template "
             f"`{spec.template}` (comfyui-workflow-templates {version}): **{display}** sits between the model "
             f"loader and the sampler (green node{'s' if len(inserted) > 1 else ''}). {spec.changes}".rstrip(), "",
             "### Model files", "", "Put them in these folders of your ComfyUI (names as in the official template):",
             "", "| folder | file |", "|---|---|"]
    for folder, name, url in model_files(graph, object_info):
        lines.append(f"| `models/{folder}/` | {f'[{name}]({url})' if url else name} |")
    lines += ["", f"### {display}", ""]
    values = widget_dict(inserted[0][0], object_info[spec.insert.node_type])
    lines.append(", ".join(f"`{k}` {v}" for k, v in values.items()) + ".")
    for node, steps, plan in inserted:
        if plan is not None:
            computed = plan.count("F")
            lines.append(f"\nNode {node['id']}, {steps} steps per run: `{plan}` (F computed, T forecast): {computed} "
                         f"of {steps} steps computed, {steps / computed:.2f}x fewer model evaluations.")
        elif values.get("target_speedup"):
            if str(REPO) not in sys.path:
                sys.path.insert(0, str(REPO))
            from taylor_core.schedule import speedup_full_steps

            budget = speedup_full_steps(steps, values["target_speedup"])
            lines.append(f"\nNode {node['id']}, {steps} steps per run: {budget} computed (the budget), the first "
                         f"{values['warmup_steps']} and last {values['tail_steps']} among them; the gate's probe "
                         "places the others.")
        else:
            lines.append(f"\nNode {node['id']}, {steps} steps per run: the first {values['warmup_steps']} and last "
                         f"{values['tail_steps']} computed, the gate decides the others.")
    lines += ["", f"Why: {spec.insert.why}", "",
              "After each run the server log shows what was computed (`[TaylorSeer] steps ..., full ..., forecast "
              "...` and the step map)."]
    return "\n".join(lines)


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


# ----------------------------------------------------------------------------------------------------------
# Thumbnails


def thumbnail(spec: WorkflowSpec, ui: dict, object_info: dict) -> bytes:
    """A 512x384 JPEG card: the title, the node chain, the settings and the step plan of the first inserted node."""
    from PIL import Image, ImageDraw, ImageFont

    ours = [n for n in ui["nodes"] if n["type"] == spec.insert.node_type]
    info = object_info[spec.insert.node_type]
    values = widget_dict(ours[0], info)
    image = Image.new("RGB", (512, 384), (24, 28, 34))
    draw = ImageDraw.Draw(image)
    big, mid, small = (ImageFont.load_default(size=s) for s in (30, 20, 15))
    y = 18
    for line in _wrap(spec.title, 30):
        draw.text((20, y), line, font=big, fill=(240, 240, 240))
        y += 36
    y += 8
    loader = object_info[spec.loader[1]]["display_name"] if spec.loader else "Load model"
    for i, label in enumerate((loader, info["display_name"], "Sampler")):
        box = (20 + i * 164, y, 20 + i * 164 + 140, y + 44)
        draw.rounded_rectangle(box, 8, fill=(51, 85, 51) if i == 1 else (60, 64, 72))
        draw.text((box[0] + 8, y + 12), label[:17], font=small, fill=(240, 240, 240))
        if i < 2:
            draw.text((box[2] + 6, y + 10), "->", font=mid, fill=(200, 200, 200))
    y += 64
    budget = values.get("target_speedup")
    shown = ("target_speedup" if budget else "interval", "forecaster", "max_order", "threshold", "warmup_steps",
             "level")
    settings = "  ".join(f"{k} {'auto' if k == 'threshold' and values[k] < 0 else values[k]}"
                         for k in shown if k in values)
    draw.text((20, y), settings, font=small, fill=(200, 220, 200))
    y += 30
    plans = [n for n in ui["nodes"] if n["type"] == "MarkdownNote"]
    plan = re.search(r"`([FT]+)`", plans[0]["widgets_values"][0]) if plans else None
    if plan:
        steps = plan.group(1)
        cell = min(22, (472 // len(steps)))
        for i, c in enumerate(steps):
            draw.rectangle((20 + i * cell, y, 20 + i * cell + cell - 3, y + 26),
                           fill=(220, 120, 60) if c == "F" else (90, 170, 110))
        y += 34
        draw.text((20, y), f"{steps.count('F')} of {len(steps)} steps computed (orange), the rest forecast",
                  font=small, fill=(200, 200, 200))
    else:
        draw.text((20, y), "confidence-gated: forecast only when the first block agrees", font=small,
                  fill=(200, 200, 200))
    draw.text((20, 350), "comfyui-taylor-forecast", font=small, fill=(140, 150, 160))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()


def _wrap(text: str, width: int) -> Iterator[str]:
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            yield line
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        yield line


# ----------------------------------------------------------------------------------------------------------
# All of it


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
    return built


def fetch_object_info(server: str) -> dict:
    with urllib.request.urlopen(server.rstrip("/") + "/object_info", timeout=60) as response:
        return json.loads(response.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_object_info(server: str | None) -> dict:
    """``/object_info`` of ``server``, or (None) of the host's server, started on a free port for the call."""
    if server:
        return fetch_object_info(server)
    sys.path.insert(0, str(REPO / "scripts"))
    import comfy_host

    port = free_port()
    comfy_host.start(port)
    try:
        return fetch_object_info(comfy_host.server_url(port))
    finally:
        comfy_host.stop(port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="a running ComfyUI with this pack (default: start the host's on a free port)")
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args()
    object_info = server_object_info(args.server)
    built = build_all(object_info, with_thumbnails=not args.check)
    stale = [p for p, text in built.json_files.items()
             if not (REPO / p).exists() or (REPO / p).read_text(encoding="utf-8") != text]
    if args.check:
        print("\n".join(f"stale: {p}" for p in stale) or "all workflows up to date")
        return 1 if stale else 0
    for rel, text in built.json_files.items():
        (REPO / rel).parent.mkdir(parents=True, exist_ok=True)
        (REPO / rel).write_text(text, encoding="utf-8")
    for rel, data in built.thumbnails.items():
        (REPO / rel).write_bytes(data)
    print(f"wrote {len(built.json_files)} workflow files and {len(built.thumbnails)} thumbnails "
          f"({len(stale)} changed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
