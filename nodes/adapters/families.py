"""Per-family adapter tables: which block stacks a diffusion model has and what its blocks return.

Adding a family touches only ``FAMILIES``. A family is matched by the diffusion model's class (walking the
MRO, so subclasses such as ``ChromaRadiance`` or ``VaceWanModel`` inherit their parent's entry) by the
module and class name, never by importing ComfyUI here.

Every listed block is reached through ``transformer_options["patches_replace"]["dit"][(block_type, i)]``
and receives a dict of tensors; ``streams`` names the entries the block returns (and that the residual
level forecasts), ``passthrough`` the entries it also returns that the model uses only inside the stack
(handed on unchanged by skipped blocks, never forecast). A stack with ``hook = "forward"`` is reached instead
through an object patch of each block's ``forward`` on the model clone (ComfyUI's ``add_object_patch``, undone
when the clone is unloaded): for models whose forward calls no replacement hook but whose blocks take the stream
as their first argument and return it (Lumina 2 / Z-Image, PixArt). Only models whose forward calls their blocks
that way (checked in ComfyUI 0.3.75 and 0.33) are listed; ``OUTPUT_ONLY`` names the families known to have no such
hook, for the log, and stops a subclass from inheriting its parent's adapter. A model whose blocks are not
reached as its entry says is caught at run time (``nodes/wrappers.py``) and falls back to the output level.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .module_adapters import MODULE_FAMILIES


@dataclass(frozen=True)
class StackSpec:
    """One ``ModuleList`` of blocks called in order by the model's forward."""

    block_type: str  # the patches_replace["dit"] key prefix: "double_block" or "single_block"
    attribute: str  # the ModuleList attribute on the diffusion model
    streams: tuple[str, ...]  # the dict keys a block returns, e.g. ("img", "txt")
    skip_attribute: str | None = None  # a list of indices the model never calls (Chroma)
    passthrough: tuple[str, ...] = ()  # returned too, but unused after the stack (e.g. SD3's text): not forecast
    hook: str = "replace"  # "replace": patches_replace["dit"][(block_type, i)]; "forward": object-patched forward


@dataclass(frozen=True)
class FamilySpec:
    """A model family: its block stacks, and the CG-Taylor gate threshold used when the user leaves it at
    auto (relative L1 error of the first block's forecast), with where that number comes from."""

    name: str
    stacks: tuple[StackSpec, ...]
    gate_threshold: float
    gate_threshold_source: str
    models: str = ""  # what users know the family as (README support matrix)


@dataclass(frozen=True)
class OutputOnly:
    """A family whose blocks ComfyUI gives no replacement hook for: ``level = output`` only, and why."""

    name: str
    models: str
    reason: str


_FLUX_STACKS = (
    StackSpec("double_block", "double_blocks", ("img", "txt"), "skip_mmdit"),
    StackSpec("single_block", "single_blocks", ("img",), "skip_dit"),
)
_DOUBLE_SINGLE = (
    StackSpec("double_block", "double_blocks", ("img", "txt")),
    StackSpec("single_block", "single_blocks", ("img",)),
)
_FLUX_SOURCE = "Flux's (image DiT; not measured on this family)"
_VIDEO_SOURCE = "HunyuanVideo's (video DiT; not measured on this family)"


def _single(attribute: str, passthrough: tuple[str, ...] = ()) -> tuple[StackSpec, ...]:
    """One uniform stack of ``("double_block", i)`` blocks forecasting the image stream."""
    return (StackSpec("double_block", attribute, ("img",), passthrough=passthrough),)


# (module, class name) of the diffusion model -> its family.
FAMILIES: dict[tuple[str, str], FamilySpec] = {
    ("comfy.ldm.flux.model", "Flux"): FamilySpec(
        "flux", _FLUX_STACKS, 0.03, "CG-Taylor's FLUX.1-dev script", "Flux.1 dev/schnell, Kontext, Flux 2"),
    ("comfy.ldm.chroma.model", "Chroma"): FamilySpec(
        "chroma", _FLUX_STACKS, 0.03, "Flux's (same block structure; not measured on Chroma)",
        "Chroma, Chroma Radiance"),
    ("comfy.ldm.wan.model", "WanModel"): FamilySpec(
        "wan", _single("blocks"), 0.36, "CG-Taylor's Wan2.1 README",
        "Wan 2.1, Wan 2.2 (14B high/low pair, 5B), VACE, Camera, S2V, HuMo, Animate"),
    ("comfy.ldm.hunyuan_video.model", "HunyuanVideo"): FamilySpec(
        "hunyuan_video", _DOUBLE_SINGLE, 0.08, "CG-Taylor's HunyuanVideo script",
        "HunyuanVideo, HunyuanVideo 1.5, HunyuanImage 2.1"),
    ("comfy.ldm.qwen_image.model", "QwenImageTransformer2DModel"): FamilySpec(
        "qwen_image", _single("transformer_blocks", ("txt",)), 0.03, _FLUX_SOURCE, "Qwen-Image, Qwen-Image-Edit"),
    ("comfy.ldm.modules.diffusionmodules.mmdit", "MMDiT"): FamilySpec(
        "sd3", _single("joint_blocks", ("txt",)), 0.03, _FLUX_SOURCE, "SD3, SD3.5 (MMDiT)"),
    ("comfy.ldm.lightricks.model", "LTXVModel"): FamilySpec(
        "ltxv", _single("transformer_blocks"), 0.08, _VIDEO_SOURCE, "LTX-Video"),
    ("comfy.ldm.genmo.joint_model.asymm_models_joint", "AsymmDiTJoint"): FamilySpec(
        "mochi", _single("blocks", ("txt",)), 0.08, _VIDEO_SOURCE, "Mochi"),
    ("comfy.ldm.aura.mmdit", "MMDiT"): FamilySpec(
        "auraflow", (StackSpec("double_block", "double_layers", ("img", "txt")),
                     StackSpec("single_block", "single_layers", ("img",))), 0.03, _FLUX_SOURCE, "AuraFlow"),
    ("comfy.ldm.hydit.models", "HunYuanDiT"): FamilySpec(
        "hunyuan_dit", _single("blocks"), 0.03, _FLUX_SOURCE, "HunyuanDiT 1.0-1.2"),
    ("comfy.ldm.lumina.model", "NextDiT"): FamilySpec(
        "lumina2", (StackSpec("layer", "layers", ("img",), hook="forward"),), 0.03, _FLUX_SOURCE,
        "Lumina 2, Z-Image"),
    ("comfy.ldm.pixart.pixartms", "PixArtMS"): FamilySpec(
        "pixart", (StackSpec("block", "blocks", ("img",), hook="forward"),), 0.03, _FLUX_SOURCE,
        "PixArt Alpha, PixArt Sigma"),
}

_NO_HOOK = "its forward calls no patches_replace block hook"
_UNVERIFIED = "its blocks go through patches_replace, but no block adapter has been verified on it yet"
OUTPUT_ONLY: dict[tuple[str, str], OutputOnly] = {
    ("comfy.ldm.hidream.model", "HiDreamImageTransformer2DModel"): OutputOnly("hidream", "HiDream-I1", _NO_HOOK),
    ("comfy.ldm.cosmos.predict2", "MiniTrainDIT"): OutputOnly("cosmos_predict2", "Cosmos Predict2, Anima", _NO_HOOK),
    ("comfy.ldm.cosmos.model", "GeneralDIT"): OutputOnly("cosmos", "Cosmos 1", _NO_HOOK),
    ("comfy.ldm.omnigen.omnigen2", "OmniGen2Transformer2DModel"): OutputOnly("omnigen2", "OmniGen2", _NO_HOOK),
    ("comfy.ldm.modules.diffusionmodules.openaimodel", "UNetModel"): OutputOnly(
        "unet", "SD 1.x, SD 2.x, SDXL and other UNets", "a UNet has no transformer block stack"),
    ("comfy.ldm.wan.ar_model", "CausalWanModel"): OutputOnly(
        "wan_causal", "autoregressive Wan (newest ComfyUI only)", _NO_HOOK + " (it overrides Wan's forward)"),
    ("comfy.ldm.lightricks.av_model", "LTXAVModel"): OutputOnly(
        "ltx2_av", "LTX-2 audio-video (newest ComfyUI only)",
        "its blocks take and return an (video, audio) tuple, not one stream tensor"),
    ("comfy.ldm.minimax.model", "MiniMaxH3Model"): OutputOnly(
        "minimax_h3", "MiniMax H3 audio-video (ComfyUI 0.33+)",
        "its blocks take one unbatched [tokens, width] stream, and the block levels forecast batch-first streams"),
    ("comfy.ldm.hidream_o1.model", "HiDreamO1Transformer"): OutputOnly(
        "hidream_o1", "HiDream-O1 (ComfyUI 0.33+)", _UNVERIFIED),
    ("comfy.ldm.joyimage.model", "JoyImageTransformer3DModel"): OutputOnly(
        "joyimage", "JoyImage (ComfyUI 0.33+)", _UNVERIFIED),
    ("comfy.ldm.lens.model", "LensTransformer2DModel"): OutputOnly("lens", "Lens (ComfyUI 0.33+)", _UNVERIFIED),
    ("comfy.ldm.mage_flow.model", "MageFlowTransformer2DModel"): OutputOnly(
        "mage_flow", "MageFlow (ComfyUI 0.33+)", _UNVERIFIED),
    ("comfy.ldm.kandinsky5.model", "Kandinsky5"): OutputOnly("kandinsky5", "Kandinsky 5 (ComfyUI 0.33+)", _UNVERIFIED),
    ("comfy.ldm.ernie.model", "ErnieImageModel"): OutputOnly("ernie_image", "ERNIE-Image (ComfyUI 0.33+)", _NO_HOOK),
    ("comfy.ldm.ideogram4.model", "Ideogram4Transformer"): OutputOnly(
        "ideogram4", "Ideogram 4 (ComfyUI 0.33+)", _NO_HOOK),
    ("comfy.ldm.krea2.model", "SingleStreamDiT"): OutputOnly("krea2", "Krea 2 (ComfyUI 0.33+)", _NO_HOOK),
    ("comfy.ldm.pixeldit.model", "PixDiT_T2I"): OutputOnly("pixeldit", "PixelDiT (ComfyUI 0.33+)", _NO_HOOK),
    ("comfy.ldm.qwen_image21.model", "QwenImage21Transformer2DModel"): OutputOnly(
        "qwen_image21", "Qwen-Image 2.1 (ComfyUI 0.38+)", _UNVERIFIED),
    ("comfy.ldm.kandinsky6.model", "Kandinsky6"): OutputOnly(
        "kandinsky6", "Kandinsky 6 audio-video (ComfyUI 0.38+)", _UNVERIFIED),
    ("comfy.ldm.prism.model", "Prism"): OutputOnly("prism", "Prism audio-video (ComfyUI 0.38+)", _NO_HOOK),
    ("comfy.ldm.sensenova.model", "SenseNovaU15"): OutputOnly(
        "sensenova_u15", "SenseNova-U1.5 (ComfyUI 0.38+)", _NO_HOOK),
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


def _lookup(diffusion_model: torch.nn.Module) -> FamilySpec | OutputOnly | None:
    """The nearest class in the MRO that either table lists."""
    for cls in type(diffusion_model).__mro__:
        key = (cls.__module__, cls.__name__)
        entry = FAMILIES.get(key) or OUTPUT_ONLY.get(key)
        if entry is not None:
            return entry
    return None


def family_of(diffusion_model: torch.nn.Module) -> FamilySpec | None:
    """The block adapter of ``diffusion_model``, None when it has none (output level only)."""
    entry = _lookup(diffusion_model)
    return entry if isinstance(entry, FamilySpec) else None


def no_adapter_reason(diffusion_model: torch.nn.Module) -> str:
    """Why ``diffusion_model`` has no block adapter, for the log (one sentence, no trailing period)."""
    entry = _lookup(diffusion_model)
    name = type(diffusion_model).__name__
    if isinstance(entry, OutputOnly):
        return f"{name} ({entry.name}: {entry.models}) runs at level=output only: {entry.reason}"
    return f"{name} has no block adapter in this pack (unknown model family)"


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


def support_matrix_rows() -> list[tuple[str, str, str, str, str]]:
    """``(family, models, ComfyUI classes, levels, CG-Taylor Gate)`` per family of both tables and one row for any
    other model, as the README's support matrix shows them (a test keeps them equal)."""
    rows = []
    for tables, levels, gate in ((FAMILIES, "residual, output", "yes"),
                                 (OUTPUT_ONLY, "output", "no (every step computed, logged)")):
        for name, entry in {entry.name: entry for entry in tables.values()}.items():
            classes = ", ".join(f"`{module.removeprefix('comfy.ldm.')}.{cls}`" for (module, cls), e in tables.items()
                                if e.name == name)
            rows.append((name, entry.models, classes, levels + (", modules" if name in MODULE_FAMILIES else ""), gate))
    rows.append(("other", "any other model", "any", "output", "no (every step computed, logged)"))
    return rows


def gate_defaults_markdown() -> str:
    """The README's table of auto gate thresholds, generated from ``FAMILIES`` (a test keeps them equal)."""
    rows = ["| family | auto threshold | source |", "|---|---|---|"]
    rows += [f"| {f.name} | {f.gate_threshold:g} | {f.gate_threshold_source} |" for f in FAMILIES.values()]
    return "\n".join(rows)
