"""The levels a run forecasts at, behind one protocol, and the fall-back ladder between them.

A level is an immutable object (a call keeps the level it started with while another thread may move the run
down a rung)::

    class Level(Protocol):
        name: str                    # "output", "residual" or "modules"
        features: tuple[str, ...]    # the forecast features of one chunk (the gate's probe excluded)
        def attempt(self, run: RunState, plan: CallPlan, call: ModelCall) -> CallResult: ...

``attempt`` runs one model call as the plan says and returns what happened as a value; a forecast that fails or
cannot run raises ``ForecastUnavailable`` (carrying its ``Reason``) and the runtime (``nodes/runtime.py``) redoes
the call in full. ``OutputLevel`` forecasts the model's output; ``BlockLevel`` the blocks' (residual) or their
branches' (modules) outputs through the block hooks (``nodes/adapters/block_hooks.py``, ``nodes/module_level.py``).

The ladder modules -> residual -> output -> off is walked by ``fall`` alone: at apply time (a level the model
cannot run) and at run time (a level whose adapter failed). The gate needs the blocks: under it, a fall below
residual is off (every step computed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..taylor_core import Decision, Mode, Reason
from .adapters.block_hooks import ACTIVE_MODEL, ACTIVE_PASS, ResidualPass, settle_forecast
from .adapters.families import StackLayout, family_of, no_adapter_reason, resolve_layout
from .compat import block_level_blocker
from .failures import AdapterMismatch, ForecastUnavailable
from .logs import LOG_PREFIX, logger
from .module_level import ModuleLayout, ModulePass, module_layout, unsupported_blocks
from .run_state import LADDER, CallPlan, RunState


@dataclass
class ModelCall:
    """One ``apply_model`` call as the APPLY_MODEL wrapper received it (``args``: ``c_concat, c_crossattn,
    control, transformer_options``); ``raised`` lists what the model itself raised while computing it."""

    executor: Callable
    x: torch.Tensor
    t: torch.Tensor
    args: tuple
    kwargs: dict
    raised: list[BaseException] = field(default_factory=list)

    @property
    def diffusion_model(self) -> torch.nn.Module:
        return self.executor.class_obj.diffusion_model

    @property
    def context(self) -> torch.Tensor | None:
        return self.args[1]

    @property
    def options(self) -> dict:
        return self.args[3]

    def compute(self, active=None) -> torch.Tensor:
        """The model's own result, with ``active`` (a block level's per-call pass, or None) for the hooks."""
        model_token, pass_token = ACTIVE_MODEL.set(self.diffusion_model), ACTIVE_PASS.set(active)
        try:
            return self.executor(self.x, self.t, *self.args, **self.kwargs)
        except BaseException as exc:
            self.raised.append(exc)
            raise
        finally:
            ACTIVE_PASS.reset(pass_token)
            ACTIVE_MODEL.reset(model_token)


@dataclass(frozen=True)
class CallResult:
    """A call's output, its final decision, and the gate's probe error where the probe ran."""

    out: torch.Tensor
    decision: Decision
    gate_error: float | None = None


class Level(Protocol):
    name: str
    features: tuple[str, ...]

    def attempt(self, run: RunState, plan: CallPlan, call: ModelCall) -> CallResult: ...


def _sigma_view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (like.ndim - 1))).to(device=like.device, dtype=torch.float32)


@dataclass(frozen=True)
class OutputLevel:
    """Forecasts the eps-equivalent ``(x - denoised) / sigma`` (the model output itself for eps and flow models)."""

    name: str = "output"
    features: tuple[str, ...] = ("output",)

    def attempt(self, run: RunState, plan: CallPlan, call: ModelCall) -> CallResult:
        x = call.x
        sigma = _sigma_view(call.t, x)
        if not plan.full:
            eps = run.predict(plan, "output")
            if not run.consensus.all_ok(bool(torch.isfinite(eps).all())):  # on every rank sharing the model
                raise ForecastUnavailable(f"forecast at step {plan.step} is not finite (here or on another rank)",
                                          Reason.NON_FINITE)
            return CallResult((x.float() - sigma * eps.float()).to(x.dtype), plan.decision)
        denoised = call.compute()
        if plan.record:
            run.record(plan, "output", (x.float() - denoised.float()) / sigma)
        return CallResult(denoised, plan.decision)


@dataclass(frozen=True)
class BlockLevel:
    """The residual level (``modules`` None) or the modules level on the model's resolved block ``layouts``."""

    name: str
    layouts: tuple[StackLayout, ...]
    modules: ModuleLayout | None = None

    @property
    def features(self) -> tuple[str, ...]:
        if self.modules is not None:
            return self.modules.features
        return tuple(f"{index}/{stream}" for index, layout in enumerate(self.layouts)
                     if layout.first_skipped is not None for stream in layout.spec.streams)

    def attempt(self, run: RunState, plan: CallPlan, call: ModelCall) -> CallResult:
        """One call through the block hooks. A forecast whose blocks were not all reached through them (another
        node replaced one, or a model variant runs its blocks differently) is never trusted: ``AdapterMismatch``;
        a full call that missed some still returns the model's exact result, and the run falls below the blocks."""
        active = (ModulePass(run, plan, self.layouts, self.modules, call.diffusion_model) if self.modules is not None
                  else ResidualPass(run, plan, self.layouts))
        out = call.compute(active)
        settle_forecast(active)
        decision = active.decision if active.decision.mode is not Mode.GATE else run.settle(plan)
        missing = active.expected_stacks() - active.finished
        if missing and (active.forecast or plan.record):
            why = f"blocks of stack(s) {sorted(missing)} were not reached through patches_replace"
            if active.forecast:
                raise AdapterMismatch(why, "residual")
            run.forget(plan, self.features)
            fall_at_run(run, self, "residual", why, call.diffusion_model)
        return CallResult(out, decision, active.gate_error)


def _cannot_run(rung: str, diffusion_model: torch.nn.Module, device: torch.device | None) -> str | None:
    """Why ``rung`` cannot run on ``diffusion_model`` run on ``device`` (None: it can)."""
    if rung in ("output", "off"):
        return None
    family = family_of(diffusion_model)
    if family is None:
        return no_adapter_reason(diffusion_model)
    blocker = block_level_blocker(device, diffusion_model) if device is not None else None
    if blocker is not None:
        return blocker
    missing = unsupported_blocks(family, diffusion_model) if rung == "modules" else ()
    if not missing:
        return None
    return f"{type(diffusion_model).__name__}: no module adapter for {', '.join(missing)} blocks yet"


def _below(rung: str, gated: bool) -> str:
    """The next rung down; the gate's probe needs the blocks, so under the gate residual falls to off."""
    return "off" if gated and rung == "residual" else LADDER[LADDER.index(rung) + 1]


def fall(level: str, diffusion_model: torch.nn.Module, gated: bool, failure: str | None = None,
         applying: bool = False, device: torch.device | None = None) -> str:
    """The rung of modules -> residual -> output -> off a run uses: ``level`` itself when it can run on
    ``diffusion_model`` (on ``device``, when given), else (or, after ``failure``, a sentence on how ``level``'s
    adapter failed, always) the highest rung under it that can. A fall is logged once, with its first reason."""
    rung, why = (_below(level, gated), failure) if failure is not None else (level, None)
    while (cannot := _cannot_run(rung, diffusion_model, device)) is not None:
        why, rung = why or cannot, _below(rung, gated)
    if why is not None:
        if rung == "off":
            outcome = ("no first block to probe for the CG-Taylor Gate: every step is computed" if applying else
                       "the gate needs the model's blocks; computing every step of this run")
        else:
            outcome = f"using level={rung}" if applying else f"falling back to level={rung} for this run"
        logger.warning("%s %s: %s", LOG_PREFIX, why, outcome)
    return rung


def make_level(rung: str, diffusion_model: torch.nn.Module) -> Level:
    """The level object of ``rung`` on ``diffusion_model`` (off: the output level, the run's controller stopped
    by the caller)."""
    if rung in ("output", "off"):
        return OutputLevel()
    family = family_of(diffusion_model)
    layouts = resolve_layout(family, diffusion_model)
    modules = module_layout(family, diffusion_model, layouts) if rung == "modules" else None
    return BlockLevel(rung, layouts, modules)


def level_at_run(run: RunState, diffusion_model: torch.nn.Module, device: torch.device) -> Level:
    """The run's level, resolved on the model at the run's first call on ``device`` (the ladder may move it
    down)."""
    return run.level_for(lambda: _fallen(run, fall(run.requested_level, diffusion_model, run.gated, device=device),
                                         diffusion_model))


def fall_at_run(run: RunState, level: Level, failed: str, why: str, diffusion_model: torch.nn.Module) -> Level:
    """After the adapter of ``failed`` (a level name) failed on a call at ``level``: the run's level one rung below
    (once, whichever thread gets here first; a call at an older level finds the run's current one)."""
    return run.replace_level(level, lambda: _fallen(run, fall(failed, diffusion_model, run.gated, why),
                                                    diffusion_model))


def follow_agreed_level(run: RunState, level: Level, diffusion_model: torch.nn.Module) -> Level:
    """Another rank sharing the model is at a lower level (the evaluation is then computed by every rank): this
    rank falls to it too, rung by rung; the run's level after."""
    while LADDER.index(level.name) < LADDER.index(run.agreed_level) and run.forecasting:
        why = f"another rank sharing the model is at level={run.agreed_level}"
        level = fall_at_run(run, level, level.name, why, diffusion_model)
    return level


def _fallen(run: RunState, rung: str, diffusion_model: torch.nn.Module) -> Level:
    if rung == "off":
        run.stop_forecasting()
    return make_level(rung, diffusion_model)
