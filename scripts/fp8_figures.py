"""FP8 Loader figures on the tiny test models (random weights, saved in bf16), printed as README table rows.

Usage: ``.host/venv/bin/python scripts/fp8_figures.py`` (CPU, about a minute). Per model and policy: weight
memory of the diffusion model before and after (bytes), the max and mean relative error ``||W8 - W|| / ||W||``
over the quantized layers, and the model output's relative error against the bf16 file's model (mean over
sigma 1.0, 0.5, 0.1; float32 compute), for the FP8 Loader and for UNETLoader's unscaled ``fp8_e4m3fn`` cast.
Wan goes through the node itself; tiny Flux through the node's planning and quantization with the tests' config
override (its head count is not in its shapes), so UNETLoader cannot load it (n/a). Then, for the full-size
FLUX.1-dev and Wan 2.1 14B architectures (built on the ``meta`` device: no weights, no memory), the share of the
weights each policy quantizes and the resulting weight memory relative to bf16.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import comfy_harness as host  # noqa: E402

SIGMAS = (1.0, 0.5, 0.1)


def output_error(model, reference, x, conds) -> float:
    errors = []
    with torch.no_grad():
        for sigma in SIGMAS:
            t = torch.tensor([sigma])
            out, ref = model.model.apply_model(x, t, **conds), reference.model.apply_model(x, t, **conds)
            errors.append(float((out - ref).norm() / ref.norm()))
    return sum(errors) / len(errors)


def main() -> None:
    host.boot()
    import folder_paths
    from safetensors.torch import load_file, save_file

    folder = Path(tempfile.mkdtemp(prefix="fp8_figures_"))
    folder_paths.add_model_folder_path("diffusion_models", str(folder))
    bf16 = {"wan": host.tiny_wan_state_dict(0), "flux": host.tiny_flux_state_dict(0)}
    for name, state_dict in bf16.items():
        save_file({k: v.to(torch.bfloat16) for k, v in state_dict.items()}, str(folder / f"{name}.safetensors"))
    wan_x = torch.randn(1, 16, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    wan_conds = {"c_crossattn": torch.randn(1, 6, 4096, generator=torch.Generator().manual_seed(1))}
    flux_x = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    (cross, extra), = host.flux_cond(1)
    flux_conds = {"c_crossattn": cross, "y": extra["pooled_output"], "guidance": torch.tensor([extra["guidance"]])}

    wan_hp = host.node("UNETLoader").load_unet("wan.safetensors", "default")[0]
    wan_stock = output_error(host.node("UNETLoader").load_unet("wan.safetensors", "fp8_e4m3fn")[0], wan_hp, wan_x,
                             wan_conds)
    flux_hp = host.load_with_config_override(load_file(str(folder / "flux.safetensors")), host.FLUX_OVERRIDE)
    print("| model | keep_high_precision | fp8 layers | weight memory before -> after (bytes) | "
          "layer error max / mean | output error, FP8 Loader | output error, UNETLoader fp8_e4m3fn |")
    print("|---|---|---|---|---|---|---|")
    for family in ("flux", "wan"):
        for policy in ("standard", "none"):
            override = host.FLUX_OVERRIDE if family == "flux" else None
            checkpoint, plan = host.fp8_quantize(folder / f"{family}.safetensors", policy, override)
            if family == "wan":
                model = host.run_node("FP8Loader", "wan.safetensors", "e4m3fn", "per_tensor", policy, False, "")[0]
                error, stock = output_error(model, wan_hp, wan_x, wan_conds), f"{wan_stock:.4f}"
            else:
                model = host.load_with_config_override(checkpoint.state_dict, override, checkpoint.metadata)
                error, stock = output_error(model, flux_hp, flux_x, flux_conds), "n/a"
            errors = list(checkpoint.errors.values())
            before, after = checkpoint.bytes_before, checkpoint.bytes_after
            print(f"| tiny {family} | {policy} | {len(plan.quantize)} of {len(plan.quantize) + len(plan.keep)} | "
                  f"{before} -> {after} ({after / before:.1%}) | {max(errors):.4f} / {sum(errors) / len(errors):.4f} "
                  f"| {error:.4f} | {stock} |")
    full_size_rows()


def full_size_rows() -> None:
    import comfy.ldm.flux.model
    import comfy.ldm.wan.model
    import comfy.ops

    policies = host.pack_module("nodes.fp8.policy")
    ops = comfy.ops.disable_weight_init
    with torch.device("meta"):
        models = {
            "FLUX.1-dev": comfy.ldm.flux.model.Flux(
                in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096, hidden_size=3072, mlp_ratio=4.0,
                num_heads=24, depth=19, depth_single_blocks=38, axes_dim=[16, 56, 56], theta=10000, qkv_bias=True,
                guidance_embed=True, patch_size=2, operations=ops),
            "Wan 2.1 14B": comfy.ldm.wan.model.WanModel(model_type="t2v", dim=5120, ffn_dim=13824, num_heads=40,
                                                        num_layers=40, operations=ops),
        }
    print("\n| architecture | keep_high_precision | weights in fp8 | weight memory vs bf16 |\n|---|---|---|---|")
    for name, model in models.items():
        total = sum(p.numel() for p in model.parameters())
        for policy in policies.POLICIES:
            plan = policies.plan_layers(model, policy)
            quantized = sum(torch.Size(shape).numel() for shape in plan.quantize.values())
            print(f"| {name} ({total / 1e9:.1f}B) | {policy} | {quantized / total:.1%} | "
                  f"{(2 * total - quantized) / (2 * total):.1%} |")


if __name__ == "__main__":
    main()
