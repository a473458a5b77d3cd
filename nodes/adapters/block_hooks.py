"""The block hooks every block level shares (``patches_replace`` block replacements, the per-call pass they act
on, the adapter-mismatch checks), and the residual level they carry out: run the first block every step; on
forecast steps skip the other blocks and add a forecast of the change they make (the modules level,
``nodes/module_level.py``, acts on the same replacements).

Per stack, the reference is the stream entering the first skipped block (stack 0: the input of block 1,
i.e. block 0's output after any ControlNet or post-block additions the model made outside the block
replacement; later stacks: the input of their block 0). A full step records ``R = out(last block) - ref``;
a forecast step returns ``ref + R_hat`` from the last block and its input unchanged from the blocks between.
Under the CG-Taylor Gate the target is the last block's output itself (CG-Taylor's "last block forecast":
``H = out(last block)`` recorded, ``H_hat`` returned; docs/benchmarks.md compares the two targets).
The reference is always the stored copy, never the tensor arriving at the last block, so additions the
model code makes after the skipped blocks are not counted twice.

Block replacements are closures over (stack, block) and the replacement they found on the model, never
bound methods (ComfyUI 0.3.75 deep-copies model_options on clone). Per-call state reaches them through a
``ContextVar`` set by the APPLY_MODEL wrapper, which is thread-local and so safe with multi-GPU threads.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

import torch

from ...taylor_core import Decision, Mode, Reason, relative_l1
from ..failures import AdapterMismatch, ForecastUnavailable, adapter_error, tracking
from ..feature_cache import PROBE
from ..logs import LOG_PREFIX, logger
from ..run_state import CallPlan, RunState
from .families import FamilySpec, StackLayout, StackSpec, block_counts

BlockFn = Callable[[dict], dict]

ACTIVE_PASS: contextvars.ContextVar[ResidualPass | None] = contextvars.ContextVar("taylor_forecast_pass",
                                                                                 default=None)
# The diffusion model an APPLY_MODEL call of a patched clone is running (object-patched block forwards use it).
ACTIVE_MODEL: contextvars.ContextVar[torch.nn.Module | None] = contextvars.ContextVar("taylor_forecast_model",
                                                                                     default=None)
_PREVIOUS_ATTR = "taylor_forecast_previous"


def guarded_block(active, stack: int, block: int, args: dict, run_block: BlockFn) -> dict:
    """``active.on_block``, with a failure of the pack's adapter code raised as ``AdapterMismatch`` and the
    model's own block errors (interrupts included) passed on unchanged."""
    raised: list[BaseException] = []
    try:
        return active.on_block(stack, block, args, tracking(run_block, raised))
    except Exception as exc:
        if adapter_error(exc, raised):
            raise AdapterMismatch(f"{type(exc).__name__} in the {active.level} adapter at block {block} of stack "
                                  f"{stack}: {exc}", active.level) from exc
        raise


def _eager(fn: Callable) -> Callable:
    """Keep ``fn`` out of ``torch.compile`` graphs (TorchCompileModel traces the block replacements): the
    bookkeeping runs eagerly on real tensors, the blocks themselves stay compilable."""
    disable = getattr(getattr(torch, "compiler", None), "disable", None)
    return disable(fn) if disable is not None else fn


def stream_copies(args: dict, streams: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Copies of the named block-argument streams (a stack's reference); ``AdapterMismatch`` when one is not
    a tensor."""
    for stream in streams:
        if not isinstance(args.get(stream), torch.Tensor):
            raise AdapterMismatch(f"block argument '{stream}' is a {type(args.get(stream)).__name__}, not a tensor",
                                  "residual")
    return {stream: args[stream].clone() for stream in streams}


@_eager
def _record_targets(run: RunState, plan: CallPlan, stack: int, out: dict, ref: dict) -> None:
    for stream, value in ref.items():
        run.record(plan, f"{stack}/{stream}", out[stream] if run.gated else out[stream] - value)


@_eager
def checked_forecast(run: RunState, plan: CallPlan, feature: str, like: torch.Tensor) -> torch.Tensor:
    """The forecast of ``feature`` for the call's whole batch, in ``like``'s dtype; ``ForecastUnavailable`` when
    its shape differs from ``like``'s (SHAPE_CHANGE) or it is not finite (NON_FINITE)."""
    value = run.predict(plan, feature)
    if value.shape != like.shape:
        raise ForecastUnavailable(f"forecast of {feature} has shape {tuple(value.shape)}, "
                                  f"the stream has {tuple(like.shape)}", Reason.SHAPE_CHANGE)
    if not torch.isfinite(value).all():
        raise ForecastUnavailable(f"forecast of {feature} is not finite", Reason.NON_FINITE)
    return value.to(like.dtype)


def defer(active, problem: ForecastUnavailable) -> None:
    """A forecast of ``active``'s call (a block-level pass) failed: raised at once with one rank; with several
    ranks kept until the call's end (``settle_forecast``), so that every rank skips the same blocks first."""
    if active.run.consensus.size == 1:
        raise problem
    if active.failure is None:
        active.failure = problem


def pass_forecast(active, feature: str, like: torch.Tensor) -> torch.Tensor:
    """``checked_forecast`` for a block-level pass; a failure deferred by ``defer`` reads as zeros meanwhile."""
    try:
        return checked_forecast(active.run, active.plan, feature, like)
    except ForecastUnavailable as exc:
        defer(active, exc)
        return torch.zeros_like(like)


def settle_forecast(active) -> None:
    """End of a block-level call: ``ForecastUnavailable`` when its forecast failed on any rank sharing the model
    (one collective per forecast call when there are several ranks, none with one)."""
    failure = active.failure
    if active.forecast and not active.run.consensus.all_ok(failure is None):
        raise failure or ForecastUnavailable("a forecast failed on another rank sharing the model", Reason.NON_FINITE)


class ResidualPass:
    """The state of one model call at the residual level (owned by ``BlockLevel.attempt`` for that call).

    ``decision`` starts as the call plan's; a GATE call settles it at the probe: the reference of the first
    stack that skips blocks (the first block's output), forecast against its real value. ``gate_error`` is the
    score the gate compared there.
    """

    level = "residual"

    def __init__(self, run: RunState, plan: CallPlan, layouts: tuple[StackLayout, ...]) -> None:
        self.run = run
        self.plan = plan
        self.layouts = layouts
        self.decision: Decision = plan.decision
        self.gate_error: float | None = None
        self.failure: ForecastUnavailable | None = None  # a forecast failure kept for ``settle_forecast`` (ranks)
        self.refs: dict[int, dict[str, torch.Tensor]] = {}
        self.finished: set[int] = set()

    @property
    def forecast(self) -> bool:
        return self.decision.mode is Mode.FORECAST

    def expected_stacks(self) -> set[int]:
        return {i for i, layout in enumerate(self.layouts) if layout.first_skipped is not None}

    def on_block(self, stack: int, block: int, args: dict, run_block: BlockFn) -> dict:
        layout: StackLayout = self.layouts[stack]
        streams = layout.spec.streams
        if layout.first_skipped is None or block < layout.first_skipped:
            return run_block(args)
        if block == layout.first_skipped:
            self.refs[stack] = stream_copies(args, streams)
            if self.run.gated and stack == min(self.expected_stacks()):
                self._probe(self.refs[stack][streams[0]])
        if not self.forecast:
            out = run_block(args)
            if block == layout.last and stack in self.refs:  # else its first skipped block was replaced by another
                ref = self.refs.pop(stack)
                if self.plan.record:
                    _record_targets(self.run, self.plan, stack, out, ref)
                self.finished.add(stack)
            return out
        handed_on = {s: args[s] for s in layout.spec.passthrough}
        if block != layout.last:
            return {**{s: args[s] for s in streams}, **handed_on}
        if stack not in self.refs:
            raise ForecastUnavailable(f"stack {stack}'s first skipped block was not reached through our replacement",
                                      Reason.ADAPTER_MISMATCH)
        ref = self.refs.pop(stack)
        self.finished.add(stack)
        if self.run.gated:
            return {**{s: self._forecast(f"{stack}/{s}", ref[s]) for s in streams}, **handed_on}
        return {**{s: ref[s] + self._forecast(f"{stack}/{s}", ref[s]) for s in streams}, **handed_on}

    @_eager
    def _probe(self, actual: torch.Tensor) -> None:
        """Gate on the probe (deciding call only) and record it on full calls, as CG-Taylor does. A non-finite
        probe is never trusted (``relative_l1`` is inf) and never recorded: it would poison later forecasts."""
        if self.decision.mode is Mode.GATE:
            probe_error = relative_l1(self.run.predict(self.plan, PROBE), actual)
            self.decision, self.gate_error = self.run.verdict(self.plan, probe_error)
        if not torch.isfinite(actual).all():
            if self.forecast:  # a cond following an earlier verdict: redone in full by the runtime
                defer(self, ForecastUnavailable("the first block returned non-finite values", Reason.NON_FINITE))
                return
            logger.warning("%s step %d: the first block returned non-finite values; this step is computed in "
                           "full and kept out of the gate's history", LOG_PREFIX, self.plan.step)
            return
        if not self.forecast and self.plan.record:
            self.run.record(self.plan, PROBE, actual)

    def _forecast(self, feature: str, ref: torch.Tensor) -> torch.Tensor:
        return pass_forecast(self, feature, ref)


def _block_replacement(stack: int, block: int, previous: Callable | None) -> Callable:
    def replacement(args: dict, extra: dict) -> dict:
        original = extra["original_block"]

        def run_block(block_args: dict) -> dict:
            return previous(block_args, extra) if previous is not None else original(block_args)

        active = ACTIVE_PASS.get()
        if active is None:
            return run_block(args)
        return guarded_block(active, stack, block, args, run_block)

    setattr(replacement, _PREVIOUS_ATTR, previous)
    return replacement


def _forward_replacement(stack: int, block: int, attribute: str, stream: str, previous: Callable | None,
                         fallback: torch.nn.Module) -> Callable:
    """A block's ``forward`` for a ``hook = "forward"`` stack (``x`` is the stream, the result its new value).

    The original is another node's object patch (``previous``), else the class's ``forward`` of the block of
    the diffusion model being run (``ACTIVE_MODEL``, set by the APPLY_MODEL wrapper): never a block captured at
    patch time, which a copy of the model (newest ComfyUI's multi-GPU clones) would not own."""
    def original(x, *args, **kwargs):
        if previous is not None:
            return previous(x, *args, **kwargs)
        model = ACTIVE_MODEL.get()
        module = getattr(model, attribute)[block] if model is not None else fallback
        return type(module).forward(module, x, *args, **kwargs)

    def forward(x, *args, **kwargs):
        active = ACTIVE_PASS.get()
        if active is None:
            return original(x, *args, **kwargs)
        out = guarded_block(active, stack, block, {stream: x},
                            lambda block_args: {stream: original(block_args[stream], *args, **kwargs)})
        return out[stream]

    setattr(forward, _PREVIOUS_ATTR, previous)
    return forward


def _install_forward_patches(model_patcher, stack: int, spec: StackSpec, blocks: torch.nn.ModuleList) -> None:
    """Object-patch every block's ``forward`` on ``model_patcher`` (a clone), chaining another node's object
    patch of the same ``forward`` (an earlier one of ours is unwrapped, not nested)."""
    for block, module in enumerate(blocks):
        key = f"diffusion_model.{spec.attribute}.{block}.forward"
        previous = model_patcher.object_patches.get(key)
        previous = getattr(previous, _PREVIOUS_ATTR, previous)
        model_patcher.add_object_patch(key, _forward_replacement(stack, block, spec.attribute, spec.streams[0],
                                                                 previous, module))


def install_block_replacements(model_patcher, family: FamilySpec, diffusion_model: torch.nn.Module) -> int:
    """Register one replacement per block on ``model_patcher`` (a clone), chaining any replacement another
    node registered earlier for the same block; an earlier replacement of ours is unwrapped, not nested.
    Returns the number of blocks hooked."""
    existing = model_patcher.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
    counts = block_counts(family, diffusion_model)
    for stack, spec in enumerate(family.stacks):
        if spec.hook == "forward":
            _install_forward_patches(model_patcher, stack, spec, getattr(diffusion_model, spec.attribute))
            continue
        for block in range(counts[spec.block_type]):
            previous = existing.get((spec.block_type, block))
            if previous is not None and hasattr(previous, _PREVIOUS_ATTR):
                previous = getattr(previous, _PREVIOUS_ATTR)
            model_patcher.set_model_patch_replace(_block_replacement(stack, block, previous), "dit",
                                                  spec.block_type, block)
    return sum(counts.values())
