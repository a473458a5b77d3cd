"""Per-family adapter tables: which block stacks a diffusion model has and what its blocks return.

Adding a family touches only ``FAMILIES``. A family is matched by the diffusion model's class (walking the
MRO, so subclasses such as ``ChromaRadiance`` or ``VaceWanModel`` inherit their parent's entry) by the
module and class name, never by importing ComfyUI here.

Every listed block is reached through ``transformer_options["patches_replace"]["dit"][(block_type, i)]``
and receives a dict of tensors; ``streams`` names the entries the block returns (and that the residual
level forecasts).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StackSpec:
    """One ``ModuleList`` of blocks called in order by the model's forward."""

    block_type: str  # the patches_replace["dit"] key prefix: "double_block" or "single_block"
    attribute: str  # the ModuleList attribute on the diffusion model
    streams: tuple[str, ...]  # the dict keys a block returns, e.g. ("img", "txt")
    skip_attribute: str | None = None  # a list of indices the model never calls (Chroma)


@dataclass(frozen=True)
class FamilySpec:
    """A model family: its block stacks, and the CG-Taylor gate threshold used when the user leaves it at
    auto (relative L1 error of the first block's forecast), with where that number comes from."""

    name: str
    stacks: tuple[StackSpec, ...]
    gate_threshold: float
    gate_threshold_source: str


_FLUX_STACKS = (
    StackSpec("double_block", "double_blocks", ("img", "txt"), "skip_mmdit"),
    StackSpec("single_block", "single_blocks", ("img",), "skip_dit"),
)

# (module, class name) of the diffusion model -> its family.
FAMILIES: dict[tuple[str, str], FamilySpec] = {
    ("comfy.ldm.flux.model", "Flux"): FamilySpec(  # Flux.1, Kontext, Flux 2
        "flux", _FLUX_STACKS, 0.03, "CG-Taylor's FLUX.1-dev script"),
    ("comfy.ldm.chroma.model", "Chroma"): FamilySpec(
        "chroma", _FLUX_STACKS, 0.03, "Flux's (same block structure; not measured on Chroma)"),
    ("comfy.ldm.wan.model", "WanModel"): FamilySpec(
        "wan", (StackSpec("double_block", "blocks", ("img",)),), 0.36, "CG-Taylor's Wan2.1 README"),
}


@dataclass(frozen=True)
class StackLayout:
    """The blocks of one stack that a model call actually runs, as resolved on a model instance.

    ``first_skipped``: the first block a forecast step skips (stack 0 always runs its first block, the
    others skip from their first); ``last``: the last block called. ``first_skipped is None`` means the
    stack has nothing to skip (e.g. a first stack of a single block).
    """

    spec: StackSpec
    active: tuple[int, ...]
    first_skipped: int | None
    last: int | None


def family_of(diffusion_model: torch.nn.Module) -> FamilySpec | None:
    for cls in type(diffusion_model).__mro__:
        family = FAMILIES.get((cls.__module__, cls.__name__))
        if family is not None:
            return family
    return None


def resolve_layout(family: FamilySpec, diffusion_model: torch.nn.Module) -> tuple[StackLayout, ...]:
    """The active blocks of every stack of ``diffusion_model`` (skipped indices removed)."""
    layouts = []
    for index, spec in enumerate(family.stacks):
        blocks = getattr(diffusion_model, spec.attribute, None)
        count = len(blocks) if blocks is not None else 0
        skipped = set(getattr(diffusion_model, spec.skip_attribute, ()) or ()) if spec.skip_attribute else set()
        active = tuple(i for i in range(count) if i not in skipped)
        skippable = active[1:] if index == 0 else active
        layouts.append(StackLayout(spec, active, skippable[0] if skippable else None,
                                   active[-1] if active else None))
    return tuple(layouts)


def block_counts(family: FamilySpec, diffusion_model: torch.nn.Module) -> dict[str, int]:
    """Number of blocks per block type, for registering one replacement per block index."""
    return {spec.block_type: len(getattr(diffusion_model, spec.attribute, ()) or ()) for spec in family.stacks}


def gate_defaults_markdown() -> str:
    """The README's table of auto gate thresholds, generated from ``FAMILIES`` (a test keeps them equal)."""
    rows = ["| family | auto threshold | source |", "|---|---|---|"]
    rows += [f"| {f.name} | {f.gate_threshold:g} | {f.gate_threshold_source} |" for f in FAMILIES.values()]
    return "\n".join(rows)
