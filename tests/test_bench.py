"""``transferlab bench`` (fit against a bare loop, and the data-path suite): what the reports compute from given
timings, that both loops do the same work, and the structure of the JSON. Never a timing value as a pass/fail."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
import torch
from transferlab import results as results_mod
from transferlab.perf import common
from transferlab.perf import data as bench_data
from transferlab.perf import fit as bench


def _files(root):
    return sorted(p for p in root.rglob("*")) if root.exists() else []


def test_verdict_and_ratios_follow_from_the_timings(monkeypatch):
    """compare() with timings given: the median per-pair ratio decides the verdict, not the medians' ratio."""
    fits = iter([0.1, 1.00, 1.30, 1.00])  # a warm-up run, then three timed runs of each side
    bares = iter([0.1, 1.00, 1.00, 0.90])  # per pair: 1.0, 1.3, 1.11
    model = torch.nn.Linear(2, 2)
    monkeypatch.setattr(bench, "time_fit", lambda cfg, case, batches, loop_only=False: (
        0.002 if loop_only else next(fits), model))  # fmt: skip
    monkeypatch.setattr(bench, "time_bare", lambda cfg, case, batches: (next(bares), model))
    row = bench.compare(bench.CPU_CASE, steps=4, repeats=3)
    assert row["ratios"] == pytest.approx([1.0, 1.3, 1.0 / 0.9])
    assert (
        row["ratio"] == pytest.approx(1.0 / 0.9) and row["verdict"] == "OVER"
    )  # median pair ratio 1.11 > 1.05
    assert row["ratio_of_min"] == pytest.approx(1.0 / 0.9) and row["spread"] == pytest.approx(1.3 / 0.9)
    assert row["fit_images_per_s"] == pytest.approx(4 * 128 / 1.0)
    assert row["ratio_implied_by_loop_overhead"] == pytest.approx(1 + 0.002 / 0.9)
    assert row["max_param_diff"] == 0.0  # the same module on both sides here


def test_bench_main_trains_the_same_weights_and_writes_its_report(tmp_path, capsys):
    out = tmp_path / "sub" / "bench.json"
    before = _files(results_mod.RESULTS_DIR)
    args = argparse.Namespace(out=str(out), steps=3, repeats=1, gpu_only=False, cpu_only=True)
    assert bench.main(args) == 0
    printed = capsys.readouterr().out
    assert "mini_resnet 28x28 b128" in printed and "ratio" in printed and "load average" in printed
    report = json.loads(out.read_text())
    assert report["suite"] == "fit" and report["steps"] == 3 and report["target_ratio"] == bench.TARGET_RATIO
    assert {"cpu_model", "cpu_count", "torch_threads", "gpu"} <= set(report["machine"])
    assert {"git_sha", "torch", "device", "cpu_threads"} <= set(report["provenance"])
    (row,) = report["benchmarks"]
    assert row["device"] == "cpu" and row["batch_size"] == 128 and row["precision"] == "fp32"
    assert row["warmup_steps"] == min(3, common.WARMUP_STEPS)
    # Same model, initial weights, batches and optimiser on both sides: the same final weights, bit for bit.
    assert row["max_param_diff"] == 0.0
    assert _files(results_mod.RESULTS_DIR) == before  # fit ran with out_dir=None: nothing under results/
    assert [p.name for p in out.parent.iterdir()] == ["bench.json"]  # atomic write left no temporary file


def test_replay_stream_yields_the_batches_in_order():
    """fit()'s own TrainStream, over the replay source, hands out exactly the batches the bare loop iterates."""
    from transferlab.data.pipeline import TrainStream

    case, steps = bench.CPU_CASE, 11
    cfg = common.bench_config(case, case.arms[0], steps, batch_size=8)
    small = dataclasses.replace(case, batch_size=8)
    batches = common.synthetic_batches(small, torch.device("cpu"))
    source, splits = bench.replay_source(small, batches, cfg)
    stream = TrainStream(source.train, splits.train, bench.REPLAY_PRESET, 8, cfg.seed, "cpu")
    it = stream.batches(0)
    for s in range(steps):  # more steps than distinct batches: the bank cycles
        x, y = next(it)
        assert x.data_ptr() == batches[s % len(batches)][0].data_ptr() and torch.equal(
            y, batches[s % len(batches)][1]
        )


def test_one_table_formatter():
    cols = [common.Column("name", "name", width=6), common.Column("v", "value", ".2f", 7),
            common.Column(lambda r: r["v"] * 2, "twice", ".1f", 6), common.Column("missing", "m", width=3)]  # fmt: skip
    text = common.format_table([{"name": "a", "v": 1.234}, {"name": "bb", "v": 2.0}], cols)
    head, rule, first, second = text.splitlines()
    assert head.split() == ["name", "value", "twice", "m"] and set(rule) == {"-"}
    assert first.split() == ["a", "1.23", "2.5", "-"] and second.split() == ["bb", "2.00", "4.0", "-"]


def test_data_suite_from_a_jpeg_tree_on_cpu(tmp_path, capsys):
    """``--suite data`` on a generated tree: every input path beside the bare step, ratios, the cache build, and the
    device path's batch equal to the PIL path's."""
    tree = bench_data.make_tree(tmp_path / "tree", classes=2, per_class=6, size=(90, 70))
    arm = common.Arm("vgg9_bn", "scratch", {"backbone": "vgg9_bn"})
    cases = [common.Case("vgg9_32", "cpu", (3, 32, 32), 4, 2, (arm,), "data", preset="cifar32"),
             common.Case("r18_224", "cpu", (3, 224, 224), 2, 2, (common.Arm("resnet18", "scratch", {"backbone": "resnet18"}),),
                         "data", preset="imagenet224")]  # fmt: skip
    out = tmp_path / "bench_data.json"
    args = argparse.Namespace(out=str(out), steps=2, repeats=1, tree=str(tree), images=8, workers=0,
                              pipelines="pil,cache,device", cases="all", cpu_only=True)  # fmt: skip
    assert bench_data.main(args, cases=cases) == 0
    report = json.loads(out.read_text())
    assert (
        report["suite"] == "data"
        and report["images"] == 8
        and report["pipelines"] == ["pil", "cache", "device"]
    )
    for bench_case in report["benchmarks"]:
        assert bench_case["identical_to_pil"] is True
        rows = {r["label"]: r for r in bench_case["rows"]}
        assert list(rows) == ["bare"] + [
            f"{p} {k}" for p in ("pil", "cache", "device") for k in ("loader", "e2e")
        ]
        for label, r in rows.items():
            if label != "bare":
                assert r["ratio"] == pytest.approx(r["images_per_s"] / rows["bare"]["images_per_s"])
                assert r["cache_build_s"] >= 0
    assert "device e2e" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown bench case"):
        bench_data.main(argparse.Namespace(**{**vars(args), "cases": "nope"}), cases=cases)
