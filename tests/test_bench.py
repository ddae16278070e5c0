"""``transferlab bench``: a 3-step, 1-repeat run of the CPU case; structure of the JSON only, never timing values."""

from __future__ import annotations

import argparse
import json

import pytest
from transferlab import results as results_mod
from transferlab.perf import fit as bench


def _files(root):
    return sorted(p for p in root.rglob("*")) if root.exists() else []


def test_bench_main_writes_report(tmp_path, capsys):
    out = tmp_path / "sub" / "bench.json"
    before = _files(results_mod.RESULTS_DIR)
    args = argparse.Namespace(out=str(out), steps=3, repeats=1, gpu_only=False, cpu_only=True)
    assert bench.main(args) == 0

    printed = capsys.readouterr().out
    assert "mini_resnet 28x28 b128" in printed and "ratio" in printed and "load average" in printed

    report = json.loads(out.read_text())
    assert report["steps"] == 3 and report["repeats"] == 1 and report["target_ratio"] == bench.TARGET_RATIO
    assert {"cpu_model", "cpu_count", "torch_threads", "gpu"} <= set(report["machine"])
    assert {"git_sha", "torch", "device", "cpu_threads"} <= set(report["provenance"])
    assert set(report["load_average"]) == {"before", "after"}

    (row,) = report["benchmarks"]
    assert row["name"] == "mini_resnet" and row["device"] == "cpu" and row["batch_size"] == 128
    assert row["steps"] == 3 and row["precision"] == "fp32"
    assert len(row["fit_s"]) == len(row["bare_s"]) == len(row["ratios"]) == 1
    assert all(t > 0 for t in row["fit_s"] + row["bare_s"])
    assert row["spread"] >= 1.0 and row["ratio_of_min"] > 0
    assert row["fit_s_median"] > 0 and row["bare_s_median"] > 0 and row["fit_loop_only_s"] > 0
    assert row["ratio"] == pytest.approx(row["fit_s_median"] / row["bare_s_median"])
    assert row["fit_images_per_s"] == pytest.approx(3 * 128 / row["fit_s_median"])
    assert row["verdict"] == ("ok" if row["ratio"] <= bench.TARGET_RATIO else "OVER")
    # Same model, initial weights, batches and optimiser on both sides: the same final weights.
    assert row["max_param_diff"] <= 1e-6

    assert _files(results_mod.RESULTS_DIR) == before  # fit ran with out_dir=None: nothing under results/
    assert [p.name for p in out.parent.iterdir()] == ["bench.json"]  # atomic write left no temporary file


def test_replay_stream_yields_the_bank_in_order():
    """fit()'s own TrainStream, over the replay source, hands out exactly the batches the bare loop iterates."""
    from transferlab.data.pipeline import TrainStream

    case, steps = bench.CPU_CASE, 5
    cfg = bench.run_config(case, 8, steps)
    bank = bench.Bank.make(case, 8, steps, bench.torch.device("cpu"))
    source, splits = bench._replay_source(case, bank, cfg)
    stream = TrainStream(source.train, splits.train, bench.REPLAY_PRESET, 8, cfg.seed, "cpu")
    batches = stream.batches(0)
    for x_ref, y_ref in bank.batches(steps):
        x, y = next(batches)
        assert (
            x.data_ptr() == x_ref.data_ptr() and y.data_ptr() == y_ref.data_ptr()
        )  # the same tensors: no copy
