"""RL tables in the reports: the interquartile mean of the evaluation returns with stratified-bootstrap intervals,
and the learning curves (training return against agent steps).

Per method (and source policy): the IQM over seeds of the final policy's mean evaluation return, per game and —
with more than one game — over games, each game's scores divided by the mean of ``rl_scratch`` on that game (a
scratch-normalised score, ours: no human or random reference scores are shipped) so that games of different score
scales can be pooled. Intervals: ``stats.stratified_bootstrap_iqm`` (Agarwal et al. 2021), shown only from
``stats.BOOTSTRAP_MIN_N`` (10) runs — the suite's rule for any bootstrap; with fewer (the mini table: one game × 5
seeds) the IQM stands alone and the paired t-intervals over seeds (the report's gap table) carry the uncertainty.
With fewer than 5 seeds a table makes no claim, and the report says so.
"""

from __future__ import annotations

import pandas as pd

from transferlab import stats

CLAIM_SEEDS = 5


def is_rl(df: pd.DataFrame) -> bool:
    return "metric" in df and (df["metric"] == "return").any()


def label(df: pd.DataFrame) -> pd.Series:
    """The method, with the source policy for single-source rows (``rl_finetune (seaquest_mini)``)."""
    single = ~df.pretrained.astype(str).str.startswith(("hub:", "none", "best of"))
    names = df.pretrained.astype(str).str.removeprefix("policy:")
    return df.variant.where(~single, df.variant + " (" + names + ")")


def iqm_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per method (and source): IQM of the evaluation return with its 95 % stratified-bootstrap interval,
    per game (raw scores) and, with several games, over games (scratch-normalised); seeds (runs) and AUC."""
    df = df.assign(row=label(df))
    games = sorted(df.dataset.unique())
    scratch = df[df.method == "rl_scratch"].groupby("dataset").test_at_best_val.mean()
    rows = []
    for name, runs in df.groupby("row"):
        row = {"method": name, "seeds": int(runs.groupby("dataset").size().min())}
        for game in games:
            g = runs[runs.dataset == game]
            est = stats.stratified_bootstrap_iqm({game: g.test_at_best_val})
            row[f"{game}: IQM [95 % CI]"] = _fmt(est)
            row[f"{game}: AUC"] = round(float(g.auc.mean()), 1) if "auc" in g and len(g) else float("nan")
        if len(games) > 1 and len(scratch) == len(games):
            norm = {game: runs[runs.dataset == game].test_at_best_val / scratch[game] for game in games}
            row["all games: IQM / scratch [95 % CI]"] = _fmt(stats.stratified_bootstrap_iqm(norm), 3)
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(est: dict, digits: int = 1) -> str:
    if est["runs"] == 0:
        return "—"
    if est["runs"] < stats.BOOTSTRAP_MIN_N:  # a bootstrap of a handful of runs overstates what is known
        return f"{est['iqm']:.{digits}f} (n={est['runs']}; no interval below n = {stats.BOOTSTRAP_MIN_N})"
    return f"{est['iqm']:.{digits}f} [{est['low']:.{digits}f}, {est['high']:.{digits}f}] (n={est['runs']})"


def curves(df: pd.DataFrame) -> pd.DataFrame:
    """Long-form learning curves: one row per run and curve point (agent steps, training return)."""
    rows = []
    df = df[
        df.method != "best_single"
    ]  # its curve is the chosen source's, drawn once under that source's name
    for (_, run), row in zip(df.iterrows(), label(df)):
        from transferlab.results import load_result

        for h in load_result(run["run_dir"]).history:
            rows.append({"method": row, "dataset": run["dataset"], "seed": run["seed"],
                         "agent_steps": h["agent_steps"], "train_return": h["train_return"]})  # fmt: skip
    return pd.DataFrame(rows)


def plot_curves(df: pd.DataFrame):
    """Training return against agent steps, mean over seeds with a ±1 sd band, one panel per game."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = curves(df)
    if long.empty or long.train_return.notna().sum() == 0:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.text(0.5, 0.5, "no learning curve to plot", ha="center")
        return fig
    grid = sns.relplot(data=long, x="agent_steps", y="train_return", hue="method",
                       hue_order=sorted(long.method.unique()), col="dataset", kind="line", errorbar="sd",
                       height=3.2, aspect=1.4)  # fmt: skip
    grid.set_axis_labels("agent steps", "training episode return")
    return grid.figure


def claim_note(df: pd.DataFrame, claim: str) -> str:
    """Whether the table may speak to the paper's direction (≥ 5 seeds per cell) or makes no claim."""
    seeds = int(df.groupby(["dataset", "method", "pretrained"]).seed.nunique().min()) if len(df) else 0
    if seeds < CLAIM_SEEDS:
        return (f"**No claim.** This RL table was run with {seeds} seed(s) per cell (fewer than {CLAIM_SEEDS}): "
                f"it says nothing about the paper's direction ({claim}).")  # fmt: skip
    return (
        f"With {seeds} seeds per cell, the paired gaps above test the paper's direction ({claim}); only an "
        "interval that excludes 0 counts."
    )


__all__ = ["CLAIM_SEEDS", "claim_note", "curves", "iqm_table", "is_rl", "label", "plot_curves"]
