"""Input checks of every node of the pack: each bad input of ``POST /prompt`` gets exactly one error naming the
node and the input, before anything is queued, on every supported ComfyUI.

ComfyUI's own validation (``execution.validate_inputs``, 0.3.75 and 0.33 alike) converts each input to its type,
then checks its ``min``/``max`` and a combo's choices: one error naming the input. But it skips those checks for
every input a node's ``validate_inputs`` takes and reports a failed ``validate_inputs`` once per input it takes;
0.3.75 checks only V1's list-typed combos, not V3's ``COMBO``; and NaN passes every bound (each comparison with
NaN is false). So the pack leaves every per-input check to ComfyUI and completes it in the schema
(``checked_schema``), and a node's ``validate_inputs`` takes one input:

- a combo is typed as its list of choices (V1's form, which both versions check): an unknown value gets
  ComfyUI's "Value not in list", as UNETLoader's file names do;
- a float input's ``min`` is a ``Minimum``, which NaN (and an optional gap above it) compares below: ComfyUI's
  "Value nan smaller than min of ...";
- a rule across inputs is checked by ``validate_inputs`` on the one input it is reported on, the others read
  from the prompt as submitted (``submitted_inputs``: an ``on_prompt`` handler of ComfyUI's server keeps it for
  the request; ComfyUI has converted the values by then). Without a server (in-process use) the rule is checked
  when the node runs.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from typing import Any

from comfy_api.latest import io

from .logs import LOG_PREFIX, logger

_SUBMITTED: ContextVar[dict | None] = ContextVar("taylor_forecast_submitted_prompt", default=None)
"""The API prompt of the ``POST /prompt`` request being validated (the request's own context)."""


class Minimum(float):
    """A float input's ``min``, a float for the front end and ``/object_info``, that NaN and every value strictly
    between it and ``gap_end`` (when given) compare below, so ComfyUI's own ``value < min`` check refuses them.
    With a gap, its text (in ComfyUI's message) names both valid ranges: ``meaning`` says what the minimum does."""

    gap_end: float | None = None
    meaning: str = ""

    def __new__(cls, value: float, gap_end: float | None = None, meaning: str = "") -> Minimum:
        bound = super().__new__(cls, value)
        bound.gap_end, bound.meaning = gap_end, meaning
        return bound

    def __gt__(self, other: object) -> bool:  # ``other < self``, ComfyUI's comparison, lands here
        if not isinstance(other, (int, float)):
            return NotImplemented
        low = float(self)
        return (math.isnan(other) or other < low
                or (self.gap_end is not None and low < other < self.gap_end))

    def __str__(self) -> str:
        if self.gap_end is None:
            return float.__repr__(self)
        return f"{self.gap_end:g} (or {float(self):g}: {self.meaning})"


class _Choices(list):
    """A combo's type in V1's form, its list of choices, hashable as V3 types are (0.33 looks types up in a dict)."""

    def __hash__(self) -> int:
        return hash(tuple(self))


class _ChoiceList(io.Combo.Input):
    """A combo input typed as its list of choices (V1's form), which every ComfyUI's validation checks."""

    def get_io_type(self) -> list:
        return _Choices(self.options)


def checked_schema(schema: io.Schema) -> io.Schema:
    """``schema`` (a node's fresh schema, changed in place) with every combo typed as its choices and every float
    input's ``min`` a ``Minimum``; nothing else changes (ids, defaults, tooltips, widgets)."""
    for spec in schema.inputs:
        if type(spec) is io.Combo.Input:
            spec.__class__ = _ChoiceList
        elif isinstance(spec, io.Float.Input) and spec.min is not None and not isinstance(spec.min, Minimum):
            spec.min = Minimum(spec.min)
    return schema


def remember_submitted(json_data: Any) -> Any:
    """ComfyUI's ``on_prompt`` handler: keeps the request's API prompt for ``submitted_inputs``; returns the
    request unchanged."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    _SUBMITTED.set(prompt if isinstance(prompt, dict) else None)
    return json_data


def install_prompt_hook(server: Any) -> bool:
    """Register ``remember_submitted`` with ComfyUI's ``PromptServer`` ``server`` (once); False when it has no
    ``on_prompt`` handlers (cross-input rules are then checked when the node runs)."""
    handlers = getattr(server, "on_prompt_handlers", None)
    if not hasattr(server, "add_on_prompt_handler") or not isinstance(handlers, list):
        logger.info("%s this ComfyUI's server takes no on_prompt handler: rules across inputs are "
                    "checked when a node runs, not at validation", LOG_PREFIX)
        return False
    if remember_submitted not in handlers:
        server.add_on_prompt_handler(remember_submitted)
    return True


def submitted_inputs(node_id: str | None) -> dict[str, Any]:
    """The inputs of node ``node_id`` in the prompt being validated; {} when not known (no server, no id)."""
    node = (_SUBMITTED.get() or {}).get(str(node_id)) if node_id is not None else None
    inputs = node.get("inputs") if isinstance(node, dict) else None
    return inputs if isinstance(inputs, dict) else {}


def bounds_problem(schema: io.Schema, name: str, value: float) -> str | None:
    """``value`` of float input ``name`` NaN or outside its schema's ``min``/``max``, as a message naming the node
    and the input; None when inside."""
    spec = next(spec for spec in schema.inputs if spec.id == name)
    if math.isnan(value):
        return f"{schema.display_name}: {name} is NaN: use a number from {spec.min} to {spec.max}"
    if spec.min is not None and value < spec.min:
        return f"{schema.display_name}: {name} ({value}) is below its minimum {spec.min}"
    if spec.max is not None and value > spec.max:
        return f"{schema.display_name}: {name} ({value}) is above its maximum {spec.max}"
    return None


def window_result(node: type[io.ComfyNode], end_percent: float | None) -> bool | str:
    """``validate_inputs`` of a forecasting node, on ``end_percent``: its own range (ComfyUI skips it for the input
    ``validate_inputs`` takes), then ``start_percent`` (as submitted) not after it. True, or the message."""
    schema = node.define_schema()  # not GET_SCHEMA: ComfyUI calls this on a locked class clone
    if not isinstance(end_percent, (int, float)):  # linked, or not a number (ComfyUI reported it)
        return True
    problem = bounds_problem(schema, "end_percent", end_percent)
    start = submitted_inputs(node.hidden.unique_id).get("start_percent")
    if problem is None and isinstance(start, (int, float)) and 0.0 <= start <= 1.0 and start > end_percent:
        problem = (f"{schema.display_name}: start_percent ({start}) is after end_percent ({end_percent}): set "
                   "start_percent <= end_percent")
    return True if problem is None else problem


def calibration_result(node: type[io.ComfyNode]) -> bool | str:
    """TaylorSeer Apply's rule across ``calibration`` and ``target_speedup`` (both as submitted): a calibration
    needs a speed-up budget. True, or the message naming the node and the input."""
    from .config import calibration_problem

    submitted = submitted_inputs(node.hidden.unique_id)
    calibration, speedup = submitted.get("calibration", "off"), submitted.get("target_speedup")
    if calibration in ("off", None) or not isinstance(calibration, str) or not isinstance(speedup, (int, float)):
        return True
    if speedup:
        return True
    return f"{node.define_schema().display_name}: {calibration_problem(calibration, speedup)}"
