"""Check the trained demo model through ComfyUI's own loader and sampler, and score its digits.

Usage: ``python demo/check_demo_model.py PATH [--png OUT.png] [--seeds 3] [--cfg 4.0] [--steps 20]
[--sampler euler] [--scheduler simple] [--min-score 0.8] [--comfyui ROOT]``.

1. ``comfy.sd.load_diffusion_model(PATH)`` must detect Wan 2.1 text-to-video (``WAN21_T2V`` /
   ``model_base.WAN21``, FLOW) with the config recorded by the training script, and the codec's latent
   constants must equal ``comfy.latent_formats.Wan21``'s.
2. Each digit 0..9 is sampled with ``comfy.sample.sample`` from core ``EmptyHunyuanLatentVideo``
   (128x128, length 1) latents, one seed per row, the null context as negative prompt.
3. The samples are decoded with the codec into a PNG grid (rows = seeds, columns = digits 0..9), and a
   logistic regression trained on codec round-trips of sklearn's digits says which digit each one shows.
   The recognisability score is the fraction classified as the requested digit; the exit status is 1 when it
   is below ``--min-score``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Before torch loads libgomp. Spin-waiting OpenMP threads collapse when another process shares the cores;
# passive waiting costs a little on free cores (both timed: docs/development.md). Results are identical either way.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import comfy_env

META_KEY = "taylor_demo_recipe"


def digit_classifier(codec: object) -> tuple[object, float]:
    """Logistic regression on codec round-trips of the digits; returns (classifier, held-out accuracy)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    images, labels = codec.load_digits()
    x = codec.latent_to_digits(codec.encode(images)).reshape(len(labels), -1)
    x_tr, x_te, y_tr, y_te = train_test_split(x, labels, test_size=0.25, random_state=0, stratify=labels)
    held_out = LogisticRegression(max_iter=5000).fit(x_tr, y_tr).score(x_te, y_te)
    return LogisticRegression(max_iter=5000).fit(x, labels), float(held_out)


def load_checked(path: str) -> tuple[object, dict]:
    """Load with the stock loader; assert Wan 2.1 t2v detection and the recorded config.

    Returns (ModelPatcher, training recipe from the metadata or ``{}``).
    """
    import comfy.latent_formats
    import comfy.model_base
    import comfy.sd
    import comfy.supported_models
    import comfy.utils
    import digits_codec as codec

    _, metadata = comfy.utils.load_torch_file(path, return_metadata=True)
    recipe = json.loads((metadata or {}).get(META_KEY, "{}"))
    patcher = comfy.sd.load_diffusion_model(path)
    base = patcher.model
    config = base.model_config
    detected_name = type(config).__name__
    assert type(config) is comfy.supported_models.WAN21_T2V, f"detected {detected_name}, not WAN21_T2V"
    assert type(base) is comfy.model_base.WAN21, f"model class {type(base).__name__}, not WAN21"
    assert base.model_type == comfy.model_base.ModelType.FLOW, base.model_type
    for key, value in recipe.get("config", {}).items():
        detected = config.unet_config.get(key)
        detected = list(detected) if isinstance(detected, tuple) else detected
        if key != "text_dim":  # not detected: WanModel's default (4096) applies
            assert detected == value, f"detected {key}={detected!r}, trained with {value!r}"
    assert base.diffusion_model.text_dim == codec.CONTEXT_DIM
    fmt = comfy.latent_formats.Wan21()
    assert torch.allclose(fmt.latents_mean.flatten(), torch.tensor(codec.WAN21_LATENTS_MEAN))
    assert torch.allclose(fmt.latents_std.flatten(), torch.tensor(codec.WAN21_LATENTS_STD))
    shown = {k: config.unet_config[k] for k in ("dim", "num_heads", "num_layers", "ffn_dim", "model_type")}
    print(f"detected {detected_name} -> {type(base).__name__} ({base.model_type.name}, "
          f"shift {base.model_sampling.shift}); unet_config {shown}")
    return patcher, recipe


def empty_latent(batch: int) -> torch.Tensor:
    """Core ``EmptyHunyuanLatentVideo`` at 128x128, length 1: ``[batch, 16, 1, 16, 16]``."""
    from comfy_extras.nodes_hunyuan import EmptyHunyuanLatentVideo

    out = EmptyHunyuanLatentVideo.execute(width=128, height=128, length=1, batch_size=batch)
    latent = out.result[0]["samples"] if hasattr(out, "result") else out[0]["samples"]
    return latent


def sample_digits(patcher: object, seeds: list[int], args: argparse.Namespace) -> torch.Tensor:
    """VAE-space samples ``[len(seeds), 10, 16, 1, 16, 16]``; one sampler call per (seed, digit)."""
    import comfy.sample
    import digits_codec as codec

    negative = [[codec.digit_context(None), {}]]
    rows = []
    for seed in seeds:
        latent = empty_latent(1)
        expected = (1, codec.LATENT_CHANNELS, 1, codec.LATENT_SIZE, codec.LATENT_SIZE)
        assert tuple(latent.shape) == expected, f"EmptyHunyuanLatentVideo gave {tuple(latent.shape)}"
        latent = comfy.sample.fix_empty_latent_channels(patcher, latent)
        noise = comfy.sample.prepare_noise(latent, seed)
        row = []
        for digit in range(10):
            positive = [[codec.digit_context(digit), {}]]
            row.append(comfy.sample.sample(patcher, noise, args.steps, args.cfg, args.sampler, args.scheduler,
                                           positive, negative, latent, disable_pbar=True, seed=seed))
        rows.append(torch.cat(row))
    return torch.stack(rows)


def save_grid(images: torch.Tensor, path: str) -> None:
    """IMAGE rows ``[R, 10, H, W, 3]`` in [0, 1] -> one PNG (2-pixel gaps)."""
    from PIL import Image

    r, c, h, w, _ = images.shape
    gap = 2
    canvas = np.full((r * h + (r - 1) * gap, c * w + (c - 1) * gap, 3), 64, dtype=np.uint8)
    pixels = (images.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    for i in range(r):
        for j in range(c):
            canvas[i * (h + gap): i * (h + gap) + h, j * (w + gap): j * (w + gap) + w] = pixels[i, j]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)


def check(args: argparse.Namespace) -> float:
    """Run all checks; return the recognisability score in [0, 1]."""
    comfy_env.setup(args.comfyui)
    import digits_codec as codec

    torch.set_num_threads(args.threads)
    patcher, recipe = load_checked(args.path)
    if recipe:
        print(f"recipe: seed {recipe.get('seed')}, steps {recipe.get('steps')}, batch {recipe.get('batch')}, "
              f"eval loss {recipe.get('eval_loss')}, trained {recipe.get('train_seconds')} s")
    clf, held_out = digit_classifier(codec)
    print(f"classifier accuracy on held-out real digits (codec round-trip): {held_out:.3f}")

    seeds = list(range(args.seed, args.seed + args.seeds))
    start = time.monotonic()
    samples = sample_digits(patcher, seeds, args)
    elapsed = time.monotonic() - start
    n = samples.shape[0] * samples.shape[1]
    flat = samples.reshape(n, *samples.shape[2:])
    predicted = clf.predict(codec.latent_to_digits(flat).reshape(n, -1)).reshape(len(seeds), 10)
    wanted = np.arange(10)[None].repeat(len(seeds), axis=0)
    score = float((predicted == wanted).mean())
    print(f"sampled {n} digits ({args.sampler}, {args.scheduler}, {args.steps} steps, cfg {args.cfg}) "
          f"in {elapsed:.1f} s")
    for i, seed in enumerate(seeds):
        print(f"  seed {seed}: predicted {' '.join(str(d) for d in predicted[i])}")
    per_digit = (predicted == wanted).mean(axis=0)
    print("  per digit: " + " ".join(f"{d}:{a:.2f}" for d, a in enumerate(per_digit)))
    print(f"recognisability: {score:.3f} ({int((predicted == wanted).sum())}/{n})")
    if args.png:
        images = codec.decode(flat).reshape(len(seeds), 10, codec.IMAGE_SIZE, codec.IMAGE_SIZE, 3)
        save_grid(images, args.png)
        print(f"wrote {args.png} (rows: seeds {seeds[0]}..{seeds[-1]}, columns: digits 0..9)")
    return score


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", help="the trained .safetensors")
    p.add_argument("--png", default=None, help="write the sample grid here")
    p.add_argument("--seeds", type=int, default=3, help="rows of the grid: seeds --seed .. --seed+N-1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cfg", type=float, default=4.0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--sampler", default="euler")
    p.add_argument("--scheduler", default="simple")
    p.add_argument("--min-score", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--comfyui", default=None,
                   help="ComfyUI root (default: $COMFYUI_PATH, then .host/ComfyUI)")
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    score = check(args)
    if score < args.min_score:
        print(f"FAIL: recognisability {score:.3f} < {args.min_score}")
        sys.exit(1)


if __name__ == "__main__":
    main()
