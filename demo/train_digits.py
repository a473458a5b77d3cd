"""Train a demo model on sklearn's digits: a tiny Wan 2.1 text-to-video DiT (ComfyUI's own ``WanModel``,
``--arch wan``, the default) or a tiny Flux.1-dev (ComfyUI's own ``Flux``, ``--arch flux``).

Usage: ``python demo/train_digits.py --out PATH [--arch wan|flux] [--steps N] [--seed S] [--comfyui ROOT]``.

Flux (``--arch flux``): hidden 128, 2 heads (rope axes 16/24/24), 2 double + 2 single blocks, guidance
embedding (dev), ``context_in_dim`` 4096 (the codec's context), ``vec_in_dim`` 768 (the pooled vector: all
zeros, the class is in the context only), guidance fixed at ComfyUI's default 3.5. Latents ``[B, 16, 16, 16]``
(the codec's model-space latent without the frame axis), FLUX model type: timestep = sigma (the model scales it
by 1000 itself), training sigmas at the density of ComfyUI's Flux schedule (``flux_time_shift(1.15)`` = shift
e^1.15). ComfyUI's stock detection recovers every size except the head count and rope axes (fixed at
Flux.1's 24 / [16, 56, 56]), so the file is loaded with those two overridden from the recipe in its metadata
(``demo_model.load_demo_model``). The Wan description follows.

The config is one that ComfyUI's ``detect_unet_config`` recovers exactly from the tensor shapes (dim 128 =>
1 head, patch (1, 2, 2), freq_dim 256, text_dim 4096, 16 channels in and out), so the stock loader picks
``WAN21_T2V`` with no override. The objective follows ComfyUI's WAN21 conventions: FLOW model type
(``CONST`` + ``ModelSamplingDiscreteFlow``, shift 8, multiplier 1000), ``x_sigma = (1 - sigma) x0 +
sigma noise``, target ``noise - x0`` (so ``denoised = x - sigma * output``), timestep ``sigma * 1000``, the
latents in model space (``Wan21.process_in`` of the codec's VAE-space latents). 10 % of the samples get the
null context (CFG). The exponential moving average of the weights is saved with safetensors (atomic rename),
with the recipe in the metadata key ``taylor_demo_recipe`` (JSON). Deterministic for a given seed and
thread count; about 6.5 minutes on 2 free CPU cores at the defaults (0.12 s a step).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Before torch loads libgomp. Spin-waiting OpenMP threads collapse when another process shares the cores;
# passive waiting costs a little on free cores (both timed: docs/development.md). Results are identical either way.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import comfy_env
import model_builder

DEFAULTS = {
    "steps": 3000,
    "seed": 0,
    "batch": 16,
    "lr": 1e-3,
    "layers": 4,
    "ffn_dim": 512,
    "dim": 128,
    "uncond_prob": 0.1,
    "ema": 0.995,
}
SHIFT = 8.0  # comfy.supported_models.WAN21_T2V.sampling_settings["shift"]
MULTIPLIER = 1000.0  # ModelSamplingDiscreteFlow multiplier: timestep = sigma * 1000
FLUX_SHIFT = math.exp(1.15)  # ModelSamplingFlux: flux_time_shift(1.15, 1, t) == shifted(t, e^1.15)
FLUX_GUIDANCE = 3.5  # comfy.model_base.Flux.extra_conds default
FLUX_POOLED_DIM = 768  # CLIP-L pooled width (vec_in_dim)
WARMUP_STEPS = 50
META_KEY = "taylor_demo_recipe"


def wan_config(dim: int, layers: int, ffn_dim: int) -> dict:
    """``WanModel`` kwargs that ComfyUI's Wan 2.1 detection recovers from the weights (t2v, 16 channels)."""
    return {
        "model_type": "t2v",
        "patch_size": (1, 2, 2),
        "in_dim": 16,
        "dim": dim,
        "ffn_dim": ffn_dim,
        "freq_dim": 256,
        "text_dim": 4096,
        "out_dim": 16,
        "num_heads": dim // 128,
        "num_layers": layers,
        "window_size": (-1, -1),
        "qk_norm": True,
        "cross_attn_norm": True,
        "eps": 1e-6,
    }


def flux_config(hidden: int, depth: int, depth_single: int) -> dict:
    """``Flux`` kwargs of the tiny Flux.1-dev (hidden 128 => 2 heads of 64, rope axes 16 + 24 + 24)."""
    heads = hidden // 64
    head_dim = hidden // heads
    side = (head_dim - 16) // 2
    return {
        "image_model": "flux",
        "in_channels": 16,
        "out_channels": 16,
        "vec_in_dim": FLUX_POOLED_DIM,
        "context_in_dim": 4096,
        "hidden_size": hidden,
        "mlp_ratio": 4.0,
        "num_heads": heads,
        "depth": depth,
        "depth_single_blocks": depth_single,
        "axes_dim": [head_dim - 2 * side, side, side],
        "theta": 10000,
        "patch_size": 2,
        "qkv_bias": True,
        "guidance_embed": True,
    }


def shifted(sigma: torch.Tensor, shift: float = SHIFT) -> torch.Tensor:
    """ComfyUI's ``time_snr_shift``: the Wan schedule's sigma for an unshifted ``t`` in [0, 1]."""
    return shift * sigma / (1.0 + (shift - 1.0) * sigma)


def sample_sigmas(batch: int, gen: torch.Generator, shift: float = SHIFT) -> torch.Tensor:
    """Training sigmas ``[batch]`` in (0, 1]: ``shifted(t)``, t uniform, i.e. the density of ComfyUI's shift-8
    schedule itself (about half of the samples above sigma 0.9, 5 % below 0.3, every part covered).

    Measured on this recipe (10 seeds x 10 digits): recognisability 0.94-0.95 with this, 0.91-0.93 with 75 %
    of it plus 25 % logit-normal(0, 1), 0.87-0.88 with half and half: class identity is decided at high sigma.
    """
    t = torch.rand(batch, generator=gen)
    return shifted(t, shift).clamp(1e-4, 1.0)


def init_weights(model: torch.nn.Module) -> None:
    """Wan's own initialisation (ComfyUI's ops leave parameters uninitialised); Flux gets the same scheme
    (xavier Linears, small embedders, zero output layer)."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv3d)):
            torch.nn.init.xavier_uniform_(module.weight.view(module.weight.shape[0], -1))
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, (torch.nn.LayerNorm, torch.nn.RMSNorm)):
            if getattr(module, "weight", None) is not None:
                torch.nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                torch.nn.init.zeros_(module.bias)
    if hasattr(model, "final_layer"):  # Flux
        for name, param in model.named_parameters():
            if name.endswith(".scale"):  # QK RMSNorm
                torch.nn.init.ones_(param)
        for embedder in (model.time_in, model.vector_in, model.guidance_in):
            for module in embedder.modules():
                if isinstance(module, torch.nn.Linear):
                    torch.nn.init.normal_(module.weight, std=0.02)
        torch.nn.init.zeros_(model.final_layer.linear.weight)
        return
    for name, param in model.named_parameters():
        if name.endswith("modulation"):
            torch.nn.init.normal_(param, std=param.shape[-1] ** -0.5)
    for seq in (model.text_embedding, model.time_embedding):
        for module in seq:
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=0.02)
    torch.nn.init.zeros_(model.head.head.weight)


def lr_at(step: int, steps: int, base_lr: float) -> float:
    """Linear warm-up, then cosine decay to 10 % of ``base_lr``."""
    if step < WARMUP_STEPS:
        return base_lr * (step + 1) / WARMUP_STEPS
    progress = (step - WARMUP_STEPS) / max(1, steps - WARMUP_STEPS)
    return base_lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def build(args: argparse.Namespace) -> tuple[torch.nn.Module, dict, Callable, float]:
    """(model, config, ``forward(model, x_t, sigma, context)``, schedule shift) of ``args.arch``."""
    import comfy.ops

    if args.arch == "flux":
        from comfy.ldm.flux.model import Flux

        config = flux_config(args.dim, args.layers // 2, args.layers - args.layers // 2)
        model = model_builder.build(Flux, config, operations=comfy.ops.disable_weight_init)
        # Flux's blocks add to their input in place after normalising it (inference code): the norms get a
        # copy, so autograd keeps the input they saved (training only; hooks are not saved with the weights).
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.register_forward_pre_hook(lambda _module, inputs: (inputs[0].clone(), *inputs[1:]))

        def forward(net, x_t, sigma, context):
            batch = x_t.shape[0]
            return net(x_t, sigma, context, y=torch.zeros(batch, FLUX_POOLED_DIM),
                       guidance=torch.full((batch,), FLUX_GUIDANCE))

        return model, config, forward, FLUX_SHIFT
    from comfy.ldm.wan.model import WanModel

    config = wan_config(args.dim, args.layers, args.ffn_dim)
    model = model_builder.build(WanModel, config, operations=comfy.ops.disable_weight_init)
    return model, config, lambda net, x_t, sigma, context: net(x_t, sigma * MULTIPLIER, context), SHIFT


def train(args: argparse.Namespace) -> dict:
    """Train and save; return the recipe (also written to the file's metadata)."""
    comfy_env.setup(args.comfyui)
    import comfy.latent_formats
    import digits_codec as codec
    from safetensors.torch import save_file

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)

    images, labels = codec.load_digits()
    x0_all = comfy.latent_formats.Wan21().process_in(codec.encode(images))  # model space [N, 16, 1, 16, 16]
    if args.arch == "flux":
        x0_all = x0_all[:, :, 0]  # Flux: images [N, 16, 16, 16]
    labels_t = torch.as_tensor(labels)
    # [11, tokens, 4096]: digits 0..9, then the null context
    contexts = torch.cat([codec.digit_context(d) for d in range(10)] + [codec.digit_context(None)])
    null_index = 10

    model, config, forward, shift = build(args)
    init_weights(model)
    model.train()
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    params = [p for p in model.parameters() if p.requires_grad]
    decay, no_decay = [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99))
    n_params = sum(p.numel() for p in params)
    print(f"{type(model).__name__}: dim {args.dim}, {args.layers} layers, ffn {args.ffn_dim}, "
          f"{n_params / 1e6:.2f} M parameters; {len(labels)} digits, {args.steps} steps of batch "
          f"{args.batch}, {args.threads} threads", flush=True)

    start = time.monotonic()
    window: list[float] = []  # losses since the last progress line
    last_avg, done = float("nan"), 0
    for step in range(args.steps):
        idx = torch.randint(0, len(labels), (args.batch,), generator=gen)
        x0 = x0_all[idx]
        noise = torch.randn(x0.shape, generator=gen)
        sigma = sample_sigmas(args.batch, gen, shift)
        s = sigma.view(-1, *[1] * (x0.ndim - 1))
        x_t = (1.0 - s) * x0 + s * noise
        cls = torch.where(torch.rand(args.batch, generator=gen) < args.uncond_prob, null_index, labels_t[idx])
        lr = lr_at(step, args.steps, args.lr)
        for group in opt.param_groups:
            group["lr"] = lr
        out = forward(model, x_t, sigma, contexts[cls])
        loss = torch.nn.functional.mse_loss(out.float(), noise - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            d = min(args.ema, (1.0 + step) / (10.0 + step))
            for k, v in model.state_dict().items():
                if v.is_floating_point():
                    ema[k].lerp_(v, 1.0 - d)
                else:
                    ema[k].copy_(v)
        window.append(loss.item())
        done = step + 1
        elapsed = time.monotonic() - start
        stop_early = elapsed > args.time_limit and done < args.steps
        if done % args.log_every == 0 or done == args.steps or stop_early:
            last_avg, window = sum(window) / len(window), []
            eta = elapsed / done * (args.steps - done)
            print(f"step {done}/{args.steps}  loss {last_avg:.4f}  lr {lr:.2e}  "
                  f"{elapsed:.0f} s elapsed, ~{eta:.0f} s left", flush=True)
        if stop_early:
            print(f"WARNING: time limit {args.time_limit:.0f} s reached after {done} steps; saving early",
                  flush=True)
            break
    train_s = time.monotonic() - start

    with torch.no_grad():  # final loss of the EMA weights on a fixed held-out draw (same sigma mix)
        model.load_state_dict(ema)
        model.eval()
        eval_gen = torch.Generator().manual_seed(10_000 + args.seed)
        idx = torch.randint(0, len(labels), (256,), generator=eval_gen)
        noise = torch.randn(x0_all[idx].shape, generator=eval_gen)
        sigma = sample_sigmas(256, eval_gen, shift)
        s = sigma.view(-1, *[1] * (x0_all.ndim - 1))
        out = forward(model, (1.0 - s) * x0_all[idx] + s * noise, sigma, contexts[labels_t[idx]])
        eval_loss = torch.nn.functional.mse_loss(out, noise - x0_all[idx]).item()
    print(f"final training loss (mean of the last logged steps) {last_avg:.4f}; "
          f"EMA eval loss {eval_loss:.4f}; {train_s:.0f} s", flush=True)

    recipe = {
        "format": f"taylor-demo-{args.arch}-digits/1",
        "arch": args.arch,
        "seed": args.seed,
        "steps": done,
        "steps_requested": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "ema": args.ema,
        "uncond_prob": args.uncond_prob,
        "threads": args.threads,
        "shift": shift,
        "sigma_sampling": f"schedule density: sigma = s t / (1 + (s - 1) t), s = {shift:.4g}, t uniform",
        "objective": "rectified flow, target noise - x0, model-space latents, timestep "
                     + ("sigma (x1000 inside Flux), guidance 3.5, pooled y = 0" if args.arch == "flux"
                        else "sigma*1000"),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "codec": {"signal_scale": codec.SIGNAL_SCALE, "direction_seed": codec.DIRECTION_SEED,
                  "context_seed": codec.CONTEXT_SEED, "context_tokens": codec.CONTEXT_TOKENS},
        "final_train_loss": round(last_avg, 5),
        "eval_loss": round(eval_loss, 5),
        "train_seconds": round(train_s, 1),
        "torch": torch.__version__,
    }
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in ema.items()}
    out_path = Path(args.out).resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + f".tmp{os.getpid()}")
    try:
        save_file(state, str(tmp), metadata={META_KEY: json.dumps(recipe, sort_keys=True)})
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"saved {out_path} ({out_path.stat().st_size / 1e6:.1f} MB)", flush=True)
    return recipe


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output .safetensors path")
    p.add_argument("--arch", choices=("wan", "flux"), default="wan",
                   help="wan: layers = blocks; flux: layers // 2 double + the rest single blocks")
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--layers", type=int, default=DEFAULTS["layers"])
    p.add_argument("--ffn-dim", type=int, default=DEFAULTS["ffn_dim"])
    p.add_argument("--dim", type=int, default=DEFAULTS["dim"],
                   help="a multiple of 128 (ComfyUI: heads = dim // 128)")
    p.add_argument("--uncond-prob", type=float, default=DEFAULTS["uncond_prob"])
    p.add_argument("--ema", type=float, default=DEFAULTS["ema"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--time-limit", type=float, default=540.0,
                   help="training-loop seconds after which to stop early (and say so)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--comfyui", default=None,
                   help="ComfyUI root (default: $COMFYUI_PATH, then .host/ComfyUI)")
    args = p.parse_args(argv)
    if args.dim % 128:
        p.error("--dim must be a multiple of 128")
    return args


def main() -> None:
    train(parse_args())


if __name__ == "__main__":
    main()
