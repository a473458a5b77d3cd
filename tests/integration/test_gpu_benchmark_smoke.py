"""``demo/gpu_benchmark.py`` on its tiny models (CPU, 10 steps): the full-size configurations are what ComfyUI's
own detection writes for checkpoints of those shapes, every configuration makes the full computes its schedule
says (the gate forced to a ratio by its cap included), and the GPU section is spliced into ``benchmarks.md``
without touching the CPU part or repeating itself."""

from __future__ import annotations

import pytest
import torch
from test_flux_taylorseer import full_steps

STEPS = 10


@pytest.mark.parametrize("name", ["flux", "wan"])
def test_full_size_configs_are_what_comfyui_detects(host, name):
    import comfy.model_detection
    import gpu_benchmark
    import model_builder

    spec = gpu_benchmark.MODELS[name]
    model_config = comfy.model_detection.model_config_from_unet_config(spec.unet_config())
    model_config.set_inference_dtype(torch.bfloat16, None)
    state_dict = model_config.get_model({}, "", device=torch.device("meta")).diffusion_model.state_dict()
    detected = comfy.model_detection.detect_unet_config(state_dict, "")
    assert {k: detected.get(k) for k in spec.unet} == spec.unet
    # what a newer ComfyUI's detection writes beyond the spec: its new arguments, each with the feature left off
    off = model_builder.feature_off_values(model_builder.class_at(spec.cls))
    assert {k: v for k, v in detected.items() if k not in spec.unet} == {k: off[k] for k in detected
                                                                           if k not in spec.unet}


def test_tiny_run_counts_and_markdown(host, tmp_path):
    import benchmark_report
    import gpu_benchmark

    cpu_part = "# Benchmarks (CPU)\n\nthe CPU tables\n"
    (tmp_path / "benchmarks.md").write_text(cpu_part)
    common = ["--tiny", "--device", "cpu", "--steps", str(STEPS), "--repeats", "1", "--intervals", "4",
              "--orders", "1", "--easycache", "0.3", "--out", str(tmp_path)]
    gpu_benchmark.main(["--models", "flux", "--profile", *common])
    gpu_benchmark.main(["--models", "wan", *common])
    rows = gpu_benchmark.read_csv(tmp_path / "benchmarks_gpu.csv")
    per_model = len(gpu_benchmark.configs([4], [1], [0.3]))
    assert [r["model"] for r in rows] == ["tiny flux"] * per_model + ["tiny wan"] * per_model  # flux rows kept
    expected = len(full_steps(STEPS, 4, 3, 1))
    for row in rows:
        if row["method"] == "none":
            assert row["full_mean"] == STEPS and row["compute_ratio"] == 1.0
        elif row["method"] in ("taylorseer", "cg_taylor"):
            assert row["full_mean"] == expected, row["label"]
        assert row["fallbacks"] == 0 and row["speedup"] > 0
    text = (tmp_path / "benchmarks.md").read_text()
    assert text.startswith(cpu_part)
    assert text.count(benchmark_report.GPU_BEGIN) == 1 and text.count(benchmark_report.GPU_END) == 1
    assert "### tiny flux, 10 steps" in text and "### tiny wan, 10 steps" in text
    assert "- tiny wan, 10 steps, interval 4: one block" in text  # where the time goes
    assert "profile_flux_taylorseer4.txt" in text and (tmp_path / "profile_flux_none.txt").is_file()
