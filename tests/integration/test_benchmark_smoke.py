"""``demo/benchmark.py`` end to end on a tiny grid (the Wan demo model, 1 seed, 8 steps): the CSV's columns, the
reference row (exact, ratio 1), a TaylorSeer row that skips blocks, the peers' rows, the Markdown and the plot."""

from __future__ import annotations

import csv

STEPS = 8


def test_benchmark_tiny_grid(host, tmp_path):
    import benchmark

    benchmark.main(["--archs", "wan", "--samplers", "euler", "--steps", str(STEPS), "--seeds", "1", "--timed", "1",
                    "--levels", "residual", "--thin-orders", "1", "--thin-intervals", "3", "--gate", "",
                    "--peers", "0.2", "--out", str(tmp_path)])
    with (tmp_path / "benchmarks.csv").open() as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == benchmark.COLUMNS
        rows = {row["method"]: row for row in reader}
    assert set(rows) == {"none", "taylorseer", "easycache", "lazycache"}
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
    assert "## wan, euler, 8 steps" in text and "TaylorSeer residual N=3 O=1" in text
    assert (tmp_path / "pareto.png").stat().st_size > 0
