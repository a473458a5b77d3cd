"""``--set`` edits: ``NODE.input=value`` sets one input of the nodes whose title, class or id is ``NODE``;
a bare ``input=value`` sets it on every node that has it as a typed-in value (never where it is a link).
The value is read as the input's type says (``/object_info``): text stays text, numbers become numbers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .schema import InputSpec, input_specs
from .validate import node_label


@dataclass(frozen=True)
class Override:
    target: str | None  # a node's title, class or id; None: every node with the input
    name: str
    raw: str  # the value as typed

    @classmethod
    def parse(cls, text: str) -> Override:
        key, sep, raw = text.partition("=")
        target, _dot, name = key.strip().rpartition(".")  # titles may contain dots, input names do not
        if not sep or not name:
            raise ValueError(f"--set {text!r}: expected NODE.input=value or input=value "
                             "(NODE: a node's title, class or id)")
        return cls(target or None, name, raw)


def apply_overrides(graph: dict[str, Any], overrides: list[Override], object_info: dict[str, Any]) -> list[str]:
    """Apply every override to ``graph`` in place; one line per input changed. ValueError when an override
    matches nothing."""
    changes: list[str] = []
    for override in overrides:
        hits = 0
        for node_id, node in _targets(graph, override):
            specs = input_specs(object_info.get(node["class_type"], {}))
            inputs = node.setdefault("inputs", {})
            has_input = override.name in inputs or override.name in specs
            if not has_input or (override.target is None and isinstance(inputs.get(override.name), list)):
                if override.target is not None:
                    raise ValueError(f"--set {override.target}.{override.name}: {node_label(node_id, node)} "
                                     f"({node['class_type']}) has no input {override.name!r}")
                continue
            inputs[override.name] = _coerce(override.raw, specs.get(override.name))
            changes.append(f"{node_label(node_id, node)}: {override.name} = {inputs[override.name]!r}")
            hits += 1
        if not hits:
            where = f"no node titled, of class or with id {override.target!r}" if override.target else \
                f"no node has a typed-in input {override.name!r}"
            raise ValueError(f"--set {override.name}={override.raw}: {where}")
    return changes


def _targets(graph: dict[str, Any], override: Override) -> list[tuple[str, dict]]:
    if override.target is None:
        return list(graph.items())
    return [(node_id, node) for node_id, node in graph.items()
            if override.target in (node_id, node.get("class_type"), (node.get("_meta") or {}).get("title"))]


def _coerce(raw: str, spec: InputSpec | None) -> Any:
    """Text for STRING inputs and combos of text, JSON (numbers, true/false, null, lists) for the rest, the
    raw text when it is not JSON."""
    if spec is not None and spec.kind == "STRING":
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if spec is None:
        return value
    if spec.kind == "COMBO" and spec.options is not None and value not in spec.options:
        return raw
    if spec.kind == "FLOAT" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
