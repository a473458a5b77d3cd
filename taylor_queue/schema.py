"""What ``/object_info`` says about one node type's inputs, in the two spellings ComfyUI uses
(``[[options...], {...}]`` for V1 combos, ``["COMBO", {"options": [...]}]`` for V3 ones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UPLOAD_SUFFIXES = (" [input]", " [output]", " [temp]")


@dataclass(frozen=True)
class InputSpec:
    """One input: ``kind`` is the type name ("INT", "MODEL", ...; "COMBO" for choices), ``options`` the allowed
    values of a combo (None when the server lists none: remote or free-form), ``extra`` the spec's options."""

    name: str
    kind: str
    section: str  # required | optional | hidden
    options: tuple | None
    extra: dict

    @property
    def is_widget(self) -> bool:
        """A value typed in the graph rather than a link (a link can still feed it)."""
        return self.kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def input_specs(node_info: dict[str, Any]) -> dict[str, InputSpec]:
    """Every declared input of a node type, by name."""
    specs: dict[str, InputSpec] = {}
    for section in ("required", "optional", "hidden"):
        for name, spec in (node_info.get("input", {}).get(section) or {}).items():
            if section == "hidden":
                specs[name] = InputSpec(name, str(spec), section, None, {})
                continue
            spec = spec if isinstance(spec, (list, tuple)) else [spec]
            kind, extra = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
            if isinstance(kind, list):
                specs[name] = InputSpec(name, "COMBO", section, tuple(kind), extra)
            elif kind == "COMBO":
                options = extra.get("options")
                specs[name] = InputSpec(name, "COMBO", section, tuple(options) if options else None, extra)
            else:
                specs[name] = InputSpec(name, str(kind), section, None, extra)
    return specs


def types_match(output_type: Any, input_type: str) -> bool:
    """ComfyUI's rule: equal, ``*`` on either side, or an overlap of comma-separated unions. An output typed
    by a list (a node emitting combo values) matches a combo input."""
    if not isinstance(output_type, str):
        return input_type == "COMBO"
    if output_type == input_type or "*" in (output_type, input_type):
        return True
    return bool({t.strip() for t in output_type.split(",")} & {t.strip() for t in input_type.split(",")})


def strip_upload_suffix(value: str) -> str:
    """``"a.png [output]"`` -> ``"a.png"`` (upload combos accept files of other folders so annotated)."""
    for suffix in UPLOAD_SUFFIXES:
        if value.endswith(suffix):
            return value[: -len(suffix)]
    return value
