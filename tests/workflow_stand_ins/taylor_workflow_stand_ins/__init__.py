"""Test-only ComfyUI nodes that stand in for loaders the shipped workflows use but a CPU test cannot load.

Loaded only by ``tests/integration/test_workflows.py``'s server (its ``custom_nodes`` path comes from an
``--extra-model-paths-config`` file), never installed with the pack. Each returns a real ComfyUI object:

- ``TaylorTestTinyTextEncoder`` -> CLIP: ComfyUI's own ``comfy.sd.CLIP`` around a tiny text encoder (a byte
  tokenizer and an embedding table) whose outputs have the widths the tiny diffusion models take. The stock
  text encoders (T5-XXL, UMT5-XXL, CLIP-L/G, LLaVA, Qwen) have fixed sizes in ComfyUI's code, gigabytes each.
- ``TaylorTestConfigUNETLoader`` -> MODEL: UNETLoader's inputs; loads a ``diffusion_models`` file with ComfyUI's
  detection plus the test override stored in its metadata (``taylor_test_unet_config``): tiny Flux's head count
  and rope axes are not in its shapes, and stock detection fixes them at full-size values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parents[2]
CONFIG_KEY = "taylor_test_unet_config"
MAX_TOKENS = 77


class TinyTokenizer:
    """Bytes of the text (1..255, at most ``MAX_TOKENS``) under every key the stock text nodes read."""

    KEYS = ("l", "t5xxl")

    def __init__(self, embedding_directory=None, tokenizer_data=None) -> None:
        pass

    def tokenize_with_weights(self, text: str, return_word_ids: bool = False, **kwargs) -> dict:
        ids = [b % 255 + 1 for b in text.encode("utf-8")][:MAX_TOKENS] or [0]
        pairs = [(i, 1.0, 0) if return_word_ids else (i, 1.0) for i in ids]
        return {key: [list(pairs)] for key in self.KEYS}

    def untokenize(self, token_weight_pair: list) -> list:
        return [(p, chr(p[0])) for p in token_weight_pair]

    def state_dict(self) -> dict:
        return {}


class TinyTextModel(torch.nn.Module):
    """cond ``(1, tokens, context_dim)`` from the t5xxl key; pooled ``(1, pooled_dim)`` (None when 0) from l."""

    def __init__(self, context_dim: int, pooled_dim: int, device=None, dtype=None, model_options=None) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.embed = torch.nn.Parameter(torch.randn(256, context_dim, generator=generator))
        self.pool = torch.nn.Parameter(torch.randn(context_dim, max(pooled_dim, 1), generator=generator)
                                       / context_dim ** 0.5)
        self.pooled_dim = pooled_dim
        self.dtypes = {torch.float32}

    def reset_clip_options(self) -> None:
        pass

    def set_clip_options(self, options: dict) -> None:
        pass

    def encode_token_weights(self, tokens: dict) -> tuple:
        cond = self.embed[torch.tensor([t[0] for t in tokens["t5xxl"][0]])][None]
        pooled = None
        if self.pooled_dim:
            pooled = self.embed[torch.tensor([t[0] for t in tokens["l"][0]])].mean(0, keepdim=True) @ self.pool
        return cond, pooled, {}

    def load_sd(self, sd: dict):
        return self.load_state_dict(sd, strict=False)


class TaylorTestTinyTextEncoder:
    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"context_dim": ("INT", {"default": 32, "min": 1, "max": 8192}),
                             "pooled_dim": ("INT", {"default": 0, "min": 0, "max": 8192})}}

    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"
    CATEGORY = "testing"

    def load(self, context_dim: int, pooled_dim: int) -> tuple:
        import comfy.sd
        import comfy.supported_models_base

        target = comfy.supported_models_base.ClipTarget(TinyTokenizer, TinyTextModel)
        target.params = {"context_dim": context_dim, "pooled_dim": pooled_dim}
        return (comfy.sd.CLIP(target=target, model_options={"dtype": torch.float32}),)


class TaylorTestConfigUNETLoader:
    @classmethod
    def INPUT_TYPES(cls) -> dict:
        import folder_paths

        return {"required": {"unet_name": (folder_paths.get_filename_list("diffusion_models"),),
                             "weight_dtype": (["default"],)}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"
    CATEGORY = "testing"

    def load(self, unet_name: str, weight_dtype: str) -> tuple:
        import comfy.utils
        import folder_paths

        if str(TESTS) not in sys.path:
            sys.path.insert(0, str(TESTS))
        from comfy_harness import load_with_config_override

        sd, metadata = comfy.utils.load_torch_file(folder_paths.get_full_path_or_raise("diffusion_models", unet_name),
                                                   return_metadata=True)
        return (load_with_config_override(sd, json.loads((metadata or {}).get(CONFIG_KEY, "{}"))),)


NODE_CLASS_MAPPINGS = {"TaylorTestTinyTextEncoder": TaylorTestTinyTextEncoder,
                       "TaylorTestConfigUNETLoader": TaylorTestConfigUNETLoader}
