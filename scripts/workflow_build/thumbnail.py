"""A workflow's thumbnail in the template browser: a card drawn here (the node chain, the settings and the step
plan; nothing is copied from the templates' media)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

from .specs import WorkflowSpec
from .widgets import widget_dict


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

