"""Checks an API-format graph against the server's ``/object_info`` before anything is queued, the way
ComfyUI's own validation would, and says what is wrong in words: unknown node types and inputs, missing
required inputs, values of the wrong type, out of range or not among a combo's choices, links to nodes that
are not in the graph or of the wrong type, no output node."""

from __future__ import annotations

import math
from typing import Any

from .schema import InputSpec, input_specs, strip_upload_suffix, types_match


def node_label(node_id: str, node: dict[str, Any]) -> str:
    """``node 6 "KSampler"`` (the title when the graph has one, else the class)."""
    title = (node.get("_meta") or {}).get("title") or node.get("class_type", "?")
    return f'node {node_id} "{title}"'


def check_api_format(graph: Any) -> None:
    """Raise ValueError when ``graph`` is not an API-format workflow (e.g. the UI format)."""
    if isinstance(graph, dict) and "nodes" in graph and "links" in graph:
        raise ValueError("this is a UI-format workflow; queue the API format instead (in ComfyUI: Workflow > "
                         "Export (API))")
    if not isinstance(graph, dict) or not graph or not all(
            isinstance(node, dict) and "class_type" in node for node in graph.values()):
        raise ValueError("not an API-format workflow: expected an object of node ids to "
                         '{"class_type": ..., "inputs": {...}}')


def validate_graph(graph: dict[str, Any], object_info: dict[str, Any]) -> list[str]:
    """Every problem found, one readable line each; empty when the graph is fine."""
    problems: list[str] = []
    has_output = False
    for node_id, node in graph.items():
        label, class_type = node_label(node_id, node), node["class_type"]
        info = object_info.get(class_type)
        if info is None:
            problems.append(f"{label}: unknown node type {class_type!r} (not installed on this server?)")
            continue
        has_output |= bool(info.get("output_node"))
        specs = input_specs(info)
        inputs = node.get("inputs") or {}
        for name, value in inputs.items():
            spec = specs.get(name)
            if spec is None or spec.section == "hidden":
                known = ", ".join(n for n, s in specs.items() if s.section != "hidden")
                problems.append(f"{label} ({class_type}) has no input {name!r} (its inputs: {known})")
            elif _is_link(value):
                problems.extend(_check_link(graph, object_info, label, spec, value))
            else:
                problems.extend(f"{label}: {name} {problem}" for problem in _check_value(spec, value))
        for name, spec in specs.items():
            if spec.section == "required" and name not in inputs:
                problems.append(f"{label} ({class_type}): required input {name!r} is missing")
    if graph and not has_output and not problems:
        problems.append("the graph has no output node (e.g. SaveImage or PreviewImage): nothing would run")
    return problems


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _check_link(graph: dict, object_info: dict, label: str, spec: InputSpec, value: list) -> list[str]:
    source_id, index = str(value[0]), value[1]
    source = graph.get(source_id)
    if source is None:
        return [f"{label}: input {spec.name!r} is linked to node {source_id}, which is not in the graph"]
    outputs = (object_info.get(source["class_type"]) or {}).get("output")
    if outputs is None:
        return []  # the source's own problem is reported on its node
    if not 0 <= index < len(outputs):
        return [f"{label}: input {spec.name!r} is linked to output {index} of {node_label(source_id, source)}, "
                f"which has {len(outputs)} output(s)"]
    if not types_match(outputs[index], spec.kind):
        return [f"{label}: input {spec.name!r} expects {spec.kind} but is linked to a {outputs[index]} output "
                f"of {node_label(source_id, source)}"]
    return []


def _check_value(spec: InputSpec, value: Any) -> list[str]:
    """Problems of one typed-in value, each phrased to follow ``"<node>: <input> "``."""
    if isinstance(value, dict) and "__value__" in value:
        value = value["__value__"]
    if spec.kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return [f"= {value!r} is not a number ({spec.kind})"]
        if spec.kind == "INT" and value != int(value):
            return [f"= {value!r} is not a whole number"]
        low, high = spec.extra.get("min"), spec.extra.get("max")
        if low is not None and value < low:
            return [f"= {value!r} is below its minimum {low}"]
        if high is not None and value > high:
            return [f"= {value!r} is above its maximum {high}"]
    elif spec.kind == "BOOLEAN" and not isinstance(value, bool):
        return [f"= {value!r} is not true or false"]
    elif spec.kind == "COMBO" and spec.options is not None and not spec.extra.get("multiselect"):
        if value not in spec.options and not (isinstance(value, str) and strip_upload_suffix(value) != value):
            shown = ", ".join(map(repr, spec.options[:12])) + (" ..." if len(spec.options) > 12 else "")
            return [f"= {value!r} is not one of its choices ({len(spec.options)}: {shown})"]
    elif not spec.is_widget:
        return [f"expects a {spec.kind} link from another node, got the value {value!r}"]
    return []
