"""GPU benchmark: latency, compute ratio and GPU memory of TaylorSeer Apply, the CG-Taylor Gate and ComfyUI's own
EasyCache on full-size FLUX.1-dev and Wan 2.1 1.3B architectures: ComfyUI's own model classes, picked by its own
``model_config_from_unet_config``, with random bf16 weights (latency does not depend on the weights, so nothing
is downloaded). Fidelity is not measured here: random weights draw no picture (see ``benchmark.py``).

``python demo/gpu_benchmark.py [--models flux,wan] [--steps 28,50] [--repeats 3] [--out docs]`` (a Python with
CUDA torch and ComfyUI's requirements; ComfyUI from ``--comfyui``, ``$COMFYUI_PATH`` or the repository's host).
``--tiny`` builds small models of the same classes and runs on any device (the test suite's smoke test).

Per (model, steps) and configuration: full computes per run (real calls of the last block, forward hook),
compute ratio (model calls / full computes), latency (median of ``--repeats`` runs; the rounds interleave every
configuration, the reference first), speed-up (reference median / configuration median), efficiency (speed-up /
compute ratio: 1 when a skipped step costs nothing), median per-call time of full and of skipped calls (CUDA
events around each call: no added synchronization), peak allocated GPU memory above the reference's, the cache's
own bytes, and fallbacks (steps redone in full after a non-finite forecast; none is expected). ``--profile`` adds
a torch.profiler run of the reference and of one configuration: where the time goes, and the top ops.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import benchmark  # noqa: E402
import benchmark_report  # noqa: E402
import comfy_env  # noqa: E402
import model_builder  # noqa: E402
from benchmark import Config, floats, ints  # noqa: E402
from benchmark_report import fmt  # noqa: E402

COLUMNS = ["model", "steps", "method", "level", "interval", "max_order", "threshold", "max_consecutive", "label",
           "full_mean", "compute_ratio", "latency_s", "latency_ref_s", "speedup", "efficiency", "full_call_ms",
           "skipped_call_ms", "added_peak_mib", "cache_mib", "fallbacks", "repeats", "device", "date", "command"]
TEXT_COLUMNS = ("model", "method", "level", "label", "device", "date", "command")


@dataclass(frozen=True)
class ModelSpec:
    """A model to time: ComfyUI's ``unet_config`` (as its detection writes it for the released checkpoint, less the
    arguments newer ComfyUI versions added for features it does not use: ``unet_config()`` completes them), the
    diffusion-model class it builds (``cls``, a dotted path) and the sampling inputs. Shapes: ``latent`` is the
    empty latent ``[B, C, (T,) H, W]``; ``context`` (tokens, width)."""

    unet: dict
    cls: str
    latent: tuple[int, ...]
    context: tuple[int, int]
    cfg: float
    pooled: int = 0  # width of Flux's pooled CLIP vector (0: none)
    guidance: float | None = None  # Flux's distilled guidance
    note: str = ""

    def unet_config(self) -> dict:
        """``unet`` completed for this ComfyUI's constructor of ``cls`` (``model_builder.completed_params``)."""
        return model_builder.completed_params(model_builder.class_at(self.cls), self.unet)


FLUX_DEV = ModelSpec(
    {"image_model": "flux", "in_channels": 16, "out_channels": 16, "vec_in_dim": 768, "context_in_dim": 4096,
     "hidden_size": 3072, "mlp_ratio": 4.0, "num_heads": 24, "depth": 19, "depth_single_blocks": 38,
     "axes_dim": [16, 56, 56], "theta": 10000, "patch_size": 2, "qkv_bias": True, "guidance_embed": True},
    "comfy.ldm.flux.model.Flux", latent=(1, 16, 128, 128), context=(512, 4096), cfg=1.0, pooled=768, guidance=3.5,
    note="FLUX.1-dev size (11.9B parameters), 1024x1024, 512 text tokens, guidance 3.5, cfg 1 (one call a step)")
WAN_1_3B = ModelSpec(
    {"image_model": "wan2.1", "model_type": "t2v", "dim": 1536, "out_dim": 16, "num_heads": 12, "ffn_dim": 8960,
     "num_layers": 30, "patch_size": (1, 2, 2), "freq_dim": 256, "window_size": (-1, -1), "qk_norm": True,
     "cross_attn_norm": True, "eps": 1e-6, "in_dim": 16},
    "comfy.ldm.wan.model.WanModel", latent=(1, 16, 9, 60, 104), context=(512, 4096), cfg=5.0,
    note="Wan 2.1 T2V 1.3B size (1.42B parameters), 832x480 x 33 frames, 512 text tokens, cfg 5 (cond and uncond "
         "in one batch)")
MODELS = {"flux": FLUX_DEV, "wan": WAN_1_3B}
WARMUP_STEPS = 8
LEVELS = ("residual", "output", "modules")
TINY = {  # the same classes, small: for the CPU smoke test
    "flux": replace(FLUX_DEV, unet={**FLUX_DEV.unet, "context_in_dim": 64, "hidden_size": 128, "num_heads": 2,
                                    "depth": 2, "depth_single_blocks": 2, "axes_dim": [16, 24, 24]},
                    latent=(1, 16, 16, 16), context=(16, 64), note="tiny Flux"),
    "wan": replace(WAN_1_3B, unet={**WAN_1_3B.unet, "dim": 128, "num_heads": 1, "ffn_dim": 256, "num_layers": 2,
                                   "text_dim": 64},
                   latent=(1, 16, 3, 16, 16), context=(16, 64), note="tiny Wan 2.1"),
}


def configs(intervals: list[int], orders: list[int], easycache: list[float]) -> list[Config]:
    """The reference, TaylorSeer at each level, the gate forced to a ratio (threshold 10, the
    input's maximum, so only its cap of interval - 1 consecutive forecasts stops forecasting) and EasyCache."""
    grid = [Config("none")]
    grid += [Config("taylorseer", level, n, o) for level in LEVELS for n in intervals for o in orders]
    grid += [Config("cg_taylor", "residual", threshold=10.0, max_consecutive=n - 1) for n in intervals]
    grid += [Config("easycache", threshold=t) for t in easycache]
    return grid


def build(spec: ModelSpec, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """A ModelPatcher of ComfyUI's model class for ``spec.unet`` on ``device``, weights drawn at random (fan-in
    scaled normal for matrices, ones for norm scales, zeros for biases), so activations stay finite in bf16."""
    import comfy.model_detection
    import comfy.model_patcher

    model_config = comfy.model_detection.model_config_from_unet_config(spec.unet_config())
    if model_config is None:
        raise SystemExit(f"ComfyUI found no model class for {spec.unet}")
    model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model({}, "", device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, param in model.diffusion_model.named_parameters():
            if param.ndim >= 2:
                param.normal_(0.0, param[0].numel() ** -0.5, generator=generator)
            else:
                param.fill_(1.0 if "norm" in name or name.endswith("scale") else 0.0)
    model.diffusion_model.to(device)
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


def conditioning(spec: ModelSpec, seed: int) -> tuple[list, list]:
    """(positive, negative) conditioning of random text embeddings (a pooled vector and guidance for Flux)."""
    generator = torch.Generator().manual_seed(seed)

    def cond() -> list:
        extra: dict = {}
        if spec.pooled:
            extra["pooled_output"] = torch.randn(1, spec.pooled, generator=generator)
        if spec.guidance is not None:
            extra["guidance"] = spec.guidance
        return [[torch.randn(1, *spec.context, generator=generator), extra]]

    return cond(), cond()


def cuda_mark() -> torch.cuda.Event:
    """A timing event recorded on the current stream (no synchronization)."""
    event = torch.cuda.Event(enable_timing=True)
    event.record()
    return event


def cuda_elapsed(start: torch.cuda.Event, end: torch.cuda.Event) -> float:
    """Seconds between two recorded events (both finished: call after synchronizing)."""
    return start.elapsed_time(end) / 1000


class GpuHarness(benchmark.Probed):
    """One model, probed; ``sample`` runs the real KSampler node (euler, simple) and times it synchronized."""

    def __init__(self, name: str, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> None:
        self.name, self.spec, self.device = name, spec, device
        self.cuda = device.type == "cuda"
        if self.cuda:
            super().__init__(build(spec, device, dtype), cuda_mark, cuda_elapsed)
        else:
            super().__init__(build(spec, device, dtype))
        self.positive, self.negative = conditioning(spec, seed=1)

    def sample(self, model, steps: int, seed: int = 0) -> tuple[torch.Tensor, float, benchmark.Probe, int]:
        """(latent samples, seconds, probe, peak allocated bytes) of one run."""
        import nodes

        self.probe = benchmark.Probe()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        (result,) = nodes.NODE_CLASS_MAPPINGS["KSampler"]().sample(
            model, seed, steps, self.spec.cfg, "euler", "simple", self.positive, self.negative,
            {"samples": torch.zeros(self.spec.latent)})
        if self.cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() if self.cuda else 0
        return result["samples"], seconds, self.finish(), peak


@dataclass
class Runs:
    """What a configuration's runs measured: per run (seconds, full computes, model calls, peak allocated bytes), per
    call (full and skipped call seconds), and the largest cache bytes and fallback count seen."""

    seconds: list[float] = field(default_factory=list)
    full: list[int] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    full_call_s: list[float] = field(default_factory=list)
    skipped_call_s: list[float] = field(default_factory=list)
    cache_bytes: int = 0
    fallbacks: int = 0


def _median_ms(values: list[float]) -> float | None:
    return statistics.median(values) * 1000 if values else None


def measure(h: GpuHarness, grid: list[Config], steps: int, repeats: int, progress, meta: dict,
            warm_up: bool = True) -> list[dict]:
    """Every configuration ``repeats`` times, round-robin (each round: the grid in order, the reference first),
    after one untimed warm-up run of each when ``warm_up`` (``WARMUP_STEPS`` steps: past TaylorSeer's warm-up, so
    forecasts run too). ``meta``: the device / date / command columns."""
    patched = [config.make(h.model) for config in grid]
    runs = [Runs() for _ in grid]
    for model in patched if warm_up else ():
        out = h.sample(model, min(steps, WARMUP_STEPS))[0]
        if not torch.isfinite(out).all():
            raise SystemExit(f"{h.name}: non-finite latent from the warm-up run; lower the weights' scale")
    for _ in progress(range(repeats), desc=f"{h.name} {steps} steps", unit="round"):
        for model, r in zip(patched, runs):
            _out, seconds, probe, peak = h.sample(model, steps)
            r.seconds.append(seconds)
            r.full.append(probe.full)
            r.calls.append(len(probe.full_call_s) + len(probe.skipped_call_s))
            r.peaks.append(peak)
            r.full_call_s += probe.full_call_s
            r.skipped_call_s += probe.skipped_call_s
            r.cache_bytes = max(r.cache_bytes, probe.cache_bytes)
            run = probe.run_state
            r.fallbacks = max(r.fallbacks, int(run.stats.fallbacks) if run is not None else 0)
    ref = runs[0]
    rows = []
    for config, r in zip(grid, runs):
        full_mean = float(statistics.mean(r.full))
        ratio = statistics.mean(r.calls) / full_mean
        speedup = statistics.median(ref.seconds) / statistics.median(r.seconds)
        rows.append({
            "model": h.name, "steps": steps, "method": config.method, "level": config.level,
            "interval": config.interval, "max_order": config.max_order, "threshold": config.threshold,
            "max_consecutive": config.max_consecutive or None, "label": config.label, "full_mean": full_mean,
            "compute_ratio": ratio, "latency_s": statistics.median(r.seconds),
            "latency_ref_s": statistics.median(ref.seconds), "speedup": speedup, "efficiency": speedup / ratio,
            "full_call_ms": _median_ms(r.full_call_s), "skipped_call_ms": _median_ms(r.skipped_call_s),
            "added_peak_mib": (max(r.peaks) - max(ref.peaks)) / 2**20, "cache_mib": r.cache_bytes / 2**20,
            "fallbacks": r.fallbacks, "repeats": repeats, **meta,
        })
    return rows


def profile(h: GpuHarness, config: Config, steps: int, out: Path, busy_per_full: float | None = None
            ) -> tuple[str, float]:
    """One run of ``config`` (already warm) under torch.profiler. Writes ``out/profile_<model>_<config>.txt``: a
    summary line, then the top ops by GPU time. The summary: wall time; GPU busy time (the sum of the device's
    kernel times); the time in full calls, in skipped calls and outside the model calls (the sampler, CFG, ComfyUI's
    per-step bookkeeping); with ``busy_per_full`` (the reference's GPU time per call), the GPU time of one skipped
    call. Returns (summary, GPU busy seconds per full call of this run)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    model = config.make(h.model)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if h.cuda else [])
    with torch_profile(activities=activities) as prof:
        _out, seconds, probe, _peak = h.sample(model, steps)
    averages = prof.key_averages()
    busy = sum(e.self_device_time_total for e in averages if e.device_type == DeviceType.CUDA) / 1e6
    full_s, skipped_s = sum(probe.full_call_s), sum(probe.skipped_call_s)
    summary = (f"{h.name}, {steps} steps, {config.label}: wall {seconds:.2f} s (profiled), GPU busy {busy:.2f} s "
               f"({100 * busy / seconds:.0f}%); {probe.full} full calls {full_s:.2f} s, "
               f"{len(probe.skipped_call_s)} skipped calls {skipped_s:.2f} s, outside the model calls "
               f"{seconds - full_s - skipped_s:.2f} s")
    if busy_per_full is not None and probe.skipped_call_s:
        skipped_busy = (busy - probe.full * busy_per_full) / len(probe.skipped_call_s)
        summary += (f"; GPU time of a skipped call ~{1000 * skipped_busy:.1f} ms of its "
                    f"{1000 * statistics.median(probe.skipped_call_s):.1f} ms")
    key = "self_device_time_total" if h.cuda else "self_cpu_time_total"
    name = f"profile_{h.name}_{config.method}{config.interval or ''}.txt"
    (out / name).write_text(summary + "\n" + averages.table(sort_by=key, row_limit=15) + "\n")
    return summary, busy / max(probe.full, 1)


def table(rows: list[dict]) -> list[str]:
    lines = ["| configuration | full / run | compute ratio | latency s | speed-up | efficiency | full call ms | "
             "skipped call ms | added peak MiB | cache MiB | fallbacks |", "|---" * 11 + "|"]
    for r in rows:
        lines.append(f"| {r['label']} | {fmt(r['full_mean'], 1)} | {fmt(r['compute_ratio'])}x | "
                     f"{fmt(r['latency_s'])} | {fmt(r['speedup'])}x | {fmt(r['efficiency'])} | "
                     f"{fmt(r['full_call_ms'], 1)} | {fmt(r['skipped_call_ms'], 1)} | "
                     f"{fmt(r['added_peak_mib'], 0)} | {fmt(r['cache_mib'], 0)} | {int(r['fallbacks'])} |")
    return lines


def read_csv(path: Path) -> list[dict]:
    """Rows of a ``benchmarks_gpu.csv`` back as dicts (``steps`` int); [] when there is none."""
    return benchmark_report.read_csv(path, TEXT_COLUMNS, ("steps",)) if path.is_file() else []


def blocks(spec: ModelSpec) -> int:
    """Transformer blocks of a spec's model (Flux: double + single; Wan: layers)."""
    unet = spec.unet
    return unet.get("depth", 0) + unet.get("depth_single_blocks", 0) + unet.get("num_layers", 0)


def by_setting(rows: list[dict]) -> dict[tuple[str, int], list[dict]]:
    """Rows grouped by (model, steps), in run order."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["steps"]), []).append(r)
    return groups


def time_budget(rows: list[dict], specs: dict[str, ModelSpec]) -> list[str]:
    """Where the time of each (model, steps) goes at the largest interval, order 1, per level: the forecast calls'
    share of the run, the efficiency the run would have if they cost nothing, and one block's time for scale."""
    lines = ["Where the time goes (largest interval, order 1): a forecast call's time against one block's share of "
             "a full call; 'efficiency if free' = the efficiency with the forecast calls' time taken out of the "
             "run (what is left: the full calls, and the sampler's and ComfyUI's own per-step work).", ""]
    for (model, steps), setting in by_setting(rows).items():
        group = [r for r in setting if r["method"] == "taylorseer" and r["max_order"] == 1]
        if not group:
            continue
        interval = max(r["interval"] for r in group)
        ref = next(r for r in setting if r["method"] == "none")
        per_block = ref["full_call_ms"] / blocks(specs[model])
        cells = []
        for r in (r for r in group if r["interval"] == interval and r["skipped_call_ms"] is not None):
            forecast_s = (steps - r["full_mean"]) * r["skipped_call_ms"] / 1000
            free = ref["latency_s"] / (r["latency_s"] - forecast_s) / r["compute_ratio"]
            cells.append(f"{r['level']} {r['skipped_call_ms']:.1f} ms a forecast call, {forecast_s:.2f} s of "
                         f"{r['latency_s']:.2f} s, efficiency {r['efficiency']:.2f} (if free {free:.2f})")
        lines.append(f"- {model}, {steps} steps, interval {interval:.0f}: one block ~{per_block:.1f} ms of a "
                     f"{ref['full_call_ms']:.0f} ms full call; " + "; ".join(cells))
    return lines + [""]


def markdown(rows: list[dict], out: Path) -> str:
    """The GPU section: per (model, steps) its table; the profiles' summary lines from ``out/profile_*.txt``."""
    text = ["## GPU: latency and efficiency", "",
            "Random bf16 weights in ComfyUI's own model classes (latency does not depend on the weights; no picture, "
            "so no fidelity here). Real KSampler node, euler, simple. Latency: median of the repeats, the rounds "
            "interleaving every configuration with the reference. Efficiency = speed-up / compute ratio (1 when a "
            "skipped step costs nothing). Call times: median over calls, CUDA events around each call. Added peak: "
            "peak allocated GPU memory of a run above the uncached run's. The gate is forced to a ratio (threshold "
            "10, cap = interval - 1 consecutive forecasts), since random weights give its probe no meaning. "
            "TaylorSeer: warmup 3, tail 1. Columns are explained in `demo/gpu_benchmark.py`; every number is in "
            "`benchmarks_gpu.csv`.", ""]
    specs = {**MODELS, **{f"tiny {k}": v for k, v in TINY.items()}}
    for (model, steps), group in by_setting(rows).items():
        first = group[0]
        text += [f"### {model}, {steps} steps: {specs[model].note}", "",
                 f"{first['date']}, {first['device']}: `{first['command']}`", ""]
        text += table(group) + [""]
    text += time_budget(rows, specs)
    profiles = sorted(out.glob("profile_*.txt"))
    if profiles:
        text += ["Profiles (torch.profiler, one run each; top ops in the files named):", ""]
        text += [f"- `{p.name}`: {p.read_text().splitlines()[0]}" for p in profiles] + [""]
    return "\n".join(text)


def write(rows: list[dict], out: Path) -> list[dict]:
    """``out/benchmarks_gpu.csv`` (the old file's rows of (model, steps) pairs this run did not measure are kept)
    and the GPU section of ``out/benchmarks.md`` (spliced in, the CPU part kept). Returns the rows written."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "benchmarks_gpu.csv"
    measured = by_setting(rows)
    rows = [r for r in read_csv(path) if (r["model"], r["steps"]) not in measured] + rows
    benchmark_report.write_csv(rows, path, COLUMNS)
    benchmark_report.splice_gpu_section(out / "benchmarks.md", markdown(rows, out))
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="flux,wan", help=f"of {sorted(MODELS)}")
    parser.add_argument("--steps", default="28,50")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--intervals", default="4,6")
    parser.add_argument("--orders", default="1,2")
    parser.add_argument("--easycache", default="0.1,0.3", help="EasyCache reuse thresholds")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the reference and TaylorSeer residual at the last interval, order 1")
    parser.add_argument("--tiny", action="store_true", help="small models of the same classes (any device)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--comfyui", help="ComfyUI folder (default: $COMFYUI_PATH, then the repository's host)")
    parser.add_argument("--out", type=Path, default=comfy_env.REPO / "docs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --tiny --device cpu")
    given = argv if argv is not None else sys.argv[1:]
    comfy_env.boot(args.comfyui, cpu=device.type == "cpu")
    import comfy.model_management
    import comfy.utils
    from tqdm import tqdm

    comfy.utils.set_progress_bar_enabled(False)
    specs = TINY if args.tiny else MODELS
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    intervals, step_counts = ints(args.intervals), ints(args.steps)
    grid = configs(intervals, ints(args.orders), floats(args.easycache))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.machine()})"
    meta = {"device": f"{name}, torch {torch.__version__}", "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "command": "python demo/gpu_benchmark.py " + " ".join(given)}
    rows: list[dict] = []
    for model_name in args.models.split(","):
        h = GpuHarness(model_name, specs[model_name], device, dtype)
        label = f"tiny {model_name}" if args.tiny else model_name
        try:
            for index, steps in enumerate(step_counts):
                new = measure(h, grid, steps, args.repeats, tqdm, meta, warm_up=index == 0)
                for row in new:
                    row["model"] = label
                rows += new
                print("\n".join(table(new)), flush=True)
                write(rows, args.out)  # after every setting: partial results survive
            if args.profile:
                probe_config = Config("taylorseer", "residual", intervals[-1], 1)
                summary, busy_per_full = profile(h, grid[0], step_counts[0], args.out)
                print(summary, flush=True)
                print(profile(h, probe_config, step_counts[0], args.out, busy_per_full)[0], flush=True)
                write(rows, args.out)
        finally:
            h.close()
            comfy.model_management.unload_all_models()  # the next model gets the whole device
            comfy.model_management.soft_empty_cache()
    return rows


if __name__ == "__main__":
    main()
