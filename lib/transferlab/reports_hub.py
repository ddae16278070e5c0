"""Report pieces of the model-hub papers (Zoo-Tuning, Hub-Pathway): routing statistics and compute per sample.

Hub-Pathway runs save, with their result, how their pathways used the hub on the test set with the selected
(best-validation) weights (``extra.test_statistics.routing``, :meth:`HubPathway.routing_statistics`): how often each
hub model is chosen, overall and per class, the entropy of the routing and the FLOPs actually spent per sample
(measured with ``torch.utils.flop_counter``) against an ensemble that runs all K models. These functions turn them
into data frames and figures; like :mod:`transferlab.reports`, they compute everything from the result files.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from transferlab.results import read_json

KEYS = ["table", "protocol", "dataset", "variant", "seed"]


def _routing_of(run_dir: str) -> dict | None:
    extra = read_json(f"{run_dir}/metrics.json").get("extra", {})
    return extra.get("test_statistics", {}).get("routing")


def routing(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, hub model): chosen fraction, mean pathway weight; plus the run's entropies and FLOPs."""
    rows = []
    for _, run in df.iterrows():
        r = _routing_of(run["run_dir"])
        if r is None:
            continue
        base = {k: run[k] for k in KEYS if k in run}
        for i, expert in enumerate(r["experts"]):
            rows.append({**base, "expert": str(expert).removeprefix("mini:"), "chosen_fraction": r["chosen_fraction"][i],
                         "mean_weight": r["mean_weight"][i], "k": r["k"],
                         "entropy_per_sample": r["routing_entropy"]["per_sample_mean"],
                         "entropy_usage": r["routing_entropy"]["usage"],
                         "flops_per_sample": r["flops_per_sample"],
                         "flops_ensemble": r["flops_per_sample_ensemble"]})  # fmt: skip
    return pd.DataFrame(rows)


def routing_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per variant and dataset (mean over seeds): each model's chosen fraction (columns), routing entropies and the
    compute spent per sample as a fraction of running the whole hub."""
    if frame.empty:
        return frame
    keys = [k for k in ("dataset", "variant") if k in frame]
    usage = frame.pivot_table(
        index=keys, columns="expert", values="chosen_fraction", aggfunc="mean", sort=False
    )
    runs = frame.drop_duplicates([*keys, "seed"]).groupby(keys, sort=False)
    out = usage.round(3)
    out["entropy/sample (nats)"] = runs["entropy_per_sample"].mean().round(3)
    out["usage entropy (nats)"] = runs["entropy_usage"].mean().round(3)
    out["MFLOPs/sample"] = (runs["flops_per_sample"].mean() / 1e6).round(2)
    out["vs ensemble"] = (runs["flops_per_sample"].mean() / runs["flops_ensemble"].mean()).round(3)
    out["n"] = runs.size()
    return out.reset_index()


def per_class_usage(
    df: pd.DataFrame, variant: str, dataset: str, classes: list[str] | None = None
) -> pd.DataFrame:
    """[class × hub model] each model's share of the class's pathways on the test set (rows sum to 1; all seeds)."""
    counts = None
    experts = None
    for _, run in df[(df.variant == variant) & (df.dataset == dataset)].iterrows():
        r = _routing_of(run["run_dir"])
        if r is None:
            continue
        c = np.asarray(r["per_class"], dtype=float)
        counts = c if counts is None else counts + c
        experts = [str(e).removeprefix("mini:") for e in r["experts"]]
    if counts is None or not counts.any():  # no per-class counts (a landmark task has no classes)
        return pd.DataFrame()
    k = counts.sum(1, keepdims=True)
    frac = counts / np.where(k > 0, k, 1) * (k > 0)
    index = classes if classes and len(classes) == len(frac) else list(range(len(frac)))
    return pd.DataFrame(frac, index=pd.Index(index, name="class"), columns=experts)


def plot_routing(frame: pd.DataFrame, usage: pd.DataFrame | None = None, usage_title: str = ""):
    """Left: how often each hub model is chosen (mean over seeds, bars per variant, or per dataset when one variant
    spans several); right: per-class routing of one variant and dataset (``usage_title``)."""
    panels = 2 if usage is not None and not usage.empty else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 3.8), squeeze=False)
    hue = "dataset" if frame["variant"].nunique() == 1 and frame["dataset"].nunique() > 1 else "variant"
    sns.barplot(frame, x="expert", y="chosen_fraction", hue=hue, errorbar=("pi", 100), ax=axes[0, 0])
    axes[0, 0].set(
        ylabel="fraction of test images routed", xlabel="hub model", title="pathway usage (test set)"
    )
    axes[0, 0].legend(fontsize=7)
    if panels == 2:
        sns.heatmap(
            usage, vmin=0, vmax=1, cmap="viridis", annot=usage.shape[0] <= 12, fmt=".2f", ax=axes[0, 1]
        )
        axes[0, 1].set(title=f"per class: share routed to each model{usage_title}", xlabel="hub model")
    fig.tight_layout()
    return fig


__all__ = ["per_class_usage", "plot_routing", "routing", "routing_summary"]
