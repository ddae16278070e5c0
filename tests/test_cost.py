"""Cost accounting (``transferlab.perf.cost`` / ``.memory`` / ``.table``) and the per-method step bench
(``transferlab.perf.methods``).

MAC counts against hand-computed ones, the inference-parameter rule (autograd reachability; ``inference_model()``,
the collapsed model, for lite Zoo-Tuning), the CPU peak-memory process (one per call, several groups), cost tables
whose shared rows are measured once, and the bench end to end on tiny fixtures. Never timing values."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
import transferlab.methods.zoo_tuning  # noqa: F401  registers zoo_tuning, zoo_tuning_lite
from conftest import TINY_HUB_B as SECOND
from torch import nn
from transferlab import results as results_mod
from transferlab.perf import cost, memory
from transferlab.perf import methods as bench_methods
from transferlab.tasks.classification import Classification


def _batch(n: int = 8):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 4, (n,), generator=gen)


def test_macs_match_the_analytical_count():
    x = torch.randn(2, 3, 6, 6)
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)  # 8·6·6 outputs × 3·3·3 MACs each
    grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)  # 8·6·6 outputs × (8/4)·3·3
    linear = nn.Linear(8 * 6 * 6, 5)  # 288 × 5
    model = nn.Sequential(conv, nn.ReLU(), grouped, nn.Flatten(), linear)
    per_image = 8 * 36 * 27 + 8 * 36 * 2 * 9 + 288 * 5
    assert cost.count_macs(model, x) == 2 * per_image
    a, w = torch.randn(4, 7), torch.randn(3, 7, 5)  # einsum (Zoo-Tuning's aggregation) is counted too
    assert cost.count_macs(lambda: torch.einsum("bi,kij->bkj", a, w)) == 4 * 3 * 7 * 5


def test_cost_of_a_finetuned_model_excludes_the_kept_source_head(tiny_hub, tiny_config):
    from transferlab.methods import METHODS

    cfg = tiny_config(method="finetune", pretrained=f"mini:{tiny_hub}")
    method = METHODS.get("finetune").build(cfg, Classification(4))
    before = {k: v.clone() for k, v in method.state_dict().items()}
    c = cost.measure_cost(method, _batch(), cfg, warmup=1, steps=1, repeats=1, memory=False)
    head = sum(p.numel() for p in method.backbone.source_head.parameters())
    assert (
        c["params_total"] == c["params_trainable"] == c["params_inference"] + head
    )  # predict: no source head
    forward = 2552000  # mini_resnet's forward MACs per image (counted once by hand from its layer shapes)
    assert (
        c["macs_inference_per_image"] == c["macs_train_forward_per_image"] == pytest.approx(forward, rel=0.01)
    )
    assert c["macs_train_step_per_image"] > 2 * forward  # + the backward
    assert (
        c["train_images_per_s"] > 0
        and c["inference_images_per_s"] > 0
        and c["inference_model"] == "predict()"
    )
    after = method.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the method is left as it was
    table = cost.cost_table({"finetune": c})
    assert (
        list(table.index) == ["finetune"] and table.loc["finetune", "params (M)"] == c["params_total"] / 1e6
    )


@pytest.mark.parametrize("lite_downsample", [True, False])
def test_inference_params_of_a_collapsed_lite_model(lite_downsample, tiny_zoo, tiny_config):
    from transferlab.methods import METHODS
    from transferlab.models import build_backbone

    cfg = tiny_config(method="zoo_tuning_lite", pretrained="hub:test_tiny",
                      method_params={"lite_downsample": lite_downsample})  # fmt: skip
    method = METHODS.get("zoo_tuning_lite").build(cfg, Classification(4))
    c = cost.measure_cost(method, _batch(), cfg, warmup=1, steps=1, repeats=1, memory=False)
    plain = build_backbone("mini_resnet", "none")
    plain.reset_head(4, keep_source=False)
    assert c["inference_model"] == "inference_model()" and c["params_total"] > cost.count_params(plain)
    if lite_downsample:  # fully collapsed: exactly a plain mini_resnet
        assert c["params_inference"] == cost.count_params(plain)
        assert c["macs_inference_per_image"] == pytest.approx(cost.count_macs(plain, _batch()[0]) / 8)
    else:  # official quirk: the downsample convs keep their K experts and gates
        assert c["params_inference"] > cost.count_params(plain)


def test_cpu_peak_memory_of_several_groups_in_one_fresh_process(tiny_hub, tiny_config, monkeypatch):
    from transferlab.methods import METHODS

    runs = []
    real_run = memory.subprocess.run
    monkeypatch.setattr(memory.subprocess, "run", lambda *a, **k: runs.append(a) or real_run(*a, **k))
    cfg = tiny_config(method="finetune", pretrained=f"mini:{tiny_hub}")
    methods = [METHODS.get("finetune").build(cfg, Classification(4)) for _ in range(2)]
    ensemble, single = memory.step_peak_memory([(methods, _batch(16), cfg), (methods[:1], _batch(8), cfg)])
    assert len(runs) == 1  # one interpreter for both groups
    for out in (ensemble, single):
        assert out.get("memory_note") is None, out
        assert out["peak_step_mb"] > 0 and out["baseline_mb"] > 0 and "fresh process" in out["memory_how"]


def test_bench_methods_end_to_end_on_tiny_cases(tiny_zoo, tiny_hub, tmp_path, capsys):
    cases = bench_methods.mini_cases(
        hub=tiny_zoo, l2t_source=f"mini:{tiny_hub}", batch_sizes=(8,), num_classes=4
    )
    assert [c.name for c in cases] == ["l2t_mini", "zoo_mini_b8", "collapse_mini", "pathway_mini_b8"]
    out = tmp_path / "sub" / "bench_methods.json"
    before = sorted(results_mod.RESULTS_DIR.rglob("*")) if results_mod.RESULTS_DIR.exists() else []
    args = argparse.Namespace(out=str(out), steps=2, repeats=1, cases="all", cpu_only=True, memory=False)
    assert bench_methods.main(args, cases=cases) == 0

    printed = capsys.readouterr().out
    assert "t ratio" in printed and "load average" in printed and "finetune x2 (ensemble)" in printed
    report = json.loads(out.read_text())
    assert report["suite"] == "methods" and report["steps"] == 2 and report["repeats"] == 1
    assert {"cpu_model", "cpu_count", "torch_threads", "gpu"} <= set(report["machine"])
    assert {"git_sha", "torch", "device"} <= set(report["provenance"])
    ran = {r["name"]: r for r in report["benchmarks"]}
    skipped = {s["case"] for s in report["skipped"]}
    assert set(ran) | skipped == {c.name for c in cases} and {"l2t_mini", "zoo_mini_b8"} <= set(ran)
    l2t = [a["label"] for a in ran["l2t_mini"]["arms"]]
    assert l2t == ["l2t_ww", "fm (no meta step)", "finetune (source net)", "scratch (target net)"]
    for r in ran.values():
        assert r["device"] == "cpu" and r["arms"][0]["t_ratio"] == pytest.approx(1.0)
        for a in r["arms"]:
            assert {
                "label",
                "ms",
                "ms_all",
                "images_per_s",
                "t_ratio",
                "t_ratio_of_min",
                "spread",
                "peak_step_mb",
                "params",
            } <= set(a)
            assert len(a["ms_all"]) == 1 and a["ms"] > 0 and a["params"] > 0
    zoo = ran["zoo_mini_b8"]["arms"]
    assert [a["models"] for a in zoo] == [1, 1, 2] and zoo[2]["params"] > zoo[1]["params"]
    assert ran["collapse_mini"]["max_abs_logit_diff"] < 1e-4  # the collapsed model computes what predict does
    assert (
        len(ran["collapse_mini"]["arms"]) == 4
    )  # collapsed, plain, collapsed with lite_downsample, not collapsed
    assert ran["pathway_mini_b8"]["arms"][1]["t_ratio"] > 0  # hub_pathway against the ensemble
    assert [p.name for p in out.parent.iterdir()] == ["bench_methods.json"]  # atomic write, no leftovers
    assert (sorted(results_mod.RESULTS_DIR.rglob("*")) if results_mod.RESULTS_DIR.exists() else []) == before

    with pytest.raises(ValueError, match="unknown bench case"):
        bench_methods.main(argparse.Namespace(out=str(out), steps=1, repeats=1, cases="nope"), cases=cases)


def test_transferlab_cost_measures_hub_tables_and_the_report_reads_them(
    tiny_zoo, tiny_config, tmp_path, monkeypatch
):
    """`transferlab cost`: one measured row per distinct (method, weights, params) of a table, saved atomically next to
    the table's runs; a row two tables share is measured once; the peak memories of a table's rows in one process;
    the report's loader reads the tables back (parameters and MACs exact, speeds measured)."""
    from transferlab.cli import main
    from transferlab.papers import PAPERS, Paper, Table
    from transferlab.perf import table as cost_run

    base = {
        k: v for k, v in tiny_config().to_flat().items() if k not in ("method", "pretrained", "seed", "table")
    }
    table = Table(name="hubs", title="tiny hub table", protocol="mini", base=base,
                  grid=[{"method": ["finetune"], "pretrained": ["mini:test_tiny_digits", f"mini:{SECOND}"]},
                        {"method": ["ensemble", "zoo_tuning_lite"], "pretrained": [f"hub:{tiny_zoo}"]},
            {"method": ["hub_pathway"], "pretrained": [f"hub:{tiny_zoo}"], "method_params": [{"k": 1}]}],
                  provenance="tests")  # fmt: skip
    shared = Table(name="shared", title="shares two rows", protocol="mini", base=base,
                   grid=[{"method": ["finetune"], "pretrained": ["mini:test_tiny_digits"]},
                         {"method": ["ensemble"], "pretrained": [f"hub:{tiny_zoo}"]},
                         {"method": ["hub_pathway"], "pretrained": [f"hub:{tiny_zoo}"], "method_params": [{"k": 2}]}],
                   provenance="tests")  # fmt: skip
    paper = Paper("tests_cost", "cost tests", "https://example.org", "finetune",
                  {("hubs", "mini"): table, ("shared", "mini"): shared})  # fmt: skip
    monkeypatch.setitem(PAPERS._items, "tests_cost", paper)
    labels = [label for label, _ in cost_run.distinct_configs("tests_cost", "hubs", "mini")]
    assert labels == ["finetune (test_tiny_digits)", f"finetune ({SECOND})", f"ensemble (hub:{tiny_zoo})",
                      f"zoo_tuning_lite (hub:{tiny_zoo})", f"hub_pathway (hub:{tiny_zoo}; k=1)"]  # fmt: skip
    measured, children = [], []
    real_measure, real_run = cost_run.measure_cost, cost_run.CpuPeaks.run
    monkeypatch.setattr(
        cost_run, "measure_cost", lambda m, *a, **k: measured.append(m.name) or real_measure(m, *a, **k)
    )
    monkeypatch.setattr(cost_run.CpuPeaks, "run", lambda self: children.append(self.count) or real_run(self))
    assert main(["cost", "tests_cost", "--results", str(tmp_path)]) == 0
    assert len(measured) == 5 + 1  # the shared table adds only its hub_pathway k=2 row
    assert children == [6]  # one memory process for the whole command, after every row is timed
    assert sorted(p.name for p in (tmp_path / "tests_cost" / "mini").iterdir()) == [
        "cost-hubs.json",
        "cost-shared.json",
    ]
    frame, saved = cost_run.load_table("tests_cost", "hubs", "mini", tmp_path)
    other, other_saved = cost_run.load_table("tests_cost", "shared", "mini", tmp_path)
    for label in (
        "finetune (test_tiny_digits)",
        f"ensemble (hub:{tiny_zoo})",
    ):  # the same measurement in both
        assert other.loc[label].equals(frame.loc[label])
    by_label = {r["label"]: r for r in other_saved["rows"]}
    assert by_label[f"ensemble (hub:{tiny_zoo})"]["measured_in"] == "tests_cost/hubs"
    assert by_label[f"hub_pathway (hub:{tiny_zoo}; k=2)"]["measured_in"] == "tests_cost/shared"
    single = frame.loc["finetune (test_tiny_digits)"]
    ensemble = frame.loc[f"ensemble (hub:{tiny_zoo})"]
    assert ensemble["params (M)"] == pytest.approx(2 * single["params (M)"], rel=0.01)
    assert ensemble["inference MMACs/img"] == pytest.approx(2 * single["inference MMACs/img"], rel=1e-6)
    lite = frame.loc[f"zoo_tuning_lite (hub:{tiny_zoo})"]
    assert lite["inference params (M)"] < lite["params (M)"]  # collapsed for inference
    pathway = frame.loc[
        f"hub_pathway (hub:{tiny_zoo}; k=1)"
    ]  # one model per input, but any input may need any
    assert pathway["inference params (M)"] == pathway["params (M)"]
    assert pathway["inference MMACs/img"] < ensemble["inference MMACs/img"]
    assert (
        (frame["train img/s"] > 0).all()
        and (frame["peak step MB"] > 0).all()
        and saved["provenance"]["device"]
    )
    assert (
        main(["cost", "tests_cost", "--table", "nope", "--results", str(tmp_path)]) == 2
    )  # before measuring
    assert {(r["steps"], r["repeats"]) for r in saved["rows"]} == {(10, 5)}
    quick = tmp_path / "quick"  # make demo's: fewer timed steps, recorded in every row
    assert (
        main(["cost", "tests_cost", "--table", "shared", "--quick", "--no-memory", "--results", str(quick)])
        == 0
    )
    _, quick_saved = cost_run.load_table("tests_cost", "shared", "mini", quick)
    assert {(r["steps"], r["repeats"]) for r in quick_saved["rows"]} == {(5, 3)}


def test_inference_parameters_include_frozen_parts_run_without_grad():
    from transferlab.perf.cost import params_used_by

    frozen, head, unused = nn.Linear(4, 8), nn.Linear(8, 2), nn.Linear(8, 2)
    model = nn.ModuleDict({"frozen": frozen, "head": head, "unused": unused})

    def predict(x):
        with torch.no_grad():
            f = frozen(x)
        return head(f)

    assert params_used_by(predict, model, torch.randn(3, 4)) == 4 * 8 + 8 + 8 * 2 + 2  # not the unused head
