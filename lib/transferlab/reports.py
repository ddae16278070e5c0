"""Reports: results files → comparison tables and figures (functions return data frames and figures; no plt.show).

The report notebook (``notebooks/report.py``) calls these; ``transferlab report <paper>`` executes it with papermill
and exports ``reports/<paper>.html`` without input cells. Every number shown is computed from the ``metrics.json``
files under ``results/``; nothing is typed in by hand.

Columns: ``test_at_best_val`` is the test accuracy of the best-validation weights (what tables report); ``test_last``
the test accuracy after the last step. Mean ± sample std over seeds, with n.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from transferlab import stats
from transferlab.results import RESULTS_DIR, Result, load_results, read_json

# A table cell: runs that share these are seeds of one experiment ("variant" = method + its varying parameters).
CELL_KEYS = ["table", "protocol", "dataset", "method", "variant", "pretrained", "sample_rate", "shots"]
METRICS = {"test_at_best_val": "test @ best val", "test_last": "test @ last step", "best_val": "best val"}


def load(paper: str, protocol: str | None = None, root: Path | str = RESULTS_DIR) -> pd.DataFrame:
    return load_results(root, paper=paper, protocol=protocol)


def summarize(df: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """One row per table cell (all seeds): mean, std and n of each metric, plus seeds and run time."""
    keys = [k for k in (keys or CELL_KEYS) if k in df.columns]
    if df.empty:
        return pd.DataFrame(columns=keys)
    agg: dict = {}
    for m in METRICS:
        agg[f"{m}_mean"] = (m, "mean")
        agg[f"{m}_std"] = (m, "std")
    agg["n"] = ("seed", "count")  # runs, not distinct seeds: a duplicated cell must show, not hide
    agg["seeds"] = ("seed", lambda s: ",".join(str(v) for v in sorted(s)))
    agg["train_time_s"] = ("cost_train_time_s", "mean")
    for col in ("metric_label", "direction"):  # what the table's numbers are, for its header
        if col in df.columns:
            agg[col] = (col, "first")
    if "chosen" in df.columns:  # best-single rows: which hub model validation picked, per seed
        agg["chosen"] = ("chosen", lambda s: ", ".join(str(v).removeprefix("mini:") for v in s.dropna()))
    return df.groupby(keys, dropna=False).agg(**agg).reset_index()


BEST_SINGLE = "best_single"
SINGLE_METHODS = ("finetune", "rl_finetune")  # fine-tuning one hub model (RL: one source policy)


def with_best_single(df: pd.DataFrame) -> pd.DataFrame:
    """Add "best single model (by validation)" rows to a hub table's runs.

    For each dataset and seed, of the fine-tuning runs from the hub's single models (``pretrained`` not a
    ``hub:`` name; RL: ``rl_finetune`` from each source policy, whose ``best_val`` is the final training return), the
    one with the best best-validation metric is chosen (the highest accuracy or return, the lowest NME: the metric's
    direction, :func:`metric_of`; ties, common with a few validation
    images, go to the lower validation loss at that step), and its test accuracy (at its best-validation step, and
    last) becomes that seed's ``best_single`` run; ``chosen`` names the model. The choice looks at validation only,
    as a user without the test labels would choose; each seed may choose differently.
    """
    singles = df[df.method.isin(SINGLE_METHODS) & ~df.pretrained.astype(str).str.startswith("hub:")]
    if singles.empty or singles.pretrained.nunique() < 2:
        return df
    keys = [k for k in ("table", "protocol", "dataset", "sample_rate", "shots", "seed") if k in df.columns]
    cell = [k for k in keys if k != "seed"]
    # a seed chooses only once every single model of its cell has finished (a grid still running, or interrupted,
    # would otherwise choose among the models that happen to be done)
    complete = singles.groupby(keys, dropna=False).pretrained.transform("nunique") == singles.groupby(
        cell, dropna=False).pretrained.transform("nunique")  # fmt: skip
    singles = singles[complete]
    if singles.empty:
        return df
    loss = singles.get("val_loss_at_best", 0.0)
    _, _, sign = metric_of(singles)  # the metric's direction: the highest accuracy, the lowest NME
    ranked = singles.assign(_loss=loss).sort_values(
        ["best_val", "_loss"], ascending=[sign < 0, True], kind="stable"
    )
    best = ranked.groupby(keys, dropna=False, sort=False).head(1).drop(columns="_loss").copy()
    best["chosen"] = best["pretrained"]
    best["method"] = best["variant"] = BEST_SINGLE
    by = (
        "training return" if set(singles.method) == {"rl_finetune"} else "val"
    )  # RL: the final training return
    best["pretrained"] = "best of " + str(len(singles.pretrained.unique())) + f" (by {by})"
    return pd.concat([df, best], ignore_index=True)


def mean_std(mean: float, std: float, n: int) -> str:
    if pd.isna(mean):
        return "—"
    spread = "" if n < 2 or pd.isna(std) else f" ± {std:.2f}"
    return f"{mean:.2f}{spread} (n={n})"


def display_table(summary: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """The human-readable table: mean ± std (n) per metric; mini numbers labelled as such in the header."""
    if summary.empty:
        return summary
    keys = [c for c in CELL_KEYS if c != "method"]  # "variant" is shown under the name "method"
    varying = [c for c in keys if c in summary and (c == "variant" or summary[c].nunique(dropna=False) > 1)]
    out = summary[varying].copy().rename(columns={"variant": "method"})
    lower = "direction" in summary and (summary["direction"] == "min").any()
    label = summary["metric_label"].dropna().iloc[0] if lower and "metric_label" in summary else ""
    for m, title in METRICS.items():
        if lower:  # say what the numbers are and which way is better (accuracy tables keep their headers)
            named = f"best val {label}" if m == "best_val" else title.replace("test", f"test {label}", 1)
            title = f"{named} (lower is better)"
        out[title] = [
            mean_std(a, b, n) for a, b, n in zip(summary[f"{m}_mean"], summary[f"{m}_std"], summary["n"])
        ]
    out["train time (s)"] = summary["train_time_s"].round(1)
    if "chosen" in summary.columns:
        out["chosen by val (per seed)"] = summary["chosen"].fillna("")
    return out


def curves(df: pd.DataFrame) -> pd.DataFrame:
    """Long-form learning curves (one row per run and evaluation) from the runs' metrics.json histories."""
    rows = []
    for _, run in df.iterrows():
        r = Result.from_json(read_json(Path(run["run_dir"]) / "metrics.json"))
        for h in r.history:
            rows.append({**{k: run.get(k) for k in CELL_KEYS + ["seed"]}, **h})
    return pd.DataFrame(rows)


def plot_curves(results_or_df, hue: str | None = None, col: str | None = None):
    """Validation accuracy against step, mean over seeds with a ±1 std band (seaborn); one colour per method (or
    per source model when the table has one method), one panel per sample rate or dataset. Returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if isinstance(results_or_df, pd.DataFrame):
        long = curves(results_or_df)
        metric, label, _ = metric_of(results_or_df) if len(results_or_df) else ("top1", "accuracy (%)", 1)
    else:
        first = results_or_df[0].metrics if results_or_df else {}
        metric, label = first.get("metric", "top1"), first.get("metric_label", "accuracy (%)")
        long = pd.DataFrame(
            [
                {**{k: r.config.get(k) for k in CELL_KEYS + ["seed"]}, "variant": r.config.get("method"), **h}
                for r in results_or_df
                for h in r.history
            ]
        )
    column = f"val_{metric}"
    if long.empty or column not in long:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.text(0.5, 0.5, "no validation curve to plot", ha="center")
        return fig
    varies = [
        k for k in ("variant", "pretrained", "sample_rate", "shots", "dataset") if long[k].nunique() > 1
    ]
    hue = hue or ("variant" if "variant" in varies or "pretrained" not in varies else "pretrained")
    col = col or next((k for k in ("sample_rate", "shots", "dataset") if k in varies and k != hue), None)
    grid = sns.relplot(data=long, x="step", y=column, hue=hue, hue_order=sorted(long[hue].unique()), col=col,
                       kind="line", errorbar="sd", height=3, aspect=1.3)  # fmt: skip
    grid.set_axis_labels("step", f"validation {label}")
    return grid.figure


def plot_summary(df: pd.DataFrame, x: str | None = None, hue: str = "variant"):
    """Test accuracy at the best-validation step against the axis the table varies (sample rate, shots, source
    model or dataset), one colour per method, mean ± std with the seeds as points (seaborn). Returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if df.empty:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        ax.text(0.5, 0.5, "no finished runs", ha="center")
        return fig
    varying = [
        k for k in ("sample_rate", "shots", "pretrained", "dataset") if k in df and df[k].nunique() > 1
    ]
    x = x or (varying[0] if varying else "method")
    col = "dataset" if "dataset" in varying and x != "dataset" else None
    order = sorted(df[hue].unique())  # the same colour for a method in every figure
    dodge = 0.3 if df[hue].nunique() > 1 else False  # seaborn divides by (levels - 1) when dodging one level
    panels = sorted(df[col].unique()) if col else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        data = df if panel is None else df[df[col] == panel]
        sns.pointplot(
            data=data,
            x=x,
            y="test_at_best_val",
            hue=hue,
            hue_order=order,
            errorbar="sd",
            dodge=dodge,
            capsize=0.1,
            ax=ax,
        )
        sns.stripplot(
            data=data,
            x=x,
            y="test_at_best_val",
            hue=hue,
            hue_order=order,
            dodge=bool(dodge),
            alpha=0.4,
            legend=False,
            ax=ax,
        )
        _, label, sign = metric_of(df)
        ax.set_ylabel(f"test {label} at best val" + (" (lower is better)" if sign < 0 else ""))
        ax.set_xlabel(x.replace("_", " "))
        ax.tick_params(axis="x", labelrotation=20 if x == "pretrained" else 0)
        if panel is not None:
            ax.set_title(str(panel))
    fig.tight_layout()
    return fig


def metric_of(df: pd.DataFrame) -> tuple[str, str, int]:
    """(metric name, label, sign) the runs in ``df`` were selected and reported by (classification: top1, accuracy,
    +1); ``sign`` is +1 when higher is better, −1 when lower is (NME)."""
    name = df["metric"].dropna().iloc[0] if "metric" in df and df["metric"].notna().any() else "top1"
    label = df["metric_label"].dropna().iloc[0] if "metric_label" in df and df["metric_label"].notna().any() else (
        "accuracy (%)")  # fmt: skip
    direction = (
        df["direction"].dropna().iloc[0] if "direction" in df and df["direction"].notna().any() else "max"
    )
    return str(name), str(label), 1 if direction == "max" else -1


def paired_gap(df: pd.DataFrame, method: str, baseline: str, keys: list[str] | None = None,
               column: str = "test_at_best_val", level: float = 0.95) -> pd.DataFrame:  # fmt: skip
    """Per cell: the paired difference ``method − baseline`` of ``column`` over the seeds both have, with its
    t-interval, exact sign-flip p-value and (n ≥ 10 only) bootstrap interval (:func:`transferlab.stats.paired`).

    Pairing by seed removes the variance the two runs share (the same sampled training images). The gap's sign is
    always method − baseline in the metric's units; ``better`` says whether that favours the method given the
    metric's direction (NME: lower is better). ``significant`` only when the t-interval excludes 0."""
    keys = [k for k in (keys or ["table", "dataset", "sample_rate", "shots"]) if k in df.columns]
    _, _, sign = metric_of(df)
    rows = []
    variant = "variant" if "variant" in df.columns else "method"
    for cell, group in df.groupby(keys, dropna=False):
        b = group[group.method == baseline].set_index("seed")[column]
        if not b.index.is_unique:  # several baseline runs per seed (other sources or variants): no pairing
            continue
        for name, runs in group[group.method == method].groupby(variant):
            a = runs.set_index("seed")[column]
            common = a.index.intersection(b.index)
            if len(common) == 0 or not a.index.is_unique:
                continue
            st = stats.paired((a[common] - b[common]).to_numpy(), level)
            better = None if st["significant"] is None else sign * st["mean_gap"] > 0
            rows.append({**dict(zip(keys, cell if isinstance(cell, tuple) else (cell,))), "method": name,
                         "baseline": baseline, **st, "better": better})  # fmt: skip
    return pd.DataFrame(rows)


GAP_COLUMNS = {"method": "method", "baseline": "baseline", "n_pairs": "seeds (pairs)", "mean_gap": "mean gap",
               "t_interval": "95 % t-interval", "sign_flip_p": "sign-flip p (two-sided)",
               "min_possible_p": "smallest possible p", "bootstrap": "95 % bootstrap (n ≥ 10)",
               "verdict": "verdict"}  # fmt: skip


def gap_table(gaps: pd.DataFrame) -> pd.DataFrame:
    """``paired_gap`` rows with human column names and one verdict per row: "better", "worse" (the interval
    excludes 0) or "not resolved"."""
    if gaps.empty:
        return gaps
    out = gaps.copy()
    out["t_interval"] = [
        f"[{lo:+.2f}, {hi:+.2f}]" if pd.notna(lo) else "—" for lo, hi in zip(out.t_low, out.t_high)
    ]
    out["bootstrap"] = [
        f"[{lo:+.2f}, {hi:+.2f}]" if pd.notna(lo) else "—" for lo, hi in zip(out.boot_low, out.boot_high)
    ]
    out["mean_gap"] = out.mean_gap.map(lambda v: f"{v:+.2f}")
    out["sign_flip_p"] = out.sign_flip_p.map(lambda v: f"{v:.3f}")
    out["min_possible_p"] = out.min_possible_p.map(lambda v: f"{v:.3f}")
    out["verdict"] = [("not resolved" if not sig else ("better" if good else "worse")) if sig is not None else "one seed"
                      for sig, good in zip(out.significant, out.better)]  # fmt: skip
    keys = [
        k
        for k in ("table", "dataset", "sample_rate", "shots")
        if k in out and out[k].nunique(dropna=False) > 1
    ]
    return out[keys + list(GAP_COLUMNS)].rename(columns=GAP_COLUMNS)


def plot_relationship(r, target_classes: list[str], source_classes: list[str], title: str = ""):
    """Heat map of a Co-Tuning relationship R = p(y_s | y_t) [N_t, N_p] (rows: target classes). Returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    r = np.asarray(r)
    fig, ax = plt.subplots(figsize=(0.45 * r.shape[1] + 2.5, 0.4 * r.shape[0] + 1.5))
    sns.heatmap(pd.DataFrame(r, index=target_classes, columns=source_classes), vmin=0, vmax=1, cmap="viridis",
                annot=r.shape[1] <= 12, fmt=".2f", cbar_kws={"label": "p(source class | target class)"}, ax=ax)  # fmt: skip
    ax.set_xlabel("source class (kept source head)")
    ax.set_ylabel("target class")
    ax.set_title(title)
    fig.tight_layout()
    return fig
