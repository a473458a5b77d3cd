"""Fixed "VAE" and conditioning of the TaylorSeer demo (pure torch + numpy, no ComfyUI import).

A scikit-learn digit (8x8 pixels, values 0..16) becomes a Wan 2.1 latent ``[B, 16, 1, 16, 16]``
(``[B, C, T, H, W]``, T = 1 frame): the digit is upsampled bilinearly to 16x16, scaled to [-1, 1]
(the *plane*), multiplied by ``SIGNAL_SCALE`` and by a fixed seeded unit vector ``w`` over the 16 channels.
That product is the latent in the *model space* (what the diffusion model sees; RMS about 0.93).
ComfyUI's LATENT dicts hold the *VAE space* instead: ``model = (vae - mean) / std`` with the per-channel
constants of ``comfy.latent_formats.Wan21`` (``process_in``), copied here as ``WAN21_LATENTS_MEAN/STD``.
So :func:`encode` returns VAE-space latents and :func:`decode` accepts them, exactly like a real VAE.

Decoding projects the model-space latent onto ``w`` and upsamples the plane x8 (nearest) to a
ComfyUI IMAGE ``[B*T, 8H, 8W, 3]`` in [0, 1] (128x128 for a 16x16 latent).

:func:`digit_context` gives the cross-attention context ``[1, tokens, 4096]`` of a digit class (a fixed
seeded embedding, unit RMS per token) or, for ``None``, the all-zero null context used for CFG.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

LATENT_CHANNELS = 16
LATENT_SIZE = 16  # latent H = W for one digit
IMAGE_SCALE = 8  # pixels per latent cell (the Wan VAE stride)
IMAGE_SIZE = LATENT_SIZE * IMAGE_SCALE  # 128
DIGIT_SIZE = 8  # sklearn digits are 8x8
DIGIT_MAX = 16.0  # sklearn digit pixel values are 0..16
CONTEXT_DIM = 4096  # Wan 2.1 text_dim (umT5-XXL width); ComfyUI's Wan detection requires it
CONTEXT_TOKENS = 8
SIGNAL_SCALE = 5.0  # model-space latent = SIGNAL_SCALE * w * plane
DIRECTION_SEED = 1234
CONTEXT_SEED = 5678

# comfy.latent_formats.Wan21.latents_mean / latents_std (scale_factor 1.0), per channel.
WAN21_LATENTS_MEAN = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)
WAN21_LATENTS_STD = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
)


def _channel_view(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, LATENT_CHANNELS, 1, 1, 1)


@functools.lru_cache(maxsize=1)
def _direction() -> torch.Tensor:
    gen = torch.Generator().manual_seed(DIRECTION_SEED)
    w = torch.randn(LATENT_CHANNELS, generator=gen, dtype=torch.float64)
    return (w / w.norm()).to(torch.float32)


def latent_direction() -> torch.Tensor:
    """The fixed unit vector ``w`` ``[16]`` (float32) that carries the digit plane in model space."""
    return _direction().clone()


def to_model_space(latent: torch.Tensor) -> torch.Tensor:
    """VAE-space latent ``[B, 16, T, H, W]`` -> model space (as ``comfy.latent_formats.Wan21.process_in``)."""
    return (latent - _channel_view(WAN21_LATENTS_MEAN, latent)) / _channel_view(WAN21_LATENTS_STD, latent)


def from_model_space(latent: torch.Tensor) -> torch.Tensor:
    """Model-space latent ``[B, 16, T, H, W]`` -> VAE space (same as ``Wan21.process_out``)."""
    return latent * _channel_view(WAN21_LATENTS_STD, latent) + _channel_view(WAN21_LATENTS_MEAN, latent)


def digits_to_plane(digits: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Digits ``[B, 8, 8]`` (0..16) -> planes ``[B, 16, 16]`` in [-1, 1] (bilinear x2 upsampling), float32."""
    x = torch.as_tensor(np.asarray(digits), dtype=torch.float32)
    x = x / (DIGIT_MAX / 2.0) - 1.0
    up = F.interpolate(x[:, None], size=(LATENT_SIZE, LATENT_SIZE), mode="bilinear", align_corners=False)
    return up[:, 0].clamp(-1.0, 1.0)


def plane_to_model_latent(plane: torch.Tensor) -> torch.Tensor:
    """Planes ``[B, H, W]`` in [-1, 1] -> model-space latents ``[B, 16, 1, H, W]``."""
    w = _direction().to(plane.device, plane.dtype).view(1, LATENT_CHANNELS, 1, 1, 1)
    return SIGNAL_SCALE * w * plane[:, None, None]


def encode(digits: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Digits ``[B, 8, 8]`` (0..16) -> VAE-space Wan latents ``[B, 16, 1, 16, 16]`` (float32)."""
    return from_model_space(plane_to_model_latent(digits_to_plane(digits)))


def latent_to_plane(latent: torch.Tensor) -> torch.Tensor:
    """VAE-space latents ``[B, 16, T, H, W]`` -> planes ``[B*T, H, W]`` (projection onto ``w``; ~[-1, 1])."""
    model = to_model_space(latent.float())
    w = _direction().to(model.device).view(1, LATENT_CHANNELS, 1, 1, 1)
    plane = (model * w).sum(dim=1) / SIGNAL_SCALE  # [B, T, H, W]
    return plane.reshape(-1, *plane.shape[-2:])


def decode(latent: torch.Tensor) -> torch.Tensor:
    """VAE-space latents ``[B, 16, T, H, W]`` -> ComfyUI IMAGE ``[B*T, 8H, 8W, 3]`` in [0, 1] (float32)."""
    plane = latent_to_plane(latent)
    gray = ((plane + 1.0) / 2.0).clamp(0.0, 1.0)
    gray = gray.repeat_interleave(IMAGE_SCALE, dim=-2).repeat_interleave(IMAGE_SCALE, dim=-1)
    return gray[..., None].expand(-1, -1, -1, 3).contiguous()


def latent_to_digits(latent: torch.Tensor) -> np.ndarray:
    """VAE-space latents ``[B, 16, T, 16, 16]`` -> sklearn-style digits ``[B*T, 8, 8]`` (0..16, float64).

    The plane is average-pooled 2x2 back to 8x8, the approximate inverse of :func:`digits_to_plane`.
    """
    plane = latent_to_plane(latent).clamp(-1.0, 1.0)
    small = F.avg_pool2d(plane[:, None], kernel_size=plane.shape[-1] // DIGIT_SIZE)[:, 0]
    return ((small + 1.0) * (DIGIT_MAX / 2.0)).double().cpu().numpy()


@functools.lru_cache(maxsize=64)
def _context(digit: int | None, tokens: int) -> torch.Tensor:
    if digit is None:
        return torch.zeros(1, tokens, CONTEXT_DIM)
    gen = torch.Generator().manual_seed(CONTEXT_SEED + 1000 * tokens + int(digit))
    ctx = torch.randn(1, tokens, CONTEXT_DIM, generator=gen, dtype=torch.float64)
    ctx = ctx / ctx.pow(2).mean(dim=-1, keepdim=True).sqrt()
    return ctx.to(torch.float32)


def digit_context(digit: int | None, tokens: int = CONTEXT_TOKENS) -> torch.Tensor:
    """Cross-attention context ``[1, tokens, 4096]`` (float32) of digit 0..9; ``None`` = null (zeros)."""
    if digit is not None and not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be 0..9 or None, got {digit!r}")
    return _context(None if digit is None else int(digit), int(tokens)).clone()


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's bundled digits: images ``[1797, 8, 8]`` (0..16, float64) and labels ``[1797]`` (int64)."""
    from sklearn.datasets import load_digits as _load

    data = _load()
    return data.images.astype(np.float64), data.target.astype(np.int64)
