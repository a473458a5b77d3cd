"""The module level: the original TaylorSeer's cache of every block's un-gated attention and MLP outputs.

Full steps run every block unchanged (through the block replacement the residual level also uses) and
record the output of each expensive branch with a forward hook registered for that one block call and
removed in ``finally``. Forecast steps never call the original block: the block's cheap path from its
adapter (``nodes/adapters/module_adapters.py``) computes the modulation from the current step and adds the gated
forecasts to the stream. Object patches are not used for recording: replacing a ``Linear`` by a wrapper
on the clone would move its weight keys, which LoRA weight patching and low-VRAM loading address by name.

Forecast keys are ``"{stack}/{block}/{branch}"`` per chunk (cond and window), as at the other levels.
Memory: (order + 1) factors of [tokens, hidden] per branch per block per cond, many times the residual
level's (``ModuleLayout.ratio`` gives the factor for the run's shapes; the run report prints it).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch

from ..taylor_core import Decision, Mode, Reason
from ..taylor_core.stats import format_bytes
from .adapters.block_hooks import ACTIVE_PASS, BlockFn, pass_forecast
from .adapters.families import FamilySpec, StackLayout, resolve_layout
from .adapters.module_adapters import CheapPathUnsupported, ModuleAdapter, adapter_for
from .failures import ForecastUnavailable
from .run_state import CallPlan, RunState


@dataclass
class ModuleLayout:
    """The module level's view of one model: an adapter per active block and every forecast feature name.
    ``branch_elements`` / ``stream_elements``: per batch row, the elements the module level and the residual
    level cache per factor, measured at the run's first recorded call (0 before)."""

    adapters: dict[tuple[int, int], ModuleAdapter]
    features: tuple[str, ...]
    branch_elements: int = 0
    stream_elements: int = 0
    measured: set = field(default_factory=set)

    @property
    def ratio(self) -> float | None:
        """How many times the residual level's cache the module level holds for these shapes."""
        return self.branch_elements / self.stream_elements if self.stream_elements else None


def feature_name(stack: int, block: int, branch: str) -> str:
    return f"{stack}/{block}/{branch}"


def _blocks(diffusion_model: torch.nn.Module, layout: StackLayout):
    blocks = getattr(diffusion_model, layout.spec.attribute)
    return ((index, blocks[index]) for index in layout.active)


def unsupported_blocks(family: FamilySpec, diffusion_model: torch.nn.Module) -> list[str]:
    """Class names of the active blocks that have no module adapter (empty: the module level can run)."""
    missing = {type(block).__name__ for layout in resolve_layout(family, diffusion_model)
               for _index, block in _blocks(diffusion_model, layout) if adapter_for(block) is None}
    return sorted(missing)


def module_layout(family: FamilySpec, diffusion_model: torch.nn.Module,
                  layouts: tuple[StackLayout, ...]) -> ModuleLayout | None:
    """The adapters and feature names of every active block; None when a block has no adapter."""
    adapters, features = {}, []
    for stack, layout in enumerate(layouts):
        for index, block in _blocks(diffusion_model, layout):
            adapter = adapter_for(block)
            if adapter is None:
                return None
            adapters[(stack, index)] = adapter
            features += [feature_name(stack, index, branch.name) for branch in adapter.branches]
    return ModuleLayout(adapters, tuple(features))


class ModulePass:
    """The state of one model call at the module level (owned by ``BlockLevel.attempt`` for that call); the same
    block replacements as the residual level call ``on_block``. Never gated: ``decision`` stays the plan's."""

    level = "modules"

    def __init__(self, run: RunState, plan: CallPlan, layouts: tuple[StackLayout, ...], modules: ModuleLayout,
                 diffusion_model: torch.nn.Module) -> None:
        self.run = run
        self.plan = plan
        self.diffusion_model = diffusion_model
        self.layouts, self.layout = layouts, modules
        self.decision: Decision = plan.decision
        self.gate_error: float | None = None
        self.failure: ForecastUnavailable | None = None  # a forecast failure kept for ``settle_forecast`` (ranks)
        self.finished: set[int] = set()

    @property
    def forecast(self) -> bool:
        return self.decision.mode is Mode.FORECAST

    def expected_stacks(self) -> set[int]:
        return {i for i, layout in enumerate(self.layouts) if layout.last is not None}

    def on_block(self, stack: int, block: int, args: dict, run_block: BlockFn) -> dict:
        layout: StackLayout = self.layouts[stack]
        adapter = self.layout.adapters.get((stack, block))
        if adapter is None:  # a block the layout does not list (e.g. a skip list changed): never half-forecast
            raise ForecastUnavailable(f"block {block} of stack {stack} has no module adapter in this run",
                                      Reason.NO_CHEAP_PATH)
        module = getattr(self.diffusion_model, layout.spec.attribute)[block]
        if self.forecast:
            forecasts = {b.name: self._forecast(feature_name(stack, block, b.name), args[b.stream])
                         for b in adapter.branches}
            try:
                out = adapter.apply(module, args, forecasts)
            except CheapPathUnsupported as exc:
                raise ForecastUnavailable(f"{adapter.name} {block}: {exc}", Reason.NO_CHEAP_PATH) from exc
        elif self.plan.record:
            self._measure(stack, block, layout, adapter, args)
            with self._recording(stack, block, module, adapter):
                out = run_block(args)
        else:
            out = run_block(args)
        if block == layout.last:
            self.finished.add(stack)
        return out

    @contextlib.contextmanager
    def _recording(self, stack: int, block: int, module: torch.nn.Module, adapter: ModuleAdapter):
        """Forward hooks on the block's branch modules for the duration of one block call."""
        handles = []

        def hook_for(feature: str):
            def hook(_module, _inputs, output):
                if ACTIVE_PASS.get() is self:  # another thread's call on the same module is not ours
                    self.run.record(self.plan, feature, output)
            return hook

        try:
            for branch in adapter.branches:
                handles.append(module.get_submodule(branch.module).register_forward_hook(
                    hook_for(feature_name(stack, block, branch.name))))
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _measure(self, stack: int, block: int, layout: StackLayout, adapter: ModuleAdapter, args: dict) -> None:
        """Per batch row, the elements each level caches per factor (for the report), once per block."""
        modules = self.layout
        with self.run.lock:  # device threads measure the same layout
            if (stack, block) in modules.measured:
                return
            modules.measured.add((stack, block))
            rows = max(int(args[layout.spec.streams[0]].shape[0]), 1)
            modules.branch_elements += sum(args[b.stream].numel() for b in adapter.branches) // rows
            if block == layout.first_skipped:
                modules.stream_elements += sum(args[s].numel() for s in layout.spec.streams) // rows

    def _forecast(self, feature: str, stream: torch.Tensor) -> torch.Tensor:
        return pass_forecast(self, feature, stream)


def memory_line(run: RunState) -> str | None:
    """The report's comparison of the module level's cache with what the residual level would hold."""
    modules = run.modules
    if run.level != "modules" or modules is None:
        return None
    peak = run.stats.peak_cache_bytes
    line = f"modules cache: {len(modules.features)} branch features per cond, peak {format_bytes(peak)}"
    if modules.ratio:
        line += (f", {modules.ratio:.1f}x the residual level's for these shapes "
                 f"(about {format_bytes(int(peak / modules.ratio))})")
    return line
