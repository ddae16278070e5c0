"""Does a mini table agree with its paper's claim? Paired verdicts per baseline, from the result files.

A :class:`~transferlab.papers.spec.Claim` says that a method beats some baselines. For each baseline and table cell
(dataset, sampling rate, …) the claimed method's test metric at the best-validation step is compared with the
baseline's on the same seeds (:func:`transferlab.reports.paired_gap`): **agrees** when the gap favours the method and
its t-interval excludes 0, **disagrees** when it favours the baseline and excludes 0, **not resolved** otherwise, and
**one seed** when there is a single pair (``make demo``: no claim either way). Design tables (validation-only grids
that chose a table's settings) are summarised on validation only.
"""

from __future__ import annotations

import pandas as pd

from transferlab import reports


def claim_table(df: pd.DataFrame, claim, column: str = "test_at_best_val") -> pd.DataFrame:
    """One row per (cell, baseline): the paired gap of ``claim.method`` over the baseline and the verdict."""
    sub = df[df.table == claim.table] if "table" in df else df
    for key, value in claim.where.items():
        sub = sub[sub[key] == value]
    rows = []
    for baseline in claim.baselines:
        gaps = reports.paired_gap(sub, claim.method, baseline, column=column)
        if not gaps.empty:
            rows.append(gaps)
    if not rows:
        return pd.DataFrame()
    out = reports.gap_table(pd.concat(rows, ignore_index=True))
    out["verdict"] = out["verdict"].map({"better": "agrees", "worse": "disagrees"}).fillna(out["verdict"])
    return out


def with_last_step(df: pd.DataFrame, claim) -> pd.DataFrame:
    """:func:`claim_table` at the best-validation step, with the same comparison at the last step beside it (the
    verdict counts the best-validation step; the last step shows whether the selection step changes it)."""
    best = claim_table(df, claim)
    last = claim_table(df, claim, column="test_last") if "test_last" in df else pd.DataFrame()
    if best.empty or last.empty or len(last) != len(best):
        return best
    best = best.copy()
    best["last step: gap [t-interval]"] = [
        f"{g} {i}" for g, i in zip(last["mean gap"], last["95 % t-interval"])
    ]
    best["verdict (last step)"] = last["verdict"].to_numpy()
    return best


def verdict_line(frame: pd.DataFrame) -> str:
    """ "agrees with 3, disagrees with 1, not resolved for 2 of 6 comparisons"."""
    if frame.empty:
        return "no finished comparison yet"
    counts = frame["verdict"].value_counts()
    parts = [f"{word} {counts[key]}" for key, word in (("agrees", "agrees in"), ("disagrees", "disagrees in"),
             ("not resolved", "does not resolve"), ("one seed", "one seed only in")) if key in counts]  # fmt: skip
    return f"{', '.join(parts)} of {len(frame)} comparisons"


def design_summary(df: pd.DataFrame) -> pd.DataFrame:
    """A design table's runs summarised on **validation only**: mean ± std of the best validation metric over the
    design seeds, per setting (the varying configuration fields), best first."""
    if df.empty:
        return df
    _, label, sign = reports.metric_of(df)
    fixed = {"seed", "run_id", "run_dir", "config_hash", "git_sha", "device_name"}
    varying = [c for c in ("variant", "method_params", "lr", "iterations", "sample_rate", "shots", "pretrained",
                           "head_lr_mult", "batch_size") if c in df and df[c].astype(str).nunique() > 1]  # fmt: skip
    varying = [c for c in varying if c not in fixed] or ["variant"]
    g = df.groupby([df[c].astype(str) for c in varying])["best_val"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out = out.sort_values("mean", ascending=sign < 0).reset_index(drop=True)
    out[f"validation {label} (mean ± std)"] = [
        f"{m:.2f} ± {s:.2f}" for m, s in zip(out["mean"], out["std"].fillna(0))
    ]
    return out.drop(columns=["mean", "std"]).rename(columns={"count": "seeds"})


__all__ = ["claim_table", "design_summary", "verdict_line", "with_last_step"]
