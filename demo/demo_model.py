"""Where the trained demo models live, training them on first use (once; a few CPU minutes), and loading them.

Two architectures, same recipe (``demo/train_digits.py``): ``wan`` (the demo model, a tiny Wan 2.1 that
ComfyUI's stock detection loads as it is) and ``flux`` (a tiny Flux.1-dev: stock detection plus the head count
and rope axes from the file's recipe, which detection cannot read from shapes; ComfyUI fixes them at 24 and
[16, 56, 56], i.e. hidden 3072).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO_MODELS = HERE.parent / ".demo_models"
MODEL_NAMES = {"wan": "taylor_demo_wan_digits.safetensors", "flux": "taylor_demo_flux_digits.safetensors",
               "wan6": "taylor_demo_wan6_digits.safetensors", "flux6": "taylor_demo_flux6_digits.safetensors"}
MODEL_NAME = MODEL_NAMES["wan"]
# Flux: 3000 steps at the default batch take about 12 CPU minutes on 2 free cores; cap the wall time.
# wan6: a third model for the benchmark's leave-one-model-out rule, deeper than the demo Wan (6 blocks, ffn 384,
# another seed); a Wan 2.1 as far as ComfyUI and the pack can tell. flux6: a fourth, deeper than the demo Flux
# (3 double + 3 single blocks, another seed).
TRAIN_ARGS = {"wan": [], "flux": ["--arch", "flux", "--time-limit", "780"],
              "wan6": ["--layers", "6", "--ffn-dim", "384", "--seed", "1", "--steps", "2500", "--time-limit", "1800"],
              "flux6": ["--arch", "flux", "--layers", "6", "--seed", "2", "--steps", "2500", "--time-limit", "1500"]}


def family(arch: str) -> str:
    """The model class a demo model ``arch`` (a key of ``MODEL_NAMES``) is: "flux" or "wan"."""
    args = TRAIN_ARGS[arch]
    return args[args.index("--arch") + 1] if "--arch" in args else "wan"


def ensure_trained(comfy_root: Path, arch: str = "wan") -> Path:
    """The demo model of ``arch`` in ``comfy_root/models/diffusion_models``: a link to the one trained copy in
    ``.demo_models/`` (repository root, ignored by git), which every ComfyUI host shares; trained there first if
    missing."""
    stored = DEMO_MODELS / MODEL_NAMES[arch]
    path = Path(comfy_root) / "models" / "diffusion_models" / MODEL_NAMES[arch]
    if not stored.exists():
        if path.is_file() and not path.is_symlink():  # trained into this host before the store existed
            DEMO_MODELS.mkdir(exist_ok=True)
            path.replace(stored)
        else:
            print(f"training the {arch} demo model into {stored} (once; a few minutes on 2 CPU cores)", flush=True)
            subprocess.run([sys.executable, str(HERE / "train_digits.py"), "--out", str(stored), *TRAIN_ARGS[arch]],
                           check=True)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # a dangling link
        path.symlink_to(stored)
    return path


def load_demo_model(comfy_root: Path, arch: str = "wan"):
    """The ``arch`` demo model as a ComfyUI ModelPatcher (trained first if missing). ``comfy`` must be importable
    (``comfy_env.setup``). Wan: ``comfy.sd.load_diffusion_model``. Flux: ComfyUI's own detection, model class,
    weights and patcher, with ``num_heads`` / ``axes_dim`` taken from the recipe in the file's metadata."""
    import comfy.model_detection
    import comfy.model_management
    import comfy.model_patcher
    import comfy.sd
    import comfy.utils
    import torch

    path = ensure_trained(comfy_root, arch)
    if family(arch) != "flux":
        return comfy.sd.load_diffusion_model(str(path))
    sd, metadata = comfy.utils.load_torch_file(str(path), return_metadata=True)
    recipe = json.loads(metadata["taylor_demo_recipe"])
    unet_config = comfy.model_detection.detect_unet_config(sd, "")
    unet_config.update({k: recipe["config"][k] for k in ("num_heads", "axes_dim")})
    model_config = comfy.model_detection.model_config_from_unet_config(unet_config, sd)
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model(sd, "")
    model.load_model_weights(sd, "")
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())
