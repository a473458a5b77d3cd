"""Per-block adapters of the module level (the original TaylorSeer's fine-grained cache).

A block is matched by its exact class (module and class name, never a subclass: a subclass may run its
branches differently, e.g. Wan's audio blocks). An adapter names the block's expensive branches: the
submodule whose output is the **un-gated** branch output (recorded on full steps through a forward hook
that lives for one block call) and the stream whose shape it has. Its ``apply`` is the block's cheap path
on a forecast step: modulation from the current ``vec``/``e``, gates and residual adds, with the branch
outputs replaced by their forecasts, as the official code does (``img += gate * F_hat``). The expensive
parts (qkv, attention, projections, MLPs, cross-attention) are not run.

ComfyUI helpers (``apply_mod``, ``repeat_e``) are imported inside the functions, so a ComfyUI update that
moves them breaks a forecast step, never the import: any such failure of a cheap path (``ImportError``,
``AttributeError``, a ``TypeError`` from a changed signature) is logged, that step computed in full and the rest
of the run run at the residual level (``residual.guarded_block``, ``wrappers._residual_call``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Forecasts = dict[str, torch.Tensor]


class CheapPathUnsupported(RuntimeError):
    """The block was called in a way the cheap path cannot reproduce; the caller computes the step in full."""


@dataclass(frozen=True)
class Branch:
    """One expensive branch of a block: ``module`` (dotted path inside the block) returns the un-gated
    output, a tensor of the shape of the block-replacement stream ``stream`` ([batch, tokens, hidden])."""

    name: str
    module: str
    stream: str


@dataclass(frozen=True)
class ModuleAdapter:
    """The branches of one block class and its cheap path ``apply(block, args, forecasts) -> outputs``,
    where ``args`` is the ``patches_replace["dit"]`` argument dict and the result the dict the replacement
    returns."""

    name: str
    branches: tuple[Branch, ...]
    apply: Callable[[torch.nn.Module, dict, Forecasts], dict]
    expensive: tuple[str, ...]  # submodules a forecast step must not call (documentation and tests)
    modulation: tuple[str, ...]  # submodules a forecast step still calls (empty: a parameter, e.g. Wan)


def _gated(stream: torch.Tensor, branch: torch.Tensor, gate: torch.Tensor, dims) -> torch.Tensor:
    """``stream + gate * branch``, with Flux's ``apply_mod`` (token ranges with their own gate when ``dims``)."""
    from comfy.ldm.flux.layers import apply_mod

    if dims is None and gate.ndim == 3 and gate.shape[1] not in (1, branch.shape[1]):
        raise CheapPathUnsupported(f"the gate has {gate.shape[1]} rows for {branch.shape[1]} tokens and no "
                                   "modulation_dims reached the block replacement")
    return stream + apply_mod(branch, gate, None, dims)


def _no_fp16_overflow(x: torch.Tensor) -> torch.Tensor:
    """The clamp Flux's blocks apply to float16 streams."""
    return torch.nan_to_num(x, nan=0.0, posinf=65504, neginf=-65504) if x.dtype == torch.float16 else x


def _flux_double(block: torch.nn.Module, args: dict, f: Forecasts) -> dict:
    vec = args["vec"]
    if block.modulation:
        (img_mod1, img_mod2), (txt_mod1, txt_mod2) = block.img_mod(vec), block.txt_mod(vec)
    else:  # Chroma, Flux 2: the model computed the modulations
        (img_mod1, img_mod2), (txt_mod1, txt_mod2) = vec
    dims_img, dims_txt = args.get("modulation_dims_img"), args.get("modulation_dims_txt")
    img = _gated(args["img"], f["img_attn"], img_mod1.gate, dims_img)
    img = _gated(img, f["img_mlp"], img_mod2.gate, dims_img)
    txt = _gated(args["txt"], f["txt_attn"], txt_mod1.gate, dims_txt)
    txt = _gated(txt, f["txt_mlp"], txt_mod2.gate, dims_txt)
    return {"img": img, "txt": _no_fp16_overflow(txt)}


def _flux_single(block: torch.nn.Module, args: dict, f: Forecasts) -> dict:
    vec = args["vec"]
    mod = block.modulation(vec)[0] if block.modulation else vec
    return {"img": _no_fp16_overflow(_gated(args["img"], f["total"], mod.gate, args.get("modulation_dims")))}


def _calls_attn2_patch(block: torch.nn.Module) -> bool:
    """Whether this ComfyUI's Wan block applies ``attn2_patch`` after cross-attention (newer versions)."""
    return "attn2_patch" in type(block).forward.__code__.co_consts


def _wan(block: torch.nn.Module, args: dict, f: Forecasts) -> dict:
    import comfy.model_management
    from comfy.ldm.wan.model import repeat_e

    x, e = args["img"], args["vec"]
    modulation = comfy.model_management.cast_to(block.modulation, dtype=x.dtype, device=x.device)
    e = (modulation + e).chunk(6, dim=1) if e.ndim < 4 else (modulation.unsqueeze(0) + e).unbind(2)
    x = torch.addcmul(x, f["sa"], repeat_e(e[2], x))
    x = x + f["ca"]
    options = args.get("transformer_options") or {}
    patches = options.get("patches", {}).get("attn2_patch", ())
    if patches and _calls_attn2_patch(block):
        for patch in patches:
            x = patch({"x": x, "transformer_options": options})
    return {"img": torch.addcmul(x, f["ffn"], repeat_e(e[5], x))}


FLUX_DOUBLE = ModuleAdapter(
    "flux double block",
    (Branch("img_attn", "img_attn.proj", "img"), Branch("img_mlp", "img_mlp", "img"),
     Branch("txt_attn", "txt_attn.proj", "txt"), Branch("txt_mlp", "txt_mlp", "txt")),
    _flux_double,
    expensive=("img_attn.qkv", "img_attn.proj", "img_mlp", "txt_attn.qkv", "txt_attn.proj", "txt_mlp"),
    modulation=("img_mod", "txt_mod"),
)
FLUX_SINGLE = ModuleAdapter(
    "flux single block", (Branch("total", "linear2", "img"),), _flux_single,
    expensive=("linear1", "linear2"), modulation=("modulation",),
)
WAN = ModuleAdapter(
    "wan block",
    (Branch("sa", "self_attn", "img"), Branch("ca", "cross_attn", "img"), Branch("ffn", "ffn", "img")),
    _wan,
    expensive=("self_attn", "cross_attn", "ffn"), modulation=(),
)

# (module, class name) of a block -> its adapter. Flux's blocks also serve Chroma, Chroma Radiance and
# Flux 2 (modulation computed by the model) and HunyuanVideo (token-range modulation_dims).
BLOCK_ADAPTERS: dict[tuple[str, str], ModuleAdapter] = {
    ("comfy.ldm.flux.layers", "DoubleStreamBlock"): FLUX_DOUBLE,
    ("comfy.ldm.flux.layers", "SingleStreamBlock"): FLUX_SINGLE,
    ("comfy.ldm.wan.model", "WanAttentionBlock"): WAN,
}


# The families (``families`` names) whose stock blocks are all of the classes above: the README support
# matrix lists ``modules`` for them (a test checks this against each family's tiny model).
MODULE_FAMILIES = ("flux", "chroma", "wan", "hunyuan_video")


def adapter_for(block: torch.nn.Module) -> ModuleAdapter | None:
    cls = type(block)
    return BLOCK_ADAPTERS.get((cls.__module__, cls.__name__))


def module_adapters_markdown() -> str:
    """The README's table of block classes the module level supports (a test keeps them equal)."""
    rows = ["| block class | cached branches (un-gated outputs) | still run on forecast steps |", "|---|---|---|"]
    for (module, name), adapter in BLOCK_ADAPTERS.items():
        branches = ", ".join(f"`{b.module}`" for b in adapter.branches)
        live = ", ".join(f"`{m}`" for m in adapter.modulation) or "`modulation` (a parameter)"
        rows.append(f"| `{name}` (`{module}`) | {branches} | {live}, gates, residual adds |")
    return "\n".join(rows)
