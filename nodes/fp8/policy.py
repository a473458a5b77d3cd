"""Which Linear layers of a diffusion model the FP8 Loader quantizes and which stay in high precision.

Works on the model's module tree (an instance on the ``meta`` device is enough: only names and types are
read), so a layer is a real ``torch.nn.Linear`` (ComfyUI's ops subclass it), never guessed from a tensor's
shape. Layer names are relative to the diffusion model, as in ComfyUI's ``_quantization_metadata``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

POLICIES = ("standard", "standard+first_last_blocks", "none")
"""``standard``: embedders, modulation/adaLN, norms and the final layer stay high precision;
``+first_last_blocks``: also the first and last block of every block list; ``none``: every Linear is fp8."""

# One path component (between dots) of a sensitive layer's name, e.g. img_in, time_embedding, img_mod,
# adaLN_modulation, norm_out, final_layer, head (Wan), proj_out (Qwen-Image).
_SENSITIVE_COMPONENT = re.compile(
    r".*_in|.*emb.*|time_projection|.*guidance.*"  # embedders (Flux, Wan, SD3, Chroma's guidance approximator)
    r"|(.*_)?mod|.*modulation.*|adaln.*"  # modulation / adaLN
    r"|.*norm.*"  # norms (and adaLN layers living in a norm module)
    r"|final.*|head|proj_out",  # final layer
    re.IGNORECASE)


@dataclass(frozen=True)
class LayerPlan:
    """``quantize``: layer name -> weight shape ``(out, in)``; ``keep``: Linear layers left in high precision."""

    quantize: dict[str, tuple[int, ...]]
    keep: tuple[str, ...]


def linear_layers(diffusion_model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Every ``torch.nn.Linear`` with a weight: name -> weight shape."""
    return {name: tuple(module.weight.shape) for name, module in diffusion_model.named_modules()
            if isinstance(module, torch.nn.Linear) and getattr(module, "weight", None) is not None}


def block_lists(diffusion_model: torch.nn.Module) -> dict[str, int]:
    """The outermost ``ModuleList``s that hold Linear layers (Flux: double_blocks, single_blocks; Wan: blocks):
    name -> number of blocks."""
    found: dict[str, int] = {}
    for name, module in diffusion_model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or any(name.startswith(f"{outer}.") for outer in found):
            continue
        if any(isinstance(m, torch.nn.Linear) for m in module.modules()):
            found[name] = len(module)
    return found


def is_sensitive(layer: str) -> bool:
    """Whether a layer is an embedder, modulation/adaLN, norm or final layer (by its name's components)."""
    return any(_SENSITIVE_COMPONENT.fullmatch(part) for part in layer.split("."))


def plan_layers(diffusion_model: torch.nn.Module, policy: str) -> LayerPlan:
    """Split the model's Linear layers by ``policy`` (one of ``POLICIES``)."""
    if policy not in POLICIES:
        raise ValueError(f"keep_high_precision must be one of {', '.join(POLICIES)}, got {policy!r}")
    layers = linear_layers(diffusion_model)
    edge_blocks: tuple[str, ...] = ()
    if policy == "standard+first_last_blocks":
        edge_blocks = tuple(f"{name}.{index}." for name, count in block_lists(diffusion_model).items()
                            for index in {0, count - 1} if count > 0)
    keep = [layer for layer in layers
            if policy != "none" and (is_sensitive(layer) or layer.startswith(edge_blocks))]
    kept = set(keep)
    return LayerPlan({name: shape for name, shape in layers.items() if name not in kept}, tuple(keep))
