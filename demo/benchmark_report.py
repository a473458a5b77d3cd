"""Markdown tables, the Pareto comparison and the plot of ``demo/benchmark.py``'s rows (plain dicts, CSV columns)."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

PACK_DEFAULT = ("output", "newton", 1)
"""The pack's default (level, forecaster, order): ``ForecastConfig``'s, checked by the tests."""
BUDGET_WARMUP = 1
"""The warm-up the nodes' auto ``warmup_steps`` gives with a budget (``nodes/config.py``), checked by the tests."""
TARGET_BUDGETS = (2.0, 2.5, 3.0, 3.75, 5.0, 6.0)
WARMUP = 3  # the benchmark's warm-up, unless a row says otherwise
TAYLOR_RATIO = 3.75  # the 5x target is checked against the best published Taylor setting at this compute ratio


def is_budget(row: dict) -> bool:
    return bool(row.get("target_speedup"))


def pack(level: str, forecaster: str | None = None, budget: bool | None = None):
    """A row filter: TaylorSeer Apply at ``level`` (with ``forecaster``; budgets only / intervals only)."""
    return lambda r: (r["method"] == "taylorseer" and r["level"] == level
                      and forecaster in (None, r["forecaster"] or "newton")
                      and budget in (None, is_budget(r)))


def published(r: dict) -> bool:
    """A reference as published: Taylor orders 0-2 (the pack's newton at output on fixed intervals),
    FoCa and HiCache on fixed intervals, Spectrum on fixed intervals or its own growing windows."""
    if r["method"] == "taylorseer":
        return r["level"] == "output" and (r["forecaster"] or "newton") == "newton" and not is_budget(r) \
            and r["max_order"] <= 2
    return r["method"] == "reference" and not is_budget(r)


def cachedit(name: str):
    """A row filter: cache-dit's calibrator ``name`` (``demo/ref_cachedit.py``) on the budget plans."""
    return lambda r: r["method"] == "reference" and r["forecaster"] == f"cachedit_{name}" and is_budget(r)


def calibrated(r: dict) -> bool:
    """TaylorSeer Apply with ``calibration = auto`` and only the budget set."""
    return r["method"] == "calibrated"


def equal_calls(r: dict) -> bool:
    """The equal-call baseline: the uncached model with ``round(steps / x)`` steps."""
    return r["method"] == "equal_calls"


def on_budget_plans(r: dict) -> bool:
    """A reference on the pack's budget plans (isolates the predictor from the schedule)."""
    return (r["method"] == "reference" or pack("output", "newton")(r)) and is_budget(r)


CURVES = {  # curve name -> row filter (within one setting)
    "Taylor today (newton O0-2, intervals)": lambda r: published(r) and r["method"] == "taylorseer",
    "pack output newton budget": pack("output", "newton", True),
    "pack output hermite budget": pack("output", "hermite", True),
    "pack output foca budget": pack("output", "foca", True),
    "pack output spectral budget": pack("output", "spectral", True),
    "pack output auto budget": pack("output", "auto", True),
    "pack residual budget": pack("residual", None, True),
    "pack calibrated (budget, calibration = auto)": calibrated,
    "reference FoCa (intervals)": lambda r: published(r) and r["forecaster"] == "foca" and r["method"] == "reference",
    "reference HiCache (intervals)": lambda r: published(r) and r["forecaster"] == "hicache",
    "reference Spectrum (intervals, own)": lambda r: published(r) and r["forecaster"] == "spectrum",
    "cache-dit TaylorSeer (budget plans)": cachedit("taylorseer"),
    "cache-dit FoCa (budget plans)": cachedit("foca"),
    "cache-dit DMD (budget plans)": cachedit("dmd"),
    "equal-call baseline (round(steps / x) steps)": equal_calls,
    "CG-Taylor": lambda r: r["method"] == "cg_taylor" and not is_budget(r),
    "CG-Taylor budget": lambda r: r["method"] == "cg_taylor" and is_budget(r),
    "EasyCache": lambda r: r["method"] == "easycache",
    "LazyCache": lambda r: r["method"] == "lazycache",
}
PEERS = ("EasyCache", "LazyCache")
X_AXES = {"speedup_median": "wall-time speed-up", "compute_ratio": "compute ratio"}


TEXT_COLUMNS = ("arch", "sampler", "method", "level", "forecaster", "label")
GPU_BEGIN, GPU_END = "<!-- GPU section: written by demo/gpu_benchmark.py -->", "<!-- end of GPU section -->"
KEPT_BEGIN = "<!-- kept section: a separate run's, kept by demo/benchmark.py -->"
KEPT_END = "<!-- end of kept section -->"


def gpu_section(path: Path, begin: str = GPU_BEGIN, end: str = GPU_END) -> str:
    """The GPU section (or the one between ``begin`` and ``end``) of an existing ``benchmarks.md``, markers
    included ('' when none)."""
    text = path.read_text() if path.is_file() else ""
    start, stop = text.find(begin), text.find(end)
    return text[start:stop + len(end)] if 0 <= start < stop else ""


def splice_gpu_section(path: Path, section: str) -> None:
    """Put ``section`` (Markdown, with or without the markers) in ``path`` as its GPU section: in place of the old
    one, else appended."""
    block = f"{GPU_BEGIN}\n{section.replace(GPU_BEGIN, '').replace(GPU_END, '').strip()}\n{GPU_END}"
    old = gpu_section(path)
    text = path.read_text() if path.is_file() else ""
    path.write_text(text.replace(old, block) if old else (text.rstrip("\n") + "\n\n" + block).lstrip("\n") + "\n")


def read_csv(path: Path, text_columns: tuple[str, ...] = TEXT_COLUMNS,
             int_columns: tuple[str, ...] = ("steps", "seeds", "timed_pairs", "warmup")) -> list[dict]:
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


def in_setting(rows: list[dict], setting: tuple) -> list[dict]:
    return [r for r in rows if (r["arch"], r["sampler"], r["steps"]) == setting]


def curve_rows(rows: list[dict], setting: tuple, curve: str) -> list[dict]:
    return [r for r in in_setting(rows, setting) if CURVES[curve](r)]


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


def plan_key(r: dict) -> tuple:
    return (r["interval"] if not is_budget(r) else None, r["target_speedup"] or 0.0)


def plan_name(r: dict) -> str:
    return f"x{r['target_speedup']:g}" if is_budget(r) else f"N={int(r['interval'])}"


def column_of(r: dict) -> str | None:
    """The plan matrix's column of a pack or reference row on an interval or budget plan (None: not in it)."""
    warmup = f" w{int(r['warmup'])}" if r.get("warmup") not in (None, WARMUP) else ""
    if r["method"] == "taylorseer":
        return f"{r['level']} {r['forecaster'] or 'newton'} O{int(r['max_order'])}{warmup}"
    if r["method"] == "reference" and (r["interval"] is not None or is_budget(r)):
        return f"ref {r['forecaster']}{warmup}"
    if calibrated(r):
        return f"calibrated{warmup}"
    return "equal calls" if equal_calls(r) else None


def plan_matrix(group: list[dict]) -> list[str]:
    """PSNR (dB) per plan (rows: intervals, then budgets) and forecaster (columns), one (model, sampler)."""
    cells: dict = {}
    plans: dict = {}
    for r in group:
        column = column_of(r)
        if column is not None:
            cells[(plan_key(r), column)] = r
            plans.setdefault(plan_key(r), r)
    columns = list(dict.fromkeys(column_of(r) for r in group if column_of(r) is not None))
    lines = [f"| plan | full / run | compute ratio | {' | '.join(columns)} |", "|---" * (len(columns) + 3) + "|"]
    for key, first in plans.items():
        best = max((cells[(key, c)]["psnr_db"] for c in columns if (key, c) in cells), default=None)
        values = [cells.get((key, c)) for c in columns]
        text = [("**" + fmt(v["psnr_db"]) + "**" if v["psnr_db"] == best else fmt(v["psnr_db"])) if v else "n/a"
                for v in values]
        lines.append(f"| {plan_name(first)} | {fmt(first['full_mean'], 1)} | {fmt(first['compute_ratio'])}x | "
                     + " | ".join(text) + " |")
    return lines


def fixed_pack(r: dict) -> bool:
    """A fixed setting of the pack's own grid: TaylorSeer Apply (any level, forecaster, order, warm-up) or the
    CG-Taylor Gate, not calibrated."""
    return r["method"] in ("taylorseer", "cg_taylor")


def targets(rows: list[dict], setting: tuple, default: tuple = PACK_DEFAULT) -> list[dict]:
    """Per target budget: the pack default's row, the calibrated row, the best fixed setting of the pack's grid
    on that budget, the best published reference computing no more (ratio at least the default's), the best
    reference on the very same plan, the equal-call baseline, and the default's margin over those references;
    plus the 5x check against the best published Taylor setting at ``TAYLOR_RATIO``."""
    group = in_setting(rows, setting)
    level, forecaster, order = default
    taylor = frontier([r for r in group if published(r) and r["method"] == "taylorseer"], "compute_ratio")
    taylor_psnr = psnr_at(taylor, "compute_ratio", TAYLOR_RATIO)
    out = []
    for x in TARGET_BUDGETS:
        mine = [r for r in group if pack(level, forecaster, True)(r) and r["max_order"] == order
                and r["target_speedup"] == x and r["warmup"] == BUDGET_WARMUP]
        if not mine:
            continue
        r = mine[0]
        ratio = r["compute_ratio"]
        published_best = max((p for p in group if published(p) and p["compute_ratio"] >= ratio - 1e-9),
                             key=lambda p: p["psnr_db"], default=None)
        same_plan = max((p for p in group if on_budget_plans(p) and p["target_speedup"] == x
                         and p["warmup"] == r["warmup"] and p is not r), key=lambda p: p["psnr_db"], default=None)
        equal = next((p for p in group if equal_calls(p) and p["target_speedup"] == x), None)
        best_fixed = max((p for p in group if fixed_pack(p) and p["target_speedup"] == x),
                         key=lambda p: p["psnr_db"])
        rivals = [p["psnr_db"] for p in (published_best, same_plan, equal) if p is not None]
        out.append({"budget": x, "row": r, "published": published_best, "same_plan": same_plan, "equal": equal,
                    "calibrated": next((p for p in group if calibrated(p) and p["target_speedup"] == x), None),
                    "best_fixed": best_fixed,
                    "margin": r["psnr_db"] - max(rivals) if rivals else None,
                    "taylor": taylor_psnr if x == 5.0 else None})
    return out


def target_lines(rows: list[dict], default: tuple = PACK_DEFAULT) -> list[str]:
    """The issue's targets, one line per (setting, budget)."""
    lines = ["| model | sampler | budget | default: ratio, PSNR dB | best fixed pack setting | default - best "
             "fixed | calibrated | calibrated - best fixed | best published reference computing no more | best "
             "reference on the same plan | equal-call baseline | margin dB (>= 2?) | today's best Taylor at 3.75x |",
             "|---" * 13 + "|"]
    for setting in settings(rows):
        for t in targets(rows, setting, default):
            r, pub, same, equal = t["row"], t["published"], t["same_plan"], t["equal"]
            best, tuned = t["best_fixed"], t["calibrated"]

            def show(p):
                return "n/a" if p is None else f"{p['label']}: {fmt(p['psnr_db'])} ({fmt(p['compute_ratio'])}x)"

            def above_best(p, best=best):
                return "n/a" if p is None else f"{p['psnr_db'] - best['psnr_db']:+.2f}"

            margin = "n/a" if t["margin"] is None else f"{t['margin']:+.2f} ({'yes' if t['margin'] >= 2 else 'no'})"
            taylor = "" if t["taylor"] is None else (
                f"{fmt(t['taylor'])} ({'met' if r['psnr_db'] >= t['taylor'] else 'missed'} at 5x)")
            lines.append(f"| {setting[0]} | {setting[1]} | x{t['budget']:g} | {fmt(r['compute_ratio'])}x, "
                         f"{fmt(r['psnr_db'])} | {show(best)} | {above_best(r)} | "
                         f"{'n/a' if tuned is None else fmt(tuned['psnr_db'])} | {above_best(tuned)} | {show(pub)} | "
                         f"{show(same)} | {show(equal)} | {margin} | {taylor} |")
    return lines


def comparison(rows: list[dict], setting: tuple, x: str) -> tuple[list[str], list[str], list[str]]:
    """(table lines, pack configurations above both peers, ones below a peer) for the pack's frontier points."""
    fronts = {peer: frontier(curve_rows(rows, setting, peer), x) for peer in PEERS}
    lines = [f"| configuration | {X_AXES[x]} | PSNR dB | EasyCache PSNR at same x | LazyCache PSNR at same x |",
             "|---|---|---|---|---|"]
    above, below = [], []
    for curve in CURVES:
        if curve in PEERS or not (curve.startswith("pack") or curve.startswith("CG")):
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
    lines = ["| model | sampler | method / level / forecaster | forecast overhead (median over configurations) | "
             "configurations |", "|---|---|---|---|---|"]
    groups: dict = {}
    for r in rows:
        if r["forecast_overhead"] is not None:
            key = (r["arch"], r["sampler"], r["method"], r["level"], r.get("forecaster") or "")
            groups.setdefault(key, []).append(r["forecast_overhead"])
    for (arch, sampler, method, level, forecaster), values in groups.items():
        lines.append(f"| {arch} | {sampler} | {' '.join(v for v in (method, level, forecaster) if v)} | "
                     f"{statistics.median(values):.3f} | {len(values)} |")
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
            colors = plt.get_cmap("tab20")
            for k, curve in enumerate(CURVES):
                points = [r for r in curve_rows(rows, setting, curve)
                          if r[x] is not None and math.isfinite(r["psnr_db"])]
                if not points:
                    continue
                color = colors(k % 20)
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
- References: FoCa, HiCache and Spectrum as published, each in its own module (`demo/ref_foca.py`,
  `ref_hicache.py`, `ref_spectrum.py`, citing the paper and formula), run inside the same KSampler runs by
  `demo/ref_runner.py` (an APPLY_MODEL wrapper forecasting the model output, per conditioning batch, on the integer
  step clock) on the very plans the pack runs (the same full steps), and Spectrum also on its own growing windows.
  cache-dit's own `TaylorSeerCalibrator`, `FoCaCalibrator` and `DMDCalibrator` (PyPI `cache-dit`, unmodified;
  `demo/ref_cachedit.py`) run the same way, fed as cache-dit's cache context feeds them, when installed.
- Equal-call baseline: the uncached model sampled with round(steps / x) steps (same sampler, scheduler and seed),
  at every budget x, scored against the full uncached run like every configuration.
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
        "# Benchmarks (CPU): the pack's forecasters and budgets against FoCa, HiCache, Spectrum, EasyCache and "
        "LazyCache", "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {machine}. torch threads: {threads}. "
        f"Run time: {seconds / 60:.1f} min. Command (host Python, repository root):", "",
        f"```bash\n{command}\n```", "",
        f"{first['seeds']} seeds per configuration (digit = seed mod 10, 2 images a run, cfg 4); wall time: "
        f"median of {first['timed_pairs']} (uncached, configuration) pairs run back to back. Columns are "
        "explained in `demo/benchmark.py`; every number is also in `benchmarks.csv`.", "", *notes, "",
        MEASURED, "![Pareto](pareto.png)", ""]
    for setting in settings(rows):
        group = in_setting(rows, setting)
        text += [f"## {setting[0]}, {setting[1]}, {setting[2]} steps", "",
                 "PSNR dB of every forecaster (columns: the pack's level, forecaster and order; `ref`: the published "
                 "forecasters, `demo/ref_*.py`) on every plan (N = interval, x = target_speedup budget; the same "
                 "plan computes the same steps for every column); the row's best in bold. Every other column is "
                 "in the CSV.", ""]
        base = [r for r in group if r.get("warmup") in (None, WARMUP) and column_of(r) is not None]
        if base:
            text += [f"Warm-up {WARMUP} (TaylorSeer's):", ""] + plan_matrix(base)
        other = [r for r in group if r.get("warmup") not in (None, WARMUP)]
        if other:
            text += ["", "Budget plans at other warm-ups (`wN`: warmup_steps N; w1: the nodes' auto warm-up with a "
                     "budget):", ""] + plan_matrix(other)
        text += ["", "Spectrum on its own schedule, the gate and the peers:", ""]
        text += row_table([r for r in group if r["method"] == "none" or (r["method"] not in ("taylorseer",)
                                                                         and column_of(r) is None)])
        for x in X_AXES:
            lines, above, below = comparison(rows, setting, x)
            text += ["", f"Pack frontier against the peers' frontiers at equal {X_AXES[x]}:", ""] + lines
            text += ["", f"- Above every peer curve that reaches the same {X_AXES[x]}: " + ("; ".join(above) or "none"),
                     f"- Below a peer curve at the same {X_AXES[x]}: " + ("; ".join(below) or "none")]
        text.append("")
    text += ["## Targets", "",
             f"The pack's default ({' / '.join(map(str, PACK_DEFAULT))}: level, forecaster, order; warm-up "
             f"{BUDGET_WARMUP}, the auto warm-up with a budget) on the budgets "
             f"{', '.join(f'x{b:g}' for b in TARGET_BUDGETS)} against the best fixed setting of the pack's grid on "
             "that budget (TaylorSeer Apply at any level, forecaster, order and warm-up, or the gate with that "
             "budget; picked in hindsight, on these seeds), next to TaylorSeer Apply calibrated (calibration = auto, "
             "each prompt calibrated on other seeds), and against the references: published = today's Taylor "
             "orders 0-2 (newton at output, fixed intervals), FoCa and HiCache on fixed intervals, Spectrum on "
             "fixed intervals or its own windows, the best of those that compute no more than the default; same "
             "plan = the references (and newton orders 0-2) on the default's very plan; equal-call baseline = the "
             "uncached model with round(steps / x) steps. Margin: the default's PSNR minus the best of the three.", ""]
    text += target_lines(rows) + [""]
    text += ["## Forecast overhead", "",
             "Median time of a model call whose last block did not run over the median time of one where it ran "
             "(outermost APPLY_MODEL wrapper; LazyCache skips whole evaluations before the model call: n/a).", ""]
    kept = (gpu_section(out / "benchmarks.md", KEPT_BEGIN, KEPT_END), gpu_section(out / "benchmarks.md"))
    text += overhead_lines(rows) + [line for section in kept if section for line in ("", section)]
    (out / "benchmarks.md").write_text("\n".join(text).rstrip("\n") + "\n")
    if plot_png:
        plot(rows, out / "pareto.png")
