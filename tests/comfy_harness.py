"""A real ComfyUI, in process, for the integration tests: bootstrap, tiny models, sampling helpers.

Nothing of ComfyUI is mocked. The host comes from ``COMFYUI_PATH`` or ``.host/ComfyUI`` (built by
``scripts/comfy_host.py ensure``, which the test command runs first). The pack is loaded the way ComfyUI
loads it: ``nodes.init_extra_nodes`` imports ``custom_nodes/taylor_forecast`` (a link to this repo).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "demo"))
import comfy_env  # noqa: E402  (demo/comfy_env.py: the one bootstrap of an in-process ComfyUI)
import model_builder  # noqa: E402  (demo/model_builder.py: ComfyUI classes built on every supported version)

PACK_LINK = "taylor_forecast"


def boot() -> None:
    """Import ComfyUI in CPU mode with its built-in and custom nodes, once per process."""
    comfy_env.boot()


def node(name: str):
    """An instance of a registered V1 node class (e.g. ComfyUI's KSampler), exactly as the server would create
    it. The pack's V3 nodes run through ``run_node`` and validate through ``validate_node``."""
    import nodes

    return nodes.NODE_CLASS_MAPPINGS[name]()


run_node = comfy_env.run_node
validate_node = comfy_env.validate_node


def schema_inputs(name: str) -> dict:
    """The V3 node ``name``'s schema inputs by id (``options``, ``min``, ``default``... as the schema has them)."""
    import nodes

    return {spec.id: spec for spec in nodes.NODE_CLASS_MAPPINGS[name].define_schema().inputs}


def pack_module(name: str):
    """A submodule of the pack as ComfyUI imported it (under the folder's path as module name), e.g.
    ``pack_module("nodes.run_state")``."""
    (root,) = [key for key in sys.modules if key.endswith(f"custom_nodes{os.sep}{PACK_LINK}")]
    return sys.modules[f"{root}.{name}"]


def seeded_init(module: torch.nn.Module, seed: int) -> None:
    """Deterministic weights: N(0, 1/fan_in) matrices, small random vectors and buffers, unit norm scales."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(module.named_parameters()):
            if param.ndim >= 2:
                fan_in = param[0].numel()
                param.copy_(torch.randn(param.shape, generator=generator) / fan_in ** 0.5)
            elif name.endswith("scale"):
                param.fill_(1.0)
            else:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
        for _name, buffer in sorted(module.named_buffers()):  # e.g. MMDiT's pos_embed, created empty
            if buffer.is_floating_point():
                buffer.copy_(torch.randn(buffer.shape, generator=generator) * 0.02)


TINY_FLUX = {"hidden_size": 128, "num_heads": 2, "axes_dim": [16, 24, 24], "depth": 3, "depth_single_blocks": 3,
             "context_in_dim": 32, "vec_in_dim": 32}


def tiny_flux_state_dict(seed: int = 0, **overrides) -> dict[str, torch.Tensor]:
    """A random-weight Flux.1-dev-architecture state dict (guidance embedding included), tiny sizes."""
    import comfy.ldm.flux.model
    import comfy.ops

    params = {"in_channels": 16, "out_channels": 16, "mlp_ratio": 4.0, "theta": 10000, "patch_size": 2,
              "qkv_bias": True, "guidance_embed": True, **TINY_FLUX, **overrides}
    model = model_builder.build(comfy.ldm.flux.model.Flux, params, operations=comfy.ops.disable_weight_init)
    seeded_init(model, seed)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def model_config_with_override(sd: dict[str, torch.Tensor], override: dict):
    """ComfyUI's own detection on ``sd`` (real or ``meta`` tensors), then the test-only override of what
    detection cannot read from shapes (Flux's head count and rope axes): a ComfyUI model config."""
    import comfy.model_detection

    unet_config = comfy.model_detection.detect_unet_config(sd, "")
    unet_config.update(override)
    return comfy.model_detection.model_config_from_unet_config(unet_config, sd)


def load_with_config_override(sd: dict[str, torch.Tensor], override: dict, metadata: dict[str, str] | None = None):
    """``model_config_with_override``, then ComfyUI's model class, weights and ModelPatcher, in float32.
    With ``metadata`` holding ``_quantization_metadata`` the model gets ComfyUI's mixed-precision layers, as
    ``comfy.sd.load_diffusion_model_state_dict`` would give them (float32 compute on CPU)."""
    import comfy.model_management
    import comfy.model_patcher

    sd = dict(sd)  # ComfyUI pops the keys it loads
    sd, quant_config = pack_module("nodes.fp8.support").mixed_precision_state(sd, metadata or {})
    model_config = model_config_with_override(sd, override)
    if quant_config:  # the attribute this ComfyUI's model configs have: quant_config (0.33), layer_quant_config
        setattr(model_config, "quant_config" if hasattr(model_config, "quant_config") else "layer_quant_config",
                quant_config)
    model_config.set_inference_dtype(torch.float32, torch.float32 if quant_config else None)
    model = model_config.get_model(sd, "")
    model.load_model_weights(sd, "")
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


FLUX_OVERRIDE = {k: TINY_FLUX[k] for k in ("num_heads", "axes_dim")}


def fp8_quantize(path: str, policy: str = "standard", override: dict | None = None):
    """The FP8 Loader's own planning and streaming quantization of the safetensors file ``path`` (default
    settings, ``policy``), with the model config from ComfyUI's stock detection or, for tiny Flux, detection plus
    the test-only ``override``. Returns the node's ``(QuantizedCheckpoint, LayerPlan)``."""
    checkpoints, loader, support = (pack_module(f"nodes.fp8.{m}") for m in ("checkpoint", "loader", "support"))
    header = checkpoints.read_header(str(path))
    keys = header.diffusion_keys("")
    meta = header.meta_state_dict(keys)
    config = (support.detect_model_config(meta, header.metadata) if override is None
              else model_config_with_override(meta, override))
    diffusion_model = support.meta_diffusion_model(config, meta)
    return loader.quantize_for_model(header, keys, diffusion_model, loader.FP8Settings(policy=policy))


def tiny_flux(seed: int = 0, **overrides):
    sd = tiny_flux_state_dict(seed, **overrides)
    keep = {k: v for k, v in {**TINY_FLUX, **overrides}.items() if k in ("num_heads", "axes_dim")}
    return load_with_config_override(sd, keep)


def flux_cond(seed: int, tokens: int = 6, guidance: float = 3.5) -> list:
    generator = torch.Generator().manual_seed(seed)
    cross = torch.randn(1, tokens, TINY_FLUX["context_in_dim"], generator=generator)
    pooled = torch.randn(1, TINY_FLUX["vec_in_dim"], generator=generator)
    return [[cross, {"pooled_output": pooled, "guidance": guidance}]]


def empty_latent(batch: int = 1, size: int = 16, channels: int = 16) -> dict:
    return {"samples": torch.zeros(batch, channels, size, size)}


def ksample(model, positive, negative, latent, steps: int = 20, cfg: float = 1.0, sampler: str = "euler",
            scheduler: str = "simple", seed: int = 0) -> torch.Tensor:
    """ComfyUI's KSampler node, as a graph would call it."""
    (out,) = node("KSampler").sample(model, seed, steps, cfg, sampler, scheduler, positive, negative, latent)
    return out["samples"]


@contextmanager
def count_calls(modules: dict[str, list[torch.nn.Module]]):
    """Real forward calls (torch forward hooks) of every module of each named list: ``counts[name][index]``."""
    counts = {name: [0] * len(group) for name, group in modules.items()}
    handles = []
    for name, group in modules.items():
        for index, module in enumerate(group):
            def hook(_module, _inputs, _output, name=name, index=index):
                counts[name][index] += 1
            handles.append(module.register_forward_hook(hook))
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()


def count_block_calls(diffusion_model: torch.nn.Module, attributes: tuple[str, ...], submodule: str = ""):
    """Count real forward calls of every block of the named ModuleLists, or of the block's ``submodule`` (e.g.
    its attention) where the block's own ``forward`` is object-patched and a hook on the block would count the
    patched calls too."""
    return count_calls({a: [block.get_submodule(submodule) for block in getattr(diffusion_model, a)]
                        for a in attributes})


TINY_SD3 = {"depth": 2, "context_in_dim": 32, "adm_in_channels": 64}


def tiny_sd3(seed: int = 0):
    """A random-weight SD3 (MMDiT) of hidden 64 x depth: ComfyUI's stock detection loads it, no override.
    SD3 has no residual adapter here: it exercises the output-level fall-back."""
    return load_with_config_override(tiny_sd3_state_dict(seed), {})


def tiny_sd3_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """The weights of ``tiny_sd3`` (ComfyUI's key format, no prefix)."""
    import comfy.ldm.modules.diffusionmodules.mmdit as mmdit
    import comfy.ops

    hidden = 64 * TINY_SD3["depth"]
    model = model_builder.build(mmdit.OpenAISignatureMMDITWrapper, dict(
        input_size=None, in_channels=16, out_channels=16, patch_size=2, depth=TINY_SD3["depth"],
        adm_in_channels=TINY_SD3["adm_in_channels"], num_patches=256, pos_embed_max_size=16,
        context_embedder_config={"target": "torch.nn.Linear",
                                 "params": {"in_features": TINY_SD3["context_in_dim"], "out_features": hidden}}),
        operations=comfy.ops.disable_weight_init)
    seeded_init(model, seed)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


TINY_WAN = {"dim": 128, "ffn_dim": 256, "num_layers": 3, "text_dim": 4096, "in_dim": 16, "out_dim": 16}


def tiny_wan_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random-weight Wan 2.1 (text to video) of dim 128 = one head of 128, which is what ComfyUI's stock
    detection assumes (``num_heads = dim // 128``): it loads with no override."""
    import comfy.ldm.wan.model
    import comfy.ops

    model = model_builder.build(comfy.ldm.wan.model.WanModel, {"model_type": "t2v", "num_heads": 1, **TINY_WAN},
                                operations=comfy.ops.disable_weight_init)
    seeded_init(model, seed)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def tiny_wan(seed: int = 0):
    return load_with_config_override(tiny_wan_state_dict(seed), {})


def wan_cond(seed: int, tokens: int = 6) -> list:
    generator = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, TINY_WAN["text_dim"], generator=generator), {}]]


def wan_latent(batch: int = 1, size: int = 16) -> dict:
    return {"samples": torch.zeros(batch, 16, 1, size, size)}


def sd3_cond(seed: int, tokens: int = 6) -> list:
    generator = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, TINY_SD3["context_in_dim"], generator=generator),
             {"pooled_output": torch.randn(1, TINY_SD3["adm_in_channels"], generator=generator)}]]


# ---- One tiny model per DiT family ComfyUI runs (tests/integration/test_families.py) ---------------------------

def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class TinyModel:
    """A random-weight model of one family, built by code with ComfyUI's own class and loaded by ComfyUI's
    detection (``override``: the test-only config keys detection cannot read from shapes; empty = stock).

    ``context``: (tokens, width) of the text conditioning; ``extra(seed)``: the other conditioning entries;
    ``latent``: the empty latent's shape (batch 1); ``stacks``: the block ModuleLists, in call order."""

    name: str
    family: str  # the adapter family (nodes/adapters/families.py) ComfyUI's class must resolve to
    cls: str
    params: dict
    override: dict
    context: tuple[int, int]
    latent: tuple[int, ...]
    stacks: tuple[str, ...]
    extra: Callable[[int], dict] = lambda seed: {}
    counted: str = ""  # the submodule of a block that block-call counts hook ("": the block itself)

    def build(self) -> torch.nn.Module:
        """ComfyUI's class with these params, weights uninitialised (``comfy.ops.disable_weight_init``)."""
        import comfy.ops

        return model_builder.build(model_builder.class_at(self.cls), self.params,
                                   operations=comfy.ops.disable_weight_init)

    def state_dict(self, seed: int = 0) -> dict[str, torch.Tensor]:
        model = self.build()
        seeded_init(model, seed)
        return {k: v.contiguous() for k, v in model.state_dict().items()}

    def load(self, seed: int = 0):
        return load_with_config_override(self.state_dict(seed), self.override)

    def cond(self, seed: int, tokens: int | None = None) -> list:
        return [[_randn(seed, 1, tokens or self.context[0], self.context[1]), self.extra(seed)]]

    def empty_latent(self) -> dict:
        return {"samples": torch.zeros(self.latent)}


def _pooled(width: int) -> Callable[[int], dict]:
    return lambda seed: {"pooled_output": _randn(seed + 1000, 1, width)}


def _mask(tokens: int) -> Callable[[int], dict]:
    return lambda seed: {"attention_mask": torch.ones(1, tokens, dtype=torch.long)}


_HV = {"in_channels": 16, "out_channels": 16, "vec_in_dim": 768, "context_in_dim": 32, "hidden_size": 128,
       "mlp_ratio": 4.0, "num_heads": 1, "depth": 2, "depth_single_blocks": 2, "axes_dim": [16, 56, 56], "theta": 256,
       "patch_size": [1, 2, 2], "qkv_bias": True, "guidance_embed": True, "byt5": False, "meanflow": False,
       "use_cond_type_embedding": False, "vision_in_dim": None}
_MOCHI = {"depth": 2, "num_heads": 1, "hidden_size_x": 64, "hidden_size_y": 64, "mlp_ratio_x": 192.0, "t5_feat_dim": 32}

TINY_MODELS: dict[str, TinyModel] = {m.name: m for m in (
    TinyModel("flux", "flux", "comfy.ldm.flux.model.Flux",
              {"in_channels": 16, "out_channels": 16, "mlp_ratio": 4.0, "theta": 10000, "patch_size": 2,
               "qkv_bias": True, "guidance_embed": True, **{**TINY_FLUX, "depth": 2, "depth_single_blocks": 2}},
              FLUX_OVERRIDE, (6, 32), (1, 16, 16, 16), ("double_blocks", "single_blocks"), _pooled(32)),
    TinyModel("flux2", "flux", "comfy.ldm.flux.model.Flux",
              {"in_channels": 128, "out_channels": 128, "vec_in_dim": None, "context_in_dim": 32, "hidden_size": 128,
               "mlp_ratio": 3.0, "num_heads": 2, "depth": 2, "depth_single_blocks": 2, "axes_dim": [16, 16, 16, 16],
               "theta": 2000, "patch_size": 1, "qkv_bias": False, "guidance_embed": True, "global_modulation": True,
               "mlp_silu_act": True, "ops_bias": False},
              {"num_heads": 2, "axes_dim": [16, 16, 16, 16]}, (6, 32), (1, 128, 8, 8),
              ("double_blocks", "single_blocks"), _pooled(8)),
    TinyModel("chroma", "chroma", "comfy.ldm.chroma.model.Chroma",
              {"in_channels": 64, "out_channels": 64, "context_in_dim": 32, "hidden_size": 128, "mlp_ratio": 4.0,
               "num_heads": 2, "depth": 2, "depth_single_blocks": 2, "axes_dim": [16, 24, 24], "theta": 10000,
               "patch_size": 2, "qkv_bias": True, "in_dim": 64, "out_dim": 128, "hidden_dim": 64, "n_layers": 1},
              {"num_heads": 2, "axes_dim": [16, 24, 24], "out_dim": 128, "hidden_dim": 64, "n_layers": 1}, (6, 32),
              (1, 16, 16, 16), ("double_blocks", "single_blocks"), _pooled(8)),
    TinyModel("wan", "wan", "comfy.ldm.wan.model.WanModel", {"model_type": "t2v", "num_heads": 1, **TINY_WAN}, {},
              (6, 4096), (1, 16, 1, 16, 16), ("blocks",)),
    TinyModel("wan22_5b", "wan", "comfy.ldm.wan.model.WanModel",
              {"model_type": "t2v", "num_heads": 1, **TINY_WAN, "num_layers": 2, "in_dim": 48, "out_dim": 48}, {},
              (6, 4096), (1, 48, 1, 16, 16), ("blocks",)),
    TinyModel("hunyuan_video", "hunyuan_video", "comfy.ldm.hunyuan_video.model.HunyuanVideo", _HV, {}, (6, 32),
              (1, 16, 2, 16, 16), ("double_blocks", "single_blocks"), _pooled(768)),
    TinyModel("hunyuan_video15", "hunyuan_video", "comfy.ldm.hunyuan_video.model.HunyuanVideo",
              {**_HV, "vec_in_dim": None, "use_cond_type_embedding": True, "vision_in_dim": 1152,
               "guidance_embed": False, "in_channels": 65, "out_channels": 32, "depth_single_blocks": 0},
              {}, (6, 32), (1, 32, 1, 16, 16), ("double_blocks",), _pooled(8)),
    TinyModel("qwen_image", "qwen_image", "comfy.ldm.qwen_image.model.QwenImageTransformer2DModel",
              {"patch_size": 2, "in_channels": 64, "out_channels": 16, "num_layers": 2, "attention_head_dim": 64,
               "num_attention_heads": 2, "joint_attention_dim": 32, "axes_dims_rope": (16, 24, 24)},
              {"attention_head_dim": 64, "num_attention_heads": 2, "joint_attention_dim": 32,
               "axes_dims_rope": (16, 24, 24)}, (6, 32), (1, 16, 16, 16), ("transformer_blocks",)),
    TinyModel("sd3", "sd3", "comfy.ldm.modules.diffusionmodules.mmdit.OpenAISignatureMMDITWrapper",
              {"input_size": None, "in_channels": 16, "out_channels": 16, "patch_size": 2, "depth": 2,
               "adm_in_channels": 64, "num_patches": 256, "pos_embed_max_size": 16,
               "context_embedder_config": {"target": "torch.nn.Linear", "params": {"in_features": 32,
                                                                                   "out_features": 128}}},
              {}, (6, 32), (1, 16, 16, 16), ("joint_blocks",), _pooled(64)),
    TinyModel("ltxv", "ltxv", "comfy.ldm.lightricks.model.LTXVModel",
              {"in_channels": 128, "cross_attention_dim": 128, "attention_head_dim": 4, "num_attention_heads": 32,
               "caption_channels": 4096, "num_layers": 2}, {}, (6, 4096), (1, 128, 2, 4, 4),
              ("transformer_blocks",), _mask(6)),
    TinyModel("mochi", "mochi", "comfy.ldm.genmo.joint_model.asymm_models_joint.AsymmDiTJoint",
              {**_MOCHI, "patch_size": 2, "learn_sigma": False, "in_channels": 12, "qk_norm": True, "qkv_bias": False,
               "out_bias": True, "attn_drop": 0.0, "patch_embed_bias": True, "posenc_preserve_area": True,
               "timestep_mlp_bias": True, "attend_to_padding": False, "timestep_scale": 1000.0, "use_t5": True,
               "t5_token_length": 256, "rope_theta": 10000.0, "mlp_ratio_y": 4.0},
              _MOCHI, (6, 32), (1, 12, 1, 16, 16), ("blocks",), _mask(6)),
    TinyModel("auraflow", "auraflow", "comfy.ldm.aura.mmdit.MMDiT",
              {"in_channels": 4, "out_channels": 4, "patch_size": 2, "dim": 128, "n_layers": 4, "n_double_layers": 2,
               "n_heads": 2, "global_conddim": 128, "cond_seq_dim": 2048, "max_seq": 64},
              {"dim": 128, "n_heads": 2, "global_conddim": 128}, (6, 2048), (1, 4, 16, 16),
              ("double_layers", "single_layers")),
    TinyModel("hunyuan_dit", "hunyuan_dit", "comfy.ldm.hydit.models.HunYuanDiT",
              {"input_size": (32, 32), "patch_size": 2, "in_channels": 4, "hidden_size": 128, "depth": 4,
               "num_heads": 2, "text_states_dim": 32, "text_states_dim_t5": 32, "text_len": 6, "text_len_t5": 6},
              {"num_heads": 2, "text_states_dim": 32, "text_states_dim_t5": 32, "text_len": 6, "text_len_t5": 6},
              (6, 32), (1, 4, 16, 16), ("blocks",),
              lambda seed: {"attention_mask": torch.ones(1, 6), "conditioning_mt5xl": _randn(seed + 7, 1, 6, 32),
                            "attention_mask_mt5xl": torch.ones(1, 6)}),
    TinyModel("pixart", "pixart", "comfy.ldm.pixart.pixartms.PixArtMS",
              {"input_size": 16, "patch_size": 2, "in_channels": 4, "hidden_size": 64, "depth": 3, "num_heads": 2,
               "caption_channels": 32, "model_max_length": 6, "micro_condition": False, "pe_interpolation": 0.25},
              {"hidden_size": 64, "num_heads": 2, "caption_channels": 32, "pe_interpolation": 0.25}, (6, 32),
              (1, 4, 48, 48), ("blocks",), counted="attn"),  # its position grid needs (h + w) / 2 >= 48
    TinyModel("cosmos_predict2", "cosmos_predict2", "comfy.ldm.cosmos.predict2.MiniTrainDIT",
              {"max_img_h": 240, "max_img_w": 240, "max_frames": 128, "in_channels": 16, "out_channels": 16,
               "patch_spatial": 2, "patch_temporal": 1, "model_channels": 64, "num_blocks": 2, "num_heads": 1,
               "crossattn_emb_channels": 1024, "pos_emb_cls": "rope3d", "pos_emb_learnable": True,
               "use_adaln_lora": True, "adaln_lora_dim": 16, "rope_enable_fps_modulation": False},
              {"num_blocks": 2, "num_heads": 1, "adaln_lora_dim": 16}, (6, 1024), (1, 16, 1, 16, 16), ("blocks",)),
    TinyModel("lumina2", "lumina2", "comfy.ldm.lumina.model.NextDiT",
              {"patch_size": 2, "in_channels": 16, "dim": 64, "n_layers": 2, "n_refiner_layers": 1, "n_heads": 2,
               "n_kv_heads": 2, "qk_norm": True, "cap_feat_dim": 32, "axes_dims": [8, 12, 12],
               "axes_lens": [300, 512, 512]},
              {"n_heads": 2, "n_kv_heads": 2, "axes_dims": [8, 12, 12], "axes_lens": [300, 512, 512],
               "n_refiner_layers": 1}, (6, 32), (1, 16, 16, 16), ("layers",), counted="attention"),
)}
