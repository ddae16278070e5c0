"""``transferlab report <paper> --markdown``: a paper's result tables and claim verdicts as Markdown.

The same numbers as the HTML report (computed from the ``metrics.json`` files), in the form the README quotes: one
table per results table (rows: methods; columns: the cells the table varies, e.g. sampling rate or dataset; entries:
test at the best-validation step, mean ± std over seeds, and n), then each claim's paired verdicts (mean gap,
95 % t-interval, exact sign-flip p-value). Mini numbers are labelled as such.
"""

from __future__ import annotations

import pandas as pd

from transferlab import reports, reports_claims
from transferlab.config import DEMO_STEPS_SCALE
from transferlab.papers import PAPERS
from transferlab.results import load_results

AXES = ("dataset", "sample_rate", "shots")


def _cell_label(row: pd.Series, axes: list[str]) -> str:
    parts = []
    for a in axes:
        v = row[a]
        parts.append(f"{v:.0%}" if a == "sample_rate" else (f"{v} shots" if a == "shots" else str(v)))
    return " / ".join(parts) or "all"


def table_markdown(df: pd.DataFrame, column: str = "test_at_best_val") -> str:
    """Methods × varying cells, ``mean ± std (n)`` of ``column``."""
    if df.empty:
        return "*no finished runs*"
    sub = reports.with_best_single(df)
    summary = reports.summarize(sub)
    axes = [a for a in AXES if a in summary and summary[a].nunique(dropna=False) > 1]
    summary["cell"] = [_cell_label(r, axes) for _, r in summary.iterrows()]
    cells = list(dict.fromkeys(summary["cell"]))
    lines = [f"| method | {' | '.join(cells)} |", "|---|" + "---|" * len(cells)]
    if "pretrained" in summary:  # a hub table's single models: one row per source, never one averaged row
        several = summary.groupby("variant")["pretrained"].transform(lambda p: p.astype(str).nunique() > 1)
        summary["variant"] = [f"{v} ({str(p).removeprefix('mini:')})" if many else v
                              for v, p, many in zip(summary["variant"], summary["pretrained"], several)]  # fmt: skip
    for variant, rows in summary.groupby("variant", sort=False):
        by_cell = {r["cell"]: r for _, r in rows.iterrows()}
        entries = []
        for c in cells:
            r = by_cell.get(c)
            if r is None:
                entries.append("")
                continue
            entry = reports.mean_std(r[f"{column}_mean"], r[f"{column}_std"], r["n"])
            if (
                column == "test_at_best_val" and "test_last_mean" in r
            ):  # the last step beside the selected one
                entry += f"; last step {r['test_last_mean']:.2f}"
            chosen = str(r.get("chosen", "") or "")
            if chosen and chosen != "nan":  # best single: which model validation chose, per seed
                counts = pd.Series(chosen.split(", ")).value_counts()
                entry += "; chose " + ", ".join(f"{k} ×{v}" for k, v in counts.items())
            entries.append(entry)
        lines.append(f"| {variant} | {' | '.join(entries)} |")
    return "\n".join(lines)


def claims_markdown(df: pd.DataFrame, claim) -> str:
    frame = reports_claims.with_last_step(reports.with_best_single(df), claim)
    head = f"*{claim.text}* — `{claim.method}` {reports_claims.verdict_line(frame)}."
    if frame.empty:
        return head
    cols = [c for c in frame.columns if c not in ("smallest possible p", "95 % bootstrap (n ≥ 10)")]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame[cols].itertuples(index=False)]
    return head + "\n\n" + "\n".join(lines)


def paper_markdown(paper: str, results_dir: str = "results", protocol: str = "mini") -> str:
    spec = PAPERS.get(paper)
    df = load_results(results_dir, paper=paper, protocol=protocol)
    out = [f"## {spec.title} — {protocol} protocol"]
    if protocol == "mini":
        out.append("*Mini protocol: embedded CPU-scale data; not comparable to any published number.*")
    elif protocol == "demo":
        out.append(f"*Demo protocol: the mini tables at seed 0 with every step count × {DEMO_STEPS_SCALE:g}, on the demo "
                   "hub (pre-trained for as many fewer steps; n = 1, no intervals, no claims); not the mini protocol's "
                   "numbers.*")  # fmt: skip
    for name in spec.table_names(protocol):
        sub = df[df.table == name] if len(df) else df
        _, label, sign = reports.metric_of(sub) if len(sub) else ("", "accuracy (%)", 1)
        out.append(f"### `{name}`: {spec.table(name, protocol).title}\n\nTest {label} at the best-validation "
                   f"step ({'higher' if sign > 0 else 'lower'} is better), mean ± std (n seeds); the mean at the last step "
                   "beside it:\n")  # fmt: skip
        out.append(table_markdown(sub))
        for claim in (
            c for c in spec.claims if c.table == name and protocol == "mini"
        ):  # n = 1 demo: no claims
            out.append("\n" + claims_markdown(sub, claim))
    return "\n\n".join(out) + "\n"


__all__ = ["claims_markdown", "paper_markdown", "table_markdown"]
