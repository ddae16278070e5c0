"""Report aggregation: runs of different method variants are never averaged together; n counts runs."""

from __future__ import annotations

import json

import pandas as pd
from transferlab import reports
from transferlab.results import method_variants


def _runs() -> pd.DataFrame:
    rows = []
    for rel, base in (("reverse", 70.0), ("direct", 80.0)):
        for seed in range(3):
            params = {"relationship": rel, "trade_off": 2.3}
            rows.append({"table": "t", "protocol": "mini", "dataset": "d", "method": "co_tuning", "pretrained": "p",
                         "sample_rate": 0.1, "shots": 0, "seed": seed, "method_params": json.dumps(params),
                         "test_at_best_val": base + seed, "test_last": base, "best_val": base,
                         "cost_train_time_s": 1.0})  # fmt: skip
    for seed in range(3):
        rows.append(
            {**rows[0], "method": "finetune", "method_params": "{}", "seed": seed, "test_at_best_val": 60.0}
        )
    df = pd.DataFrame(rows)
    df["variant"] = method_variants(df)
    return df


def test_variants_name_only_the_parameters_that_differ():
    assert sorted(set(_runs().variant)) == [
        "co_tuning (relationship=direct)",
        "co_tuning (relationship=reverse)",
        "finetune",
    ]


def test_summary_keeps_variants_apart_and_counts_runs():
    s = reports.summarize(_runs()).set_index("variant")
    assert s.loc["co_tuning (relationship=reverse)", "test_at_best_val_mean"] == 71.0
    assert s.loc["co_tuning (relationship=direct)", "test_at_best_val_mean"] == 81.0
    assert (s["n"] == 3).all()
    shown = reports.display_table(reports.summarize(_runs()), "mini")
    assert "co_tuning (relationship=direct)" in set(shown["method"])


def test_paired_gap_is_per_variant():
    gaps = reports.paired_gap(_runs(), "co_tuning", "finetune").set_index("method")
    assert gaps.loc["co_tuning (relationship=reverse)", "mean_gap"] == 11.0
    assert gaps.loc["co_tuning (relationship=direct)", "mean_gap"] == 21.0
    assert gaps["significant"].all()


def test_paper_tables_show_the_published_and_peer_numbers_before_any_run(tmp_path, monkeypatch):
    from transferlab import report_view

    shown = []
    monkeypatch.setattr(report_view, "display", lambda obj: shown.append(getattr(obj, "data", str(obj))))
    view = report_view.PaperReport("co_tuning", results_dir=str(tmp_path), figures_dir=str(tmp_path / "fig"))
    view._table("sampling", "paper", view.spec.table("sampling", "paper"))
    html = next(s for s in shown if "<table" in s)
    assert "No finished runs yet" in "".join(shown)
    # TLlib's README: Co-Tuning on CUB-200-2011 at 15 %, supervised pre-training = 57.6; LwF on MoCo rows exist too
    assert "57.60" in html and "not transcribed" in html and "moco_v2_800ep" in html
    assert "ours" not in html  # nothing of ours to compare yet


def test_best_single_model_is_chosen_per_seed_on_validation_only():
    rows = []
    # model a: best on validation for seeds 0 and 1, b for seed 2; b always has the better test score
    for seed in range(3):
        for model, val, test in (("mini:a", 90 - 10 * (seed == 2), 70), ("mini:b", 85, 80)):
            rows.append({"table": "t", "protocol": "mini", "dataset": "d", "method": "finetune", "pretrained": model,
                         "sample_rate": 0.15, "shots": 0, "seed": seed, "method_params": "{}",
                         "test_at_best_val": test + seed, "test_last": test, "best_val": val,
                         "cost_train_time_s": 1.0})  # fmt: skip
        rows.append(
            {**rows[-1], "method": "zoo_tuning", "pretrained": "hub:mini", "test_at_best_val": 75.0 + seed}
        )
    df = pd.DataFrame(rows)
    df["variant"] = method_variants(df)
    out = reports.with_best_single(df)
    best = out[out.method == reports.BEST_SINGLE].sort_values("seed")
    assert best.chosen.tolist() == ["mini:a", "mini:a", "mini:b"]  # by validation, never by test
    assert best.test_at_best_val.tolist() == [70.0, 71.0, 82.0]
    summary = reports.summarize(out).set_index("variant")
    assert summary.loc[reports.BEST_SINGLE, "chosen"] == "a, a, b"
    assert summary.loc[reports.BEST_SINGLE, "n"] == 3
    gap = reports.paired_gap(out, "zoo_tuning", reports.BEST_SINGLE)
    assert gap.mean_gap.item() == ((75 - 70) + (76 - 71) + (77 - 82)) / 3
    assert reports.with_best_single(df[df.pretrained != "mini:b"]).equals(df[df.pretrained != "mini:b"])
    # a seed whose single models have not all finished chooses nothing yet (mini:b's seed-2 run is missing)
    partial = reports.with_best_single(df[~((df.pretrained == "mini:b") & (df.seed == 2))])
    assert sorted(partial.query("method == 'best_single'").seed) == [0, 1]
    # a tie in validation accuracy goes to the lower validation loss, whatever the order of the runs
    tied = df.assign(best_val=90.0, val_loss_at_best=[0.5 if m == "mini:b" else 0.9 for m in df.pretrained])
    for frame in (tied, tied.iloc[::-1]):
        assert set(reports.with_best_single(frame).query("method == 'best_single'").chosen) == {"mini:b"}


def _hub_runs() -> pd.DataFrame:
    """Two single models fine-tuned (seed s: model a scores 70 + s on validation and test, model b 75 − s) and a hub
    method 1 point above model a, at the best-validation step; last step 0.5 lower everywhere."""
    rows = []
    for seed in range(5):
        for name, score in (("mini:a", 70.0 + seed), ("mini:b", 75.0 - seed)):
            rows.append(
                {"method": "finetune", "pretrained": name, "test_at_best_val": score, "best_val": score}
            )
        rows.append(
            {"method": "zoo_tuning", "pretrained": "hub:h", "test_at_best_val": 71.0 + seed, "best_val": 0.0}
        )
        for r in rows[-3:]:
            r.update(table="classification", protocol="mini", dataset="d", sample_rate=0.15, shots=0, seed=seed,
                     method_params="{}", test_last=r["test_at_best_val"] - 0.5, cost_train_time_s=1.0)  # fmt: skip
    df = pd.DataFrame(rows)
    df["variant"] = method_variants(df)
    return df


def test_markdown_keeps_single_models_apart_and_shows_the_last_step_and_the_choice():
    from transferlab.reports_markdown import table_markdown

    text = table_markdown(_hub_runs())
    assert "| finetune (a) | 72.00 ± 1.58 (n=5); last step 71.50 |" in text
    assert "| finetune (b) | 73.00 ± 1.58 (n=5); last step 72.50 |" in text
    # validation chooses b for seeds 0-2 (75, 74, 73 against 70, 71, 72) and a for seeds 3-4
    assert "chose b ×3, a ×2" in text


def test_claims_carry_the_last_step_beside_the_best_validation_step():
    from transferlab.papers.spec import Claim
    from transferlab.reports_claims import with_last_step

    claim = Claim("classification", "zoo_tuning", ("best_single",), "beats the best single model")
    frame = with_last_step(reports.with_best_single(_hub_runs()), claim)
    row = frame.iloc[0]
    # per seed: zoo 71 + s against the chosen model's 75, 74, 73, 73, 74 → gaps −4, −2, 0, +1, +1 (mean −0.8)
    assert row["mean gap"] == "-0.80" and row["verdict"] == "not resolved"
    assert row["last step: gap [t-interval]"].startswith("-0.80 [")
    assert row["verdict (last step)"] == "not resolved"
