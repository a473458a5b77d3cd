"""The main job: queue the shipped demo workflow on a real ComfyUI server without and with TaylorSeer Apply
(same seeds), and print steps, full computes, wall-time speed-up and PSNR of the accelerated output against
the uncached one. Run through ``bash scripts/demo.sh`` (which builds the host first) or with the host's
Python: ``python demo/run_demo.py [--seeds 4] [--port 8190] [--out artifacts/demo]``.

Trains the demo model first if it is not in the host's ``models/diffusion_models`` yet (a few CPU minutes,
once). Wall times are the server's own (execution_start to execution_success of each prompt); the
reported speed-up is the median over seeds of baseline time / TaylorSeer time, measured in one server.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import comfy_host  # noqa: E402
from comfy_client import ComfyClient, execution_seconds, output_images  # noqa: E402
from demo_model import ensure_trained  # noqa: E402

from taylor_queue.console import progress_line  # noqa: E402

WORKFLOW = REPO / "workflows" / "api" / "demo_wan_digits_taylorseer_api.json"
SUMMARY = re.compile(r"\[TaylorSeer\] steps (\d+), evaluations (\d+), full (\d+), forecast (\d+), "
                     r"compute ratio ([\d.]+)x, cache peak ([^,]+)")


def without_node(prompt: dict, class_type: str) -> dict:
    """The same graph with every ``class_type`` node removed and its consumers fed by its ``model`` input."""
    graph = copy.deepcopy(prompt)
    for node_id in [k for k, v in graph.items() if v["class_type"] == class_type]:
        source = graph.pop(node_id)["inputs"]["model"]
        for node in graph.values():
            for name, value in node["inputs"].items():
                if isinstance(value, list) and value[0] == node_id:
                    node["inputs"][name] = source
    return graph


def with_seed(prompt: dict, seed: int) -> dict:
    graph = copy.deepcopy(prompt)
    for node in graph.values():
        if node["class_type"] == "KSampler":
            node["inputs"]["seed"] = seed
    return graph


def decoded(client: ComfyClient, entry: dict) -> np.ndarray:
    images = [np.asarray(Image.open(io.BytesIO(client.image(info))).convert("RGB"), dtype=np.float64)
              for info in output_images(entry)]
    return np.stack(images)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def last_summary(log_path: Path) -> tuple[int, int, float]:
    """(steps, full computes, compute ratio) of the newest TaylorSeer report in the server log."""
    matches = SUMMARY.findall(log_path.read_text(errors="replace"))
    if not matches:
        raise RuntimeError(f"no TaylorSeer report in {log_path}")
    steps, _evaluations, full, _forecast, ratio, _cache = matches[-1]
    return int(steps), int(full), float(ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--port", type=int, default=8190)
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "demo")
    args = parser.parse_args()

    root = comfy_host.comfy_root()
    ensure_trained(root)
    accelerated = json.loads(WORKFLOW.read_text())
    baseline = without_node(accelerated, "TaylorSeerApply")
    args.out.mkdir(parents=True, exist_ok=True)
    comfy_host.start(args.port)
    log_path = comfy_host.log_file(args.port)
    client = ComfyClient(comfy_host.server_url(args.port))
    try:
        client.run(with_seed(baseline, 10_000))  # warm-up: loads the model, compiles nothing, caches conds
        client.run(with_seed(accelerated, 10_000))
        rows = []
        started = time.monotonic()
        for seed in range(args.seeds):
            base_entry = client.run(with_seed(baseline, seed))
            fast_entry = client.run(with_seed(accelerated, seed))
            steps, full, ratio = last_summary(log_path)
            base_img, fast_img = decoded(client, base_entry), decoded(client, fast_entry)
            for name, images in (("baseline", base_img), ("taylorseer", fast_img)):
                Image.fromarray(np.concatenate(list(images.astype(np.uint8)), axis=1)).save(
                    args.out / f"{name}_seed{seed}.png")
            rows.append((seed, execution_seconds(base_entry), execution_seconds(fast_entry), steps, full, ratio,
                         psnr(base_img, fast_img)))
            print(progress_line(seed + 1, args.seeds, time.monotonic() - started, "seeds (uncached + TaylorSeer)"),
                  file=sys.stderr, flush=True)
    finally:
        comfy_host.stop(args.port)

    ts = accelerated[next(k for k, v in accelerated.items() if v["class_type"] == "TaylorSeerApply")]["inputs"]
    plan = (f"target_speedup {ts['target_speedup']:g}" if ts.get("target_speedup") else f"interval {ts['interval']}")
    print(f"\nTaylorSeer demo: {WORKFLOW.name} on a real ComfyUI server (CPU); level {ts['level']}, {plan}, "
          f"forecaster {ts.get('forecaster', 'newton')}, max_order {ts['max_order']}, warmup {ts['warmup_steps']}, "
          f"tail {ts['tail_steps']}")
    print(f"{'seed':>4}  {'baseline s':>10}  {'taylorseer s':>12}  {'speed-up':>8}  {'full/steps':>10}  {'PSNR dB':>7}")
    for seed, base_s, fast_s, steps, full, _ratio, value in rows:
        print(f"{seed:>4}  {base_s:>10.3f}  {fast_s:>12.3f}  {base_s / fast_s:>7.2f}x  {full:>4}/{steps:<5}  "
              f"{value:>7.2f}")
    speedup = statistics.median(base_s / fast_s for _, base_s, fast_s, *_ in rows)
    print(f"speed-up: {speedup:.2f}x wall time (median of {len(rows)} seeds); compute ratio {rows[0][5]:.2f}x "
          f"({rows[0][4]} of {rows[0][3]} steps computed)")
    print(f"fidelity: PSNR {statistics.mean(r[6] for r in rows):.2f} dB (mean) against the uncached images of the "
          "same seeds (higher is closer; inf = identical)")
    print(f"images: {args.out}/baseline_seed<N>.png (uncached) and {args.out}/taylorseer_seed<N>.png")


if __name__ == "__main__":
    main()
