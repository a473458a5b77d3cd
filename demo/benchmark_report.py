"""Markdown tables, the Pareto comparison and the plot of ``demo/benchmark.py``'s rows (plain dicts, CSV columns)."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

CURVES = {  # curve name -> (method, level); TaylorSeer: every order and interval of the level
    "TaylorSeer residual": ("taylorseer", "residual"),
    "TaylorSeer output": ("taylorseer", "output"),
    "TaylorSeer modules": ("taylorseer", "modules"),
    "CG-Taylor": ("cg_taylor", None),
    "EasyCache": ("easycache", None),
    "LazyCache": ("lazycache", None),
}
PEERS = ("EasyCache", "LazyCache")
X_AXES = {"speedup_median": "wall-time speed-up", "compute_ratio": "compute ratio"}


TEXT_COLUMNS = ("arch", "sampler", "method", "level", "label")
GPU_BEGIN, GPU_END = "<!-- GPU section: written by demo/gpu_benchmark.py -->", "<!-- end of GPU section -->"


def gpu_section(path: Path) -> str:
    """The GPU section of an existing ``benchmarks.md``, markers included ('' when none)."""
    text = path.read_text() if path.is_file() else ""
    start, end = text.find(GPU_BEGIN), text.find(GPU_END)
    return text[start:end + len(GPU_END)] if 0 <= start < end else ""


def splice_gpu_section(path: Path, section: str) -> None:
    """Put ``section`` (Markdown, with or without the markers) in ``path`` as its GPU section: in place of the old
    one, else appended."""
    block = f"{GPU_BEGIN}\n{section.replace(GPU_BEGIN, '').replace(GPU_END, '').strip()}\n{GPU_END}"
    old = gpu_section(path)
    text = path.read_text() if path.is_file() else ""
    path.write_text(text.replace(old, block) if old else (text.rstrip("\n") + "\n\n" + block).lstrip("\n") + "\n")


def read_csv(path: Path, text_columns: tuple[str, ...] = TEXT_COLUMNS,
             int_columns: tuple[str, ...] = ("steps", "seeds", "timed_pairs")) -> list[dict]:
    """Rows of a CSV written by ``write_csv`` back as dicts: ``text_columns`` as str, ``int_columns`` as int, the
    rest float or None (empty cell), like the benchmark's own rows."""
    import csv

    with Path(path).open() as handle:
        rows = [{k: v if k in text_columns else (None if v == "" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(handle)]
    for row in rows:
        for key in int_columns:
            row[key] = int(row[key])
    return rows


def write_csv(rows: list[dict], path: Path, columns: list[str]) -> None:
    """``rows`` as a CSV with ``columns``; finite floats to 4 significant digits."""
    import csv

    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else v)
                             for k, v in row.items()})


def settings(rows: list[dict]) -> list[tuple[str, str, int]]:
    """The (arch, sampler, steps) groups, in run order."""
    return list(dict.fromkeys((r["arch"], r["sampler"], r["steps"]) for r in rows))


def curve_rows(rows: list[dict], setting: tuple, curve: str) -> list[dict]:
    method, level = CURVES[curve]
    return [r for r in rows if (r["arch"], r["sampler"], r["steps"]) == setting and r["method"] == method
            and (level is None or r["level"] == level)]


def frontier(points: list[dict], x: str) -> list[dict]:
    """The upper-right Pareto frontier (no other point is both faster and closer), sorted by ``x``."""
    best, kept = -math.inf, []
    for row in sorted((p for p in points if p[x] is not None), key=lambda p: (-p[x], -p["psnr_db"])):
        if row["psnr_db"] > best:
            kept.append(row)
            best = row["psnr_db"]
    return sorted(kept, key=lambda p: p[x])


def psnr_at(front: list[dict], x: str, value: float) -> float | None:
    """The peer frontier's PSNR at ``x = value`` (linear interpolation; None outside its range)."""
    for left, right in zip(front, front[1:]):
        if left[x] <= value <= right[x]:
            t = 0.0 if right[x] == left[x] else (value - left[x]) / (right[x] - left[x])
            return left["psnr_db"] + t * (right["psnr_db"] - left["psnr_db"])
    if front and math.isclose(front[0][x], value, rel_tol=1e-9):
        return front[0]["psnr_db"]
    return None


def fmt(value: float | int | str | None, digits: int = 2) -> str:
    """A table cell: floats to ``digits`` decimals ("inf" when infinite), None as "n/a", the rest as text."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)


def _bytes(value) -> str:
    return "n/a" if value in (None, "") else f"{float(value) / 1024:.1f} KiB"


def row_table(rows: list[dict]) -> list[str]:
    lines = ["| configuration | full / run | compute ratio | speed-up (wall) | PSNR dB (min) | latent PSNR dB | SSIM "
             "| cache | forecast overhead |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {fmt(r['full_mean'], 1)} | {fmt(r['compute_ratio'])}x | "
                     f"{fmt(r['speedup_median'])}x | {fmt(r['psnr_db'])} ({fmt(r['psnr_min_db'])}) | "
                     f"{fmt(r['latent_psnr_db'])} | {fmt(r['ssim'], 4)} | {_bytes(r['cache_bytes'])} | "
                     f"{fmt(r['forecast_overhead'])} |")
    return lines


def best_per_interval(rows: list[dict]) -> list[dict]:
    """TaylorSeer: per (level, interval), the order with the highest PSNR."""
    groups: dict = {}
    for r in rows:
        if r["method"] == "taylorseer":
            key = (r["level"], r["interval"])
            if key not in groups or r["psnr_db"] > groups[key]["psnr_db"]:
                groups[key] = r
    return [groups[k] for k in sorted(groups, key=lambda k: (list(CURVES).index(f"TaylorSeer {k[0]}"), k[1]))]


def comparison(rows: list[dict], setting: tuple, x: str) -> tuple[list[str], list[str], list[str]]:
    """(table lines, pack configurations above both peers, ones below a peer) for the pack's frontier points."""
    fronts = {peer: frontier(curve_rows(rows, setting, peer), x) for peer in PEERS}
    lines = [f"| configuration | {X_AXES[x]} | PSNR dB | EasyCache PSNR at same x | LazyCache PSNR at same x |",
             "|---|---|---|---|---|"]
    above, below = [], []
    for curve in CURVES:
        if curve in PEERS:
            continue
        for r in frontier(curve_rows(rows, setting, curve), x):
            peer_values = [psnr_at(fronts[p], x, r[x]) for p in PEERS]
            lines.append(f"| {r['label']} | {fmt(r[x])}x | {fmt(r['psnr_db'])} | "
                         + " | ".join(fmt(v) for v in peer_values) + " |")
            known = [v for v in peer_values if v is not None]
            if known and all(r["psnr_db"] > v for v in known):
                above.append(f"{r['label']} ({fmt(r[x])}x, {fmt(r['psnr_db'])} dB)")
            elif any(r["psnr_db"] < v for v in known):
                below.append(f"{r['label']} ({fmt(r[x])}x, {fmt(r['psnr_db'])} dB)")
    return lines, above, below


def overhead_lines(rows: list[dict]) -> list[str]:
    lines = ["| model | sampler | method / level | forecast overhead (median over configurations) | configurations |",
             "|---|---|---|---|---|"]
    groups: dict = {}
    for r in rows:
        if r["forecast_overhead"] is not None:
            groups.setdefault((r["arch"], r["sampler"], r["method"], r["level"]), []).append(r["forecast_overhead"])
    for (arch, sampler, method, level), values in groups.items():
        lines.append(f"| {arch} | {sampler} | {method} {level} | {statistics.median(values):.3f} | {len(values)} |")
    return lines


def plot(rows: list[dict], path: Path) -> None:
    """Speed-up (wall, left; compute ratio, right) against PSNR, one frontier per method, per model/sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = settings(rows)
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, 4.2 * len(groups)), squeeze=False)
    for i, setting in enumerate(groups):
        for j, x in enumerate(X_AXES):
            ax = axes[i][j]
            for k, curve in enumerate(CURVES):
                points = [r for r in curve_rows(rows, setting, curve)
                          if r[x] is not None and math.isfinite(r["psnr_db"])]
                if not points:
                    continue
                color = f"C{k}"
                ax.scatter([p[x] for p in points], [p["psnr_db"] for p in points], s=8, alpha=0.3, color=color)
                front = frontier(points, x)
                ax.plot([p[x] for p in front], [p["psnr_db"] for p in front], "-o", ms=3, color=color, label=curve)
            ax.set_xlabel(X_AXES[x])
            ax.set_ylabel("PSNR dB vs no cache (decoded)")
            ax.set_title(f"{setting[0]}, {setting[1]} {setting[2]} steps")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


MEASURED = """How it is measured (`demo/benchmark.py`):

- Models: the trained demo models, `wan` (tiny Wan 2.1, loaded by ComfyUI's stock `load_diffusion_model`) and
  `flux` (tiny Flux.1-dev, hidden 128, 2 double + 2 single blocks; ComfyUI's detection reads every size but the
  head count and rope axes, so those two come from the file's recipe: `demo/demo_model.py`). Real KSampler node,
  cfg 4, scheduler simple, 2 images of one digit per run, digit = seed mod 10.
- Full computes: real calls of the model's last block (forward hook), for every method; compute ratio = sampler
  evaluations / full computes. PSNR (dB, peak 1) of the decoded 128x128 images against the uncached run of the
  same seed: of the mean squared error over seeds (finite unless every seed is exact; the worst seed's in
  brackets); latent PSNR likewise on the model-space latents (peak = twice the reference's largest magnitude);
  SSIM of the decoded images (Gaussian window 11, sigma 1.5), mean over seeds.
- EasyCache: ComfyUI 0.3.75's EasyCache adds its cached difference to the diffusion model's input in place; with a
  float32 flow model that input is `apply_model`'s own `x`, so its denoised output would be computed from the
  modified tensor (8-12 dB at every threshold before the fix). The benchmark hands the diffusion model a copy of
  its input (a DIFFUSION_MODEL wrapper on every configuration, the reference included), which a bf16/fp16 model
  gets anyway from ComfyUI's dtype cast.
- Wall time: each configuration's first seeds are run right after a fresh uncached run of the same seed; speed-up
  = median uncached time / median configuration time. The `none` row's "speed-up" compares the uncached run with
  itself: its distance from 1.00x is the timing noise of the run. On this tiny model a step costs milliseconds, so
  sampling overhead outside the model (ComfyUI's sampler, CFG, the wrappers) is a large share of the time.
- Cache memory: the pack's run report (peak bytes of its forecast factors); EasyCache / LazyCache: bytes of the
  tensors their holder keeps, the largest seen at the end of a model call. Peak memory: torch has no CPU peak
  counter, so the CSV gives the growth of the process's peak RSS (`ru_maxrss`) during a configuration's runs;
  it is 0 once earlier runs set the peak, so it is a coarse upper bound at best, not a per-method figure.
- Forecast overhead: median time of a model call whose last block did not run / median time of one where it ran
  (outermost APPLY_MODEL wrapper). TaylorSeer residual still runs the first block on forecast steps; `output`
  and EasyCache run no block; LazyCache skips the model call itself (n/a).
"""


def write(rows: list[dict], out: Path, command: str, machine: str, seconds: float, threads: int,
          plot_png: bool = True, notes: tuple[str, ...] = ()) -> None:
    """``out/benchmarks.md`` (and ``out/pareto.png`` when ``plot_png``); ``notes``: extra lines after the
    command (the grid, conditions)."""
    out.mkdir(parents=True, exist_ok=True)
    first = rows[0]
    text = [
        "# Benchmarks (CPU): TaylorSeer / CG-Taylor against ComfyUI's EasyCache and LazyCache", "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {machine}. torch threads: {threads}. "
        f"Run time: {seconds / 60:.1f} min. Command (host Python, repository root):", "",
        f"```bash\n{command}\n```", "",
        f"{first['seeds']} seeds per configuration (digit = seed mod 10, 2 images a run, cfg 4); wall time: "
        f"median of {first['timed_pairs']} (uncached, configuration) pairs run back to back. Columns are "
        "explained in `demo/benchmark.py`; every number is also in `benchmarks.csv`.", "", *notes, "",
        MEASURED, "![Pareto](pareto.png)", ""]
    for setting in settings(rows):
        group = [r for r in rows if (r["arch"], r["sampler"], r["steps"]) == setting]
        text += [f"## {setting[0]}, {setting[1]}, {setting[2]} steps", "",
                 "TaylorSeer: best order per level and interval (all orders in the CSV); the gate and the peers: "
                 "every threshold.", ""]
        text += row_table([r for r in group if r["method"] == "none"] + best_per_interval(group)
                          + [r for r in group if r["method"] not in ("none", "taylorseer")])
        for x in X_AXES:
            lines, above, below = comparison(rows, setting, x)
            text += ["", f"Pack frontier against the peers' frontiers at equal {X_AXES[x]}:", ""] + lines
            text += ["", f"- Above every peer curve that reaches the same {X_AXES[x]}: " + ("; ".join(above) or "none"),
                     f"- Below a peer curve at the same {X_AXES[x]}: " + ("; ".join(below) or "none")]
        text.append("")
    text += ["## Forecast overhead", "",
             "Median time of a model call whose last block did not run over the median time of one where it ran "
             "(outermost APPLY_MODEL wrapper; LazyCache skips whole evaluations before the model call: n/a).", ""]
    text += overhead_lines(rows) + ["", gpu_section(out / "benchmarks.md")]  # the GPU section is kept
    (out / "benchmarks.md").write_text("\n".join(text).rstrip("\n") + "\n")
    if plot_png:
        plot(rows, out / "pareto.png")
