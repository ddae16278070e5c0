"""What the report notebook shows, one call per section, so ``notebooks/report.py`` stays a handful of lines.

For every table of the paper (both protocols): which cells finished, which did not and why (not run, failed, method
not implemented), the summary table (mean ± std over seeds, n), each method's paired gap to fine-tuning with a 95 %
bootstrap CI, and two figures (summary and learning curves) saved as PNG next to the HTML. The report ends with the
provenance of the numbers and the commands that regenerate them.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are saved and embedded; no display server is needed

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from IPython.display import HTML, Image, Markdown, display  # noqa: E402

from transferlab import reports, reports_claims, reports_rl  # noqa: E402
from transferlab.papers import PAPERS, published  # noqa: E402
from transferlab.papers.rl_common import RL_CLAIMS  # noqa: E402
from transferlab.results import load_results  # noqa: E402
from transferlab.runner import plan  # noqa: E402

STATUS_TEXT = {
    "done": "finished",
    "todo": "not run",
    "retry": "failed (see failed.json)",
    "missing": "not implemented",
}


class PaperReport:
    def __init__(self, paper: str, results_dir: str = "results", figures_dir: str = "reports/figures"):
        self.spec = PAPERS.get(paper)
        from transferlab.nbexec import (
            REPO,
        )  # relative paths: the repository's, wherever the kernel runs (make lab)

        results_dir, figures_dir = (
            str(p if Path(p).is_absolute() else REPO / p) for p in (results_dir, figures_dir)
        )
        self.results_dir = results_dir
        self.figures = Path(figures_dir)
        self.figures.mkdir(parents=True, exist_ok=True)
        self.df = load_results(results_dir, paper=paper)
        if self.df.attrs.get("unreadable"):
            files = "\n".join(f"- `{f}`" for f in self.df.attrs["unreadable"])
            display(Markdown(f"**Skipped {len(self.df.attrs['unreadable'])} unreadable or partial result file(s)** "
                             f"(their cells count as not finished; `transferlab run` re-runs them):\n\n{files}"))  # fmt: skip

    def header(self) -> None:
        s = self.spec
        n = len(self.df)
        display(Markdown(f"## {s.title}\n\nPaper: [{s.link}]({s.link}) · notebook `notebooks/{s.notebook}.py` · "
                         f"{n} finished run{'s' if n != 1 else ''} under `{self.results_dir}/{s.name}/`"))  # fmt: skip
        if s.not_implemented:
            items = "\n".join(f"- **{k}**: {v}" for k, v in s.not_implemented.items())
            display(Markdown(f"Parts of the paper not implemented in transferlab:\n\n{items}"))

    def tables(self) -> None:
        # tables with finished runs first, then mini, demo, paper, each in the paper module's order (main table
        # first); a demo table only when it has runs (it is the mini table's shortened twin)
        ran = set(zip(self.df["table"], self.df["protocol"])) if len(self.df) else set()
        rank = {"mini": 0, "demo": 1, "paper": 2}
        items = [kv for kv in self.spec.tables.items() if kv[0][1] != "demo" or kv[0] in ran]
        for (name, protocol), table in sorted(items, key=lambda kv: (kv[0] not in ran, rank[kv[0][1]])):
            self._table(name, protocol, table)

    def table(self, name: str, protocol: str) -> None:
        """One table's section (what a paper notebook shows after running the table)."""
        self._table(name, protocol, self.spec.table(name, protocol))

    def _table(self, name: str, protocol: str, table) -> None:
        display(
            Markdown(
                f"### {table.title}\n\nTable `{name}`, **{protocol} protocol**. Settings: {table.provenance}."
            )
        )
        planned = plan(self.spec.name, name, protocol, root=self.results_dir)
        counts = pd.Series([p.status for p in planned]).map(STATUS_TEXT).value_counts()
        display(Markdown("Cells: " + ", ".join(f"{v} {k}" for k, v in counts.items())))
        self._cost(name, protocol)
        sub = (
            self.df[(self.df.get("table") == name) & (self.df.get("protocol") == protocol)]
            if len(self.df)
            else self.df
        )
        if sub.empty:
            display(Markdown(f"*No finished runs yet.* Run: `transferlab run {self.spec.name} --table {name} "
                             f"--protocol {protocol}`"))  # fmt: skip
            if protocol == "paper":
                self._published_only(table)
            return
        self._overridden(sub, planned)
        if table.kind == "design":  # a validation-only grid: never show its test numbers
            display(Markdown("**Design table** (settings chosen on validation, design seeds only; test numbers are "
                             f"not shown): {table.notes}"))  # fmt: skip
            display(HTML(reports_claims.design_summary(sub).to_html(index=False, classes="design")))
            return
        sub = reports.with_best_single(sub)  # hub tables: the best single model, chosen by validation
        summary = reports.summarize(sub)
        if protocol == "mini":
            display(Markdown("*Mini protocol: embedded CPU-scale data; these numbers are not comparable to any "
                             "published number and are never set beside them.*"))  # fmt: skip
        elif protocol == "demo":
            display(Markdown(f"**Demo protocol** (n = 1, no intervals, no claims). {table.notes}"))
        shown = reports.display_table(summary, protocol)
        if protocol == "paper":  # published numbers only ever stand beside paper-protocol results
            self._peer_note()
            extra = published.beside(summary, self.spec.name)
            shown = pd.concat([shown, extra[[c for c in extra.columns if c not in summary.columns]]], axis=1)
            display(Markdown("Published numbers: the paper's own where transcribed (else *not transcribed*); peer "
                             "numbers are TLlib's re-implementation, which selects the best epoch **on the test "
                             "split**, a different protocol from ours."))  # fmt: skip
        display(HTML(shown.to_html(index=False, classes="results", na_rep="—")))
        self._claims(sub, name, protocol)
        self._gaps(sub)
        stem = f"{self.spec.name}-{name}-{protocol}"
        if reports_rl.is_rl(sub):  # RL: IQM with stratified-bootstrap intervals, curves against agent steps
            self._rl(sub, name, stem)
            return
        self._routing(sub, stem)
        self._landmarks(sub, stem, protocol)
        self._figure(reports.plot_summary(sub), f"{stem}-summary.png")
        self._figure(reports.plot_curves(sub), f"{stem}-curves.png")

    def _peer_note(self) -> None:
        """How a peer reproduction's numbers compare with the paper's own where both exist (a different protocol)."""
        both = published.peer_vs_paper(self.spec.name)
        if both.empty:
            return
        by_rate = both.groupby("sample_rate")["peer − paper"].mean()
        rates = ", ".join(f"{d:+.2f} at {r:.0%}" for r, d in by_rate.items())
        ex = both[(both.method == "finetune") & (both.sample_rate == both.sample_rate.min())].head(1)
        example = (f" (e.g. {ex.dataset.iloc[0]} fine-tuning at {ex.sample_rate.iloc[0]:.0%}: paper {ex.paper.iloc[0]:.2f}, "
                   f"TLlib {ex.peer.iloc[0]:.2f})" if len(ex) else "")  # fmt: skip
        display(Markdown(f"Where both exist ({len(both)} cells), TLlib's numbers differ from the paper's by {rates} "
                         f"on average{example}: TLlib's protocol differs (it selects its best epoch on the test "
                         "split), so its numbers are not the paper's and neither are a target for ours."))  # fmt: skip

    def _rl(self, sub: pd.DataFrame, name: str, stem: str) -> None:
        display(Markdown("Evaluation return of the final policy: interquartile mean over seeds, with a 95 % "
                         "stratified-bootstrap interval (Agarwal et al. 2021) only from 10 runs — below that the "
                         "paired t-intervals above carry the uncertainty; AUC = the mean training return over "
                         "the learning curve. The best single source is chosen by the final *training* return, "
                         "never by evaluation episodes."))  # fmt: skip
        display(HTML(reports_rl.iqm_table(sub).to_html(index=False, classes="results", na_rep="—")))
        display(Markdown(reports_rl.claim_note(sub, RL_CLAIMS.get(self.spec.name, "not stated"))))
        self._figure(reports_rl.plot_curves(sub), f"{stem}-curves.png")

    def _published_only(self, table) -> None:
        """The published and peer numbers a paper-protocol table will stand beside, before any run of ours."""
        cells = pd.DataFrame([c.params for c in table.cells(seeds=[0], paper=self.spec.name)])
        keys = [k for k in ("dataset", "method", "sample_rate", "pretrained") if k in cells]
        frame = cells[keys].drop_duplicates().reset_index(drop=True)
        frame["test_at_best_val_mean"] = float("nan")
        numbers = published.beside(frame, self.spec.name)
        numbers = numbers[
            [c for c in numbers.columns if c != "test_at_best_val_mean" and not c.startswith("ours")]
        ]
        peer_cols = [c for c in numbers.columns if c.startswith("peer")]
        known = (numbers["paper"] != published.NOT_TRANSCRIBED) | (numbers[peer_cols] != "—").any(axis=1)
        if not known.any():
            display(Markdown("No published or peer number is known for this table's cells."))
            return
        display(Markdown(f"Published and peer numbers known for {int(known.sum())} of the table's {len(numbers)} "
                         "configurations (ours: not run yet). Peer numbers are TLlib's re-implementation, which "
                         "selects the best epoch **on the test split**."))  # fmt: skip
        display(HTML(numbers[known].to_html(index=False, classes="published", na_rep="—")))
        self._peer_note()

    def _gaps(self, sub: pd.DataFrame) -> None:
        # hub tables compare with the best single model (chosen by validation), others with fine-tuning
        baseline = reports.BEST_SINGLE if reports.BEST_SINGLE in set(sub.method) else "finetune"
        if baseline not in set(sub.method):
            return
        others = sorted(set(sub.method) - {baseline, *reports.SINGLE_METHODS})
        _, label, sign = reports.metric_of(sub)
        name = (
            "the best single model (chosen by validation)"
            if baseline == reports.BEST_SINGLE
            else "fine-tuning"
        )
        for column, when in (
            ("test_at_best_val", "at the best-validation step"),
            ("test_last", "at the last step"),
        ):
            gaps = [
                g
                for g in (reports.paired_gap(sub, m, baseline, column=column) for m in others)
                if not g.empty
            ]
            if not gaps:
                continue
            display(Markdown(
                f"Paired difference to {name}, method − baseline on the same seeds, test {label} {when} "
                f"({'higher' if sign > 0 else 'lower'} is better): mean, 95 % t-interval, exact sign-flip p-value "
                "(its smallest possible value with n pairs is 2/2ⁿ), a bootstrap interval only with ≥ 10 pairs. "
                "*better* / *worse* only when the t-interval excludes 0; otherwise *not resolved*."))  # fmt: skip
            display(HTML(reports.gap_table(pd.concat(gaps)).to_html(index=False, classes="gaps")))

    def _claims(self, sub: pd.DataFrame, name: str, protocol: str) -> None:
        """The paper's claims this table tests, with the mini verdict per baseline (paired over seeds)."""
        for claim in (c for c in self.spec.claims if c.table == name and protocol == "mini"):
            frame = reports_claims.with_last_step(sub, claim)
            display(Markdown(f"**Does the mini result agree with the paper?** Claim: {claim.text} — "
                             f"`{claim.method}` {reports_claims.verdict_line(frame)} (paired over seeds, test at "
                             "the best-validation step; *agrees*/*disagrees* only when the 95 % t-interval "
                             "excludes 0)."))  # fmt: skip
            if not frame.empty:
                display(HTML(frame.to_html(index=False, classes="claims")))

    def _overridden(self, sub: pd.DataFrame, planned) -> None:
        """Runs that are none of the table's cells (``transferlab run --set``) are said to be, with the fields whose
        values no cell of the table has."""
        cells = [p.cell for p in planned if p.cell.available]
        foreign = sub[~sub.run_id.isin({p.run_dir.name for p in planned if p.run_dir is not None})]
        differ = {}
        for key in sorted({k for c in cells for k in c.params} & set(foreign.columns)):
            allowed = {json.dumps(c.params.get(key), default=str) for c in cells}
            seen = {json.dumps(v, default=str) for v in foreign[key]} - allowed
            if seen and key not in ("seed", "method_params"):
                differ[key] = ", ".join(sorted(v.strip('"') for v in seen))
        if differ:
            fields = "; ".join(f"**{k}** = {v}" for k, v in differ.items())
            display(Markdown(f"**{len(foreign)} of these runs do not use the table's settings** (run with `--set`): "
                             f"{fields}. They are not the table's experiment and not comparable with its published "
                             "numbers."))  # fmt: skip

    def _cost(self, name: str, protocol: str) -> None:
        """The table's measured cost table (``transferlab cost``), if it was measured."""
        from transferlab.perf.table import load_table

        loaded = load_table(self.spec.name, name, protocol, self.results_dir)
        if loaded is None:
            return
        frame, saved = loaded
        p, first = saved["provenance"], (saved["rows"] or [{}])[0]
        timing = f"the fastest of {first.get('repeats', 5)} timed runs of {first.get('steps', 10)} steps"
        display(Markdown(f"Measured cost (`transferlab cost {self.spec.name} --table {name} --protocol {protocol}`): "
                         f"{saved['dataset']}, batch {frame.batch.iloc[0]}, on {p.get('device')} (load average "
                         f"{saved.get('load_average')}); parameters in millions (at inference: what prediction "
                         f"runs; lite Zoo-Tuning collapsed), MACs per image counted by torch's FLOP counter, "
                         f"{timing}, the peak memory of a training step in a fresh process."))  # fmt: skip
        display(HTML(frame.drop(columns=["device"]).round(3).to_html(classes="cost")))

    def _routing(self, sub: pd.DataFrame, stem: str) -> None:
        """Hub-Pathway: how the pathways used the hub (test set, best-validation weights) and the compute spent."""
        from transferlab import reports_hub

        frame = reports_hub.routing(sub[sub.method == "hub_pathway"])
        if frame.empty:
            return
        display(Markdown("Hub-Pathway routing on the test set (selected weights; mean over seeds): the fraction of "
                         "test images each hub model serves (a sample uses k models, so a row sums to k), the "
                         "routing entropies, and the FLOPs actually spent per sample, measured, against running "
                         "the whole hub."))  # fmt: skip
        display(HTML(reports_hub.routing_summary(frame).to_html(index=False, classes="routing")))
        first = frame.iloc[0]
        usage = reports_hub.per_class_usage(sub, first["variant"], first["dataset"])
        title = f" ({first['dataset']}, all seeds)"
        self._figure(reports_hub.plot_routing(frame, usage, title), f"{stem}-routing.png")

    def _landmarks(self, sub: pd.DataFrame, stem: str, protocol: str) -> None:
        """Landmark tables: predicted vs true landmarks on the first test images (seed 0 of each method)."""
        if reports.metric_of(sub)[0] != "nme":
            return
        from transferlab import reports_landmarks

        runs = reports_landmarks.example_runs(sub[sub.method != reports.BEST_SINGLE])
        fig = reports_landmarks.plot_predictions(runs)
        if fig is None:
            display(
                Markdown("*The test images of these runs are not under their data root: no landmark figure.*")
            )
            return
        proxy = (
            " These are keypoints of Fashion-MNIST silhouettes (a proxy), not faces."
            if protocol == "mini"
            else ""
        )
        display(Markdown("Predicted (red crosses) vs true (green circles) landmarks on the first test images, "
                         f"weights selected by validation NME, one run per method at its lowest seed.{proxy}"))  # fmt: skip
        self._figure(fig, f"{stem}-landmarks.png")

    def _figure(self, fig, filename: str) -> None:
        path = self.figures / filename
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        display(Image(filename=str(path)))  # the PNG itself, so the HTML embeds exactly the saved figure

    def provenance(self) -> None:
        df = self.df
        lines = ["### Provenance", ""]
        if len(df):
            lines.append(
                f"- code versions (git sha): {', '.join(sorted(map(str, df.git_sha.dropna().unique()))) or 'unknown'}"
            )
            lines.append(f"- devices: {', '.join(sorted(map(str, df.device_name.dropna().unique())))}")
        from transferlab.results import provenance

        p = provenance()
        lines.append(f"- report built with transferlab {p['transferlab']}, torch {p['torch']}, "
                     f"torchvision {p['torchvision']}, Python {p['python']} (git {p['git_sha']}, dirty={p['git_dirty']})")  # fmt: skip
        lines += ["", "Regenerate:", ""]
        for name, protocol in sorted(self.spec.tables):
            lines.append(f"    transferlab run {self.spec.name} --table {name} --protocol {protocol}")
        lines.append(f"    transferlab report {self.spec.name}")
        display(Markdown("\n".join(lines)))
