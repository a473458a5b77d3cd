"""Stand-in model files under the official names the shipped workflows load, for a test server's models folder.

Diffusion models: the tiny models of ``comfy_harness.TINY_MODELS`` (ComfyUI's own classes, random weights) under
the official names: Wan 2.1 (also for both Wan 2.2 14B t2v experts: the same architecture), HunyuanVideo and SD3
(in a checkpoint) load by ComfyUI's stock detection; Flux, Chroma and Qwen-Image need the test override of what
their shapes cannot carry (head count, rope axes), stored in the file's metadata and applied by the test node
``TaylorTestConfigUNETLoader``. VAEs: the official ones have fixed full sizes in ComfyUI's code (84 M parameters
and more), so the stand-ins are small VAEs ComfyUI's ``VAELoader`` detection also loads, with the same latent
layout: a 16-channel TAESD for the image latents (Flux, Chroma, SD3) and a Wan 2.1 VAE of width 8 for the video
and Wan-VAE latents (Wan, HunyuanVideo: 16 channels, 4x time, 8x space; Qwen-Image's VAE is a Wan 2.1 VAE).
Every other name gets an empty file: enough for the server's validation, which checks names only.
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
    return {**{f"model.diffusion_model.{k}": v for k, v in h.TINY_MODELS["sd3"].state_dict(seed).items()},
            **{f"first_stage_model.{k}": v for k, v in taesd16(seed).items()}}


def tiny(name: str, seed: int = 0) -> tuple[StateDict, dict[str, str]]:
    """``comfy_harness.TINY_MODELS[name]``'s weights, with its detection override (if any) in the metadata."""
    model = h.TINY_MODELS[name]
    return model.state_dict(seed), ({CONFIG_KEY: json.dumps(model.override)} if model.override else {})


# (models folder, official file name) -> (weights, metadata), for the names a tiny model stands in for.
BUILDERS: dict[tuple[str, str], Callable[[], tuple[StateDict, dict[str, str]]]] = {
    ("diffusion_models", "flux1-dev.safetensors"): lambda: tiny("flux"),
    ("diffusion_models", "Chroma1-HD-fp8_scaled_rev2.safetensors"): lambda: tiny("chroma"),
    ("diffusion_models", "qwen_image_fp8_e4m3fn.safetensors"): lambda: tiny("qwen_image"),
    ("diffusion_models", "hunyuan_video_t2v_720p_bf16.safetensors"): lambda: tiny("hunyuan_video"),
    ("diffusion_models", "wan2.1_t2v_1.3B_fp16.safetensors"): lambda: tiny("wan", 0),
    ("diffusion_models", "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"): lambda: tiny("wan", 1),
    ("diffusion_models", "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"): lambda: tiny("wan", 2),
    ("checkpoints", "sd3.5_large_fp8_scaled.safetensors"): lambda: (sd3_checkpoint(0), {}),
    ("vae", "ae.safetensors"): lambda: (taesd16(0), {}),
    ("vae", "wan_2.1_vae.safetensors"): lambda: (tiny_wan_vae(0), {}),
    ("vae", "qwen_image_vae.safetensors"): lambda: (tiny_wan_vae(1), {}),
    ("vae", "hunyuan_video_vae_bf16.safetensors"): lambda: (tiny_wan_vae(2), {}),
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
