"""Node definitions (``/object_info``) and the front end's widget rule: which inputs are widgets, in which order."""

from __future__ import annotations

from typing import Any

CONTROL = "control_after_generate"  # the front end's extra widget after a seed: a value in widgets_values only
VIRTUAL_NODES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})  # front-end only, never queued
WIDGET_KINDS = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
MODEL_FOLDERS = {"unet_name": "diffusion_models", "clip_name": "text_encoders", "clip_name1": "text_encoders",
                 "clip_name2": "text_encoders", "clip_name3": "text_encoders", "vae_name": "vae",
                 "ckpt_name": "checkpoints", "lora_name": "loras"}  # model-file widgets -> ComfyUI/models/ folder


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

