"""Stand-in model files under the official names the shipped workflows load, for a test server's models folder.

Files with a builder below hold a tiny model of the right architecture that ComfyUI's own loaders accept:
tiny Wan 2.1 (stock detection; Wan 2.2 14B t2v is the same architecture), tiny SD3 in a checkpoint with a
TAESD-format VAE, tiny Flux (its detection needs the test override in the file's metadata, read by the test
node ``TaylorTestConfigUNETLoader``), a Wan 2.1 VAE of width 8 (stock detection), and a 16-channel TAESD under
the Flux VAE's name (ComfyUI's ``VAE`` recognises TAESD weights; the stock Flux VAE has a fixed 84 M-parameter
size). Every other name gets an empty file: enough for the server's validation, which checks names only.
Requires the in-process ComfyUI (the ``host`` fixture) to build the models.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import comfy_harness as h
import torch
from taylor_workflow_stand_ins import CONFIG_KEY

StateDict = dict[str, torch.Tensor]


def taesd16(seed: int = 0) -> StateDict:
    """A 16-latent-channel TAESD (ComfyUI's ``comfy.taesd.taesd.TAESD``), random weights."""
    import comfy.taesd.taesd

    model = comfy.taesd.taesd.TAESD(latent_channels=16)
    h.seeded_init(model, seed)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def tiny_wan_vae(seed: int = 0) -> StateDict:
    """A Wan 2.1 VAE of width 8 (ComfyUI reads the width from ``decoder.head.0.gamma``), random weights."""
    import comfy.ldm.wan.vae

    model = comfy.ldm.wan.vae.WanVAE(dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                     temperal_downsample=[False, True, True], dropout=0.0)
    h.seeded_init(model, seed)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def sd3_checkpoint(seed: int = 0) -> StateDict:
    """A checkpoint as CheckpointLoaderSimple reads it: tiny SD3 and a TAESD VAE, no text encoders."""
    return {**{f"model.diffusion_model.{k}": v for k, v in h.tiny_sd3_state_dict(seed).items()},
            **{f"first_stage_model.{k}": v for k, v in taesd16(seed).items()}}


BUILDERS: dict[tuple[str, str], Callable[[], tuple[StateDict, dict[str, str]]]] = {
    ("diffusion_models", "flux1-dev.safetensors"):
        lambda: (h.tiny_flux_state_dict(0), {CONFIG_KEY: json.dumps(h.FLUX_OVERRIDE)}),
    ("diffusion_models", "wan2.1_t2v_1.3B_fp16.safetensors"): lambda: (h.tiny_wan_state_dict(0), {}),
    ("diffusion_models", "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"): lambda: (h.tiny_wan_state_dict(1), {}),
    ("diffusion_models", "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"): lambda: (h.tiny_wan_state_dict(2), {}),
    ("checkpoints", "sd3.5_large_fp8_scaled.safetensors"): lambda: (sd3_checkpoint(0), {}),
    ("vae", "ae.safetensors"): lambda: (taesd16(0), {}),
    ("vae", "wan_2.1_vae.safetensors"): lambda: (tiny_wan_vae(0), {}),
}


def write_stand_ins(models: Path, files: set[tuple[str, str]]) -> list[str]:
    """Write ``(folder, name)`` files under ``models``; returns the names that hold a tiny real model."""
    from safetensors.torch import save_file

    real = []
    for folder, name in sorted(files):
        path = models / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if (folder, name) in BUILDERS:
            state_dict, metadata = BUILDERS[(folder, name)]()
            save_file(state_dict, str(path), metadata=metadata or None)
            real.append(name)
        else:
            path.write_bytes(b"")
    return real
