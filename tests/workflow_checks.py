"""Checks of a UI-format workflow against a server's ``/object_info``: every problem as a readable line.

What a user would hit when loading the graph: unknown node types, widget values the node no longer has (count,
order, type, range, combo choices), links between slots of different types, dangling or one-sided links, and
required inputs left unconnected. The widget order rule is the front end's (``workflow_build.widgets.widget_names``).
"""

from __future__ import annotations

from typing import Any

from workflow_build.widgets import CONTROL, MODEL_FOLDERS, VIRTUAL_NODES, input_kind, input_spec, widget_names

CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")


def value_problem(kind: str, options: dict, value: Any) -> str | None:
    """Why ``value`` is not valid for an input of ``kind`` with ``options``, or None."""
    if kind == "COMBO":
        return None if value in options["options"] else f"{value!r} is not one of {options['options'][:8]}"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{value!r} is not a boolean"
    if kind == "STRING":
        return None if isinstance(value, str) else f"{value!r} is not a string"
    number = int if kind == "INT" else (int, float)
    if isinstance(value, bool) or not isinstance(value, number):
        return f"{value!r} is not {'an integer' if kind == 'INT' else 'a number'}"
    low, high = options.get("min", float("-inf")), options.get("max", float("inf"))
    return None if low <= value <= high else f"{value} is outside [{low}, {high}]"


def widget_problems(node: dict, info: dict, official_files: set[str] | None) -> list[str]:
    where = f"node {node['id']} ({node['type']})"
    names, values = widget_names(info), node.get("widgets_values") or []
    if len(names) != len(values):
        return [f"{where}: {len(values)} widget values, the node has {len(names)} widgets {names}"]
    problems = []
    for name, value in zip(names, values):
        if name == CONTROL:
            problem = None if value in CONTROL_VALUES else f"{value!r} is not one of {CONTROL_VALUES}"
        else:
            problem = value_problem(*input_kind(input_spec(info, name)), value)
            if problem is None and name in MODEL_FOLDERS and official_files is not None and value not in official_files:
                problem = f"{value!r} is not a file of the official template {sorted(official_files)}"
        if problem:
            problems.append(f"{where}.{name}: {problem}")
    return problems


def slot_type(info: dict, name: str) -> str | None:
    spec = input_spec(info, name)
    return None if spec is None else input_kind(spec)[0]


def link_problems(ui: dict, object_info: dict) -> list[str]:
    nodes = {n["id"]: n for n in ui["nodes"]}
    links = {link[0]: link for link in ui["links"]}
    problems = []
    for link_id, origin, origin_slot, target, target_slot, kind in links.values():
        where = f"link {link_id} ({origin}:{origin_slot} -> {target}:{target_slot}, {kind})"
        if origin not in nodes or target not in nodes:
            problems.append(f"{where}: dangling (node missing)")
            continue
        source, sink = nodes[origin], nodes[target]
        outputs, inputs = source.get("outputs", []), sink.get("inputs", [])
        if origin_slot >= len(outputs) or link_id not in (outputs[origin_slot].get("links") or []):
            problems.append(f"{where}: not listed on the origin's output")
        if target_slot >= len(inputs) or inputs[target_slot].get("link") != link_id:
            problems.append(f"{where}: not the target input's link")
            continue
        if source["type"] not in VIRTUAL_NODES:
            real = object_info[source["type"]]["output"]
            if origin_slot >= len(real) or real[origin_slot] != kind:
                problems.append(f"{where}: the origin's output {origin_slot} is {real[origin_slot:origin_slot + 1]}")
        expected = slot_type(object_info[sink["type"]], inputs[target_slot]["name"])
        if expected not in (kind, "*"):
            problems.append(f"{where}: input {inputs[target_slot]['name']!r} takes {expected}")
    for node in nodes.values():
        for slot in node.get("inputs", []):
            if slot.get("link") is not None and slot["link"] not in links:
                problems.append(f"node {node['id']}: input {slot['name']!r} names missing link {slot['link']}")
        for output in node.get("outputs", []):
            problems += [f"node {node['id']}: output {output['name']!r} names missing link {i}"
                         for i in output.get("links") or [] if i not in links]
    return problems


def node_problems(node: dict, info: dict) -> list[str]:
    """Output slots as the node defines them; every required non-widget input present and linked."""
    where = f"node {node['id']} ({node['type']})"
    problems = []
    if [o["type"] for o in node.get("outputs", [])] != list(info["output"]):
        problems.append(f"{where}: outputs {[o['type'] for o in node.get('outputs', [])]}, the node gives "
                        f"{info['output']}")
    linked = {s["name"] for s in node.get("inputs", []) if s.get("link") is not None}
    widgets = set(widget_names(info))
    for name in info["input"].get("required", {}):
        if name not in widgets and name not in linked and node.get("mode", 0) == 0:
            problems.append(f"{where}: required input {name!r} is not connected")
    return problems


def ui_graph_problems(ui: dict, object_info: dict, official_files: set[str] | None,
                      changed: frozenset[int] = frozenset()) -> list[str]:
    """Every problem of ``ui`` against ``object_info``; model-file widgets must name ``official_files`` (None: not
    checked). The nodes of ``changed`` (ids) are checked for their type and links only: their definition on this
    server is not the one the graph was built with (see ``test_workflows.changed_core_nodes``)."""
    problems = []
    for node in ui["nodes"]:
        if node["type"] in VIRTUAL_NODES:
            if node["type"] in ("Note", "MarkdownNote") and not (
                    len(node.get("widgets_values", [])) == 1 and isinstance(node["widgets_values"][0], str)):
                problems.append(f"node {node['id']} ({node['type']}): one text widget expected")
            continue
        info = object_info.get(node["type"])
        if info is None:
            problems.append(f"node {node['id']}: type {node['type']!r} does not exist on this server")
            continue
        if node["id"] not in changed:
            problems += widget_problems(node, info, official_files) + node_problems(node, info)
    return problems + link_problems(ui, object_info)
