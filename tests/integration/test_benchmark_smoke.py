"""``demo/benchmark.py`` end to end on a tiny grid (the Wan demo model, 1 seed, 8 steps): the CSV's columns, the
reference row (exact, ratio 1), TaylorSeer rows that skip blocks (an interval and a budget), a published reference
on the very same plans (the same full computes), the gate with a budget, the peers' rows, the equal-call baseline
(the uncached model with round(steps / x) steps: that many real block calls), TaylorSeer Apply calibrated (its
measured runs on the profile made on another seed: the budget's full steps), the Markdown and the plot, and a
separate run's section of the old Markdown kept."""

from __future__ import annotations

import csv

import pytest

STEPS = 8


def test_benchmark_tiny_grid(host, tmp_path, capsys):
    import benchmark
    import benchmark_report
    import folder_paths
    import ref_cachedit

    user = folder_paths.get_user_directory()

    kept = f"{benchmark_report.KEPT_BEGIN}\n## A separate run\n{benchmark_report.KEPT_END}"
    (tmp_path / "benchmarks.md").write_text(f"# old\n\n{kept}\n")
    benchmark.main(["--archs", "wan", "--samplers", "euler", "--steps", str(STEPS), "--seeds", "1", "--timed", "1",
                    "--pack", "output/foca:1", "--plans", "3,x2,x3", "--references", "hicache,cachedit_foca",
                    "--gate", "0.1", "--gate-budgets", "2",
                    "--gate-budget-thresholds", "0.1", "--warmup-pack", "", "--peers", "0.2", "--out", str(tmp_path)])
    with (tmp_path / "benchmarks.csv").open() as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == benchmark.COLUMNS
        every = list(reader)
    rows = {row["method"]: row for row in every}
    assert set(rows) == {"none", "taylorseer", "calibrated", "reference", "cg_taylor", "easycache", "lazycache",
                         "equal_calls"}
    assert folder_paths.get_user_directory() == user  # the run's profiles lived in a directory of its own
    by_label = {row["label"]: row for row in every}
    why = ref_cachedit.available()  # cache-dit lives in the benchmark's own environment only
    assert (f"cache-dit is not importable ({why})" in capsys.readouterr().err) == bool(why)
    assert ("reference cachedit_foca x2" in by_label) != bool(why)
    # the equal-call baseline: round(8 / x) real block calls per run (halves up), against the 8-step run
    for x, calls in ((2, 4), (3, 3)):
        row = by_label[f"equal calls x{x}"]
        assert float(row["full_mean"]) == calls and float(row["compute_ratio"]) == pytest.approx(STEPS / calls, 1e-3)
        assert benchmark.Config("equal_calls", target_speedup=x).sampling_steps(STEPS) == calls
        assert 0 < float(row["psnr_db"]) < float("inf")
    # 8 steps, tail 1; intervals: warmup 3, steps 0-2 and 7 always, N=3 adds step 5; budgets: the nodes' warm-up
    # (1), x2 allows round(8 / 2) = 4
    for plan, full in (("N=3", 5), ("x2 warmup=1", 4)):
        assert float(by_label[f"TaylorSeer output foca {plan} O=1"]["full_mean"]) == full
        assert float(by_label[f"reference hicache {plan}"]["full_mean"]) == full
        assert why or float(by_label[f"reference cachedit_foca {plan}"]["full_mean"]) == full
    assert float(by_label["cg_taylor t=0.1 x2 warmup=1"]["full_mean"]) == 4
    # calibrated: the measured run computes the budget's full steps (a calibration run would compute all 8)
    for x, calls in ((2, 4), (3, 3)):
        row = by_label[f"TaylorSeer calibrated x{x} warmup=1"]
        assert float(row["full_mean"]) == calls and 0 < float(row["psnr_db"]) < float("inf")
    reference = rows["none"]
    assert reference["psnr_db"] == "inf" and reference["latent_psnr_db"] == "inf"
    assert float(reference["compute_ratio"]) == 1.0 and float(reference["full_mean"]) == STEPS
    assert float(reference["ssim"]) == 1.0
    forecast = rows["taylorseer"]
    assert float(forecast["full_mean"]) < STEPS and float(forecast["compute_ratio"]) > 1.0
    assert float(forecast["psnr_db"]) > 0 and int(forecast["cache_bytes"]) > 0
    assert int(rows["easycache"]["cache_bytes"]) > 0  # read from EasyCache's holder
    for row in rows.values():
        assert float(row["speedup_median"]) > 0
    text = (tmp_path / "benchmarks.md").read_text()
    assert "## wan, euler, 8 steps" in text and "| output foca O1 | ref hicache |" in text and "## Targets" in text
    assert "| equal calls |" in text and "| calibrated w1 |" in text
    assert text.count(kept) == 1  # a separate run's section is kept
    assert (tmp_path / "pareto.png").stat().st_size > 0


def test_the_report_measures_the_nodes_defaults(host):
    """The Targets table of docs/benchmarks.md is about the pack's defaults: the report's default setting is
    TaylorSeer Apply's (``ForecastConfig``) level, forecaster and order with the warm-up its auto warm-up gives
    under a budget, and the report's warm-up of the other rows is the benchmark's."""
    import benchmark
    import benchmark_report

    config = host.pack_module("nodes.config")
    defaults = config.ForecastConfig()
    assert benchmark_report.PACK_DEFAULT == (defaults.level, defaults.forecaster, defaults.max_order)
    assert benchmark_report.BUDGET_WARMUP == config.ForecastConfig(target_speedup=3.0).warmup_steps
    assert benchmark_report.WARMUP == benchmark.WARMUP == defaults.warmup_steps
