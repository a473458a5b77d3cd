"""Where the trained demo model lives, and training it on first use (once; a few CPU minutes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL_NAME = "taylor_demo_wan_digits.safetensors"


def ensure_trained(comfy_root: Path) -> Path:
    """The demo model in ``comfy_root/models/diffusion_models``, trained there first if it is missing."""
    path = Path(comfy_root) / "models" / "diffusion_models" / MODEL_NAME
    if not path.exists():
        print(f"training the demo model into {path} (once; a few minutes on 2 CPU cores)", flush=True)
        subprocess.run([sys.executable, str(HERE / "train_digits.py"), "--out", str(path)], check=True)
    return path
