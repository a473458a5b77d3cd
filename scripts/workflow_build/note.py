"""The note of a workflow: the steps each sampler runs, the plan the pack's node makes of them, the model files
and where they go, and why the settings."""

from __future__ import annotations

import sys

from . import REPO
from .graph import Graph
from .specs import WorkflowSpec
from .widgets import MODEL_FOLDERS, VIRTUAL_NODES, widget_dict


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
