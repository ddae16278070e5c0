"""What a paper notebook does, in three calls, so that ``notebooks/<paper>.py`` stays a handful of lines.

A paper notebook's ``parameters`` cell identifies a run and nothing else — ``paper``, ``table``, ``protocol``,
``scope`` and, for one cell, ``method`` / ``dataset`` / ``sample_rate`` / ``shots`` / ``pretrained`` /
``method_params`` (empty: the table's first value on that axis) and ``seed`` — plus an ``overrides`` dict for
exploration. Every other setting comes from the paper spec (:func:`transferlab.papers.resolve`), which the
notebook shows. ``scope``:

- ``"cell"`` — resolve and train that one cell here (``transferlab.run``), then plot its learning curve;
- ``"table"`` — run the whole table through the batch runner (warm workers; ``seeds``, ``jobs``), then show the
  table's results, paired gaps and figures as the report does (what ``make demo`` executes with papermill);
- ``"config"`` — run exactly the flat configuration ``config`` (how ``transferlab run --notebooks`` uses the
  notebook for one cell).

A name papermill injects that is not a parameter (``-p learning_rate 0.1``) is an error listing the parameters, not
a warning that leaves the default in place. Relative paths (``out_dir``, the results root) resolve against the
repository root, wherever the notebook runs from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transferlab import api
from transferlab.config import ConfigError, RunConfig
from transferlab.nbexec import REPO
from transferlab.papers import IDENTITY, PAPERS, resolve

PARAMETERS = ("paper", "table", "protocol", "scope", *IDENTITY, "seed", "overrides", "seeds", "jobs", "results",
              "out_dir", "config")  # fmt: skip
SCOPES = ("cell", "table", "config")
_IGNORED = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def parameters_of(namespace: dict[str, Any]) -> dict[str, Any]:
    """The notebook's parameters from its globals; ConfigError for any other injected name."""
    names = {k for k, v in namespace.items() if not k.startswith("_") and k not in _IGNORED
             and not callable(v) and type(v).__name__ != "module"}  # fmt: skip
    unknown = sorted(names - set(PARAMETERS))
    if unknown:
        raise ConfigError(f"unknown notebook parameter(s) {unknown}: a paper notebook takes {', '.join(PARAMETERS)}; "
                          "other settings go into overrides={...}")  # fmt: skip
    return {k: namespace[k] for k in PARAMETERS if k in namespace}


def _repo_path(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO / p


class Notebook:
    def __init__(self, namespace: dict[str, Any]):
        self.p = parameters_of(namespace)
        scope = self.p.get("scope", "cell")
        if scope not in SCOPES:
            raise ConfigError(f"scope={scope!r} is not valid; choose one of: {', '.join(SCOPES)}")
        self.scope = scope
        self.root = _repo_path(self.p.get("results") or os.environ.get("TRANSFERLAB_RESULTS", "results"))
        self.result = None
        self.cfg: RunConfig | None = None
        if scope == "config":
            self.cfg = RunConfig.from_flat(self.p["config"])
        elif scope == "cell":
            identity = {k: self.p[k] for k in IDENTITY if self.p.get(k) not in (None, "", 0, 0.0, {})}
            self.cfg = resolve(self.p["paper"], self.p["table"], self.p.get("protocol", "mini"),
                               int(self.p.get("seed", 0)), self.p.get("overrides") or {}, **identity)  # fmt: skip
        else:
            self.tables = self._tables()

    def _tables(self) -> list[str]:
        """scope="table": the tables named by ``table`` ("all": every table of the protocol; "a,b": several)."""
        spec, protocol = PAPERS.get(self.p["paper"]), self.p.get("protocol", "mini")
        names = (
            spec.table_names(protocol, demo_only=True)
            if self.p["table"] == "all"
            else self.p["table"].split(",")
        )
        for name in names:
            spec.table(name, protocol)  # ConfigError naming the valid tables
        return names

    def show_config(self):
        """The resolved configuration (cell scopes) or the table's plan (table scope), as a DataFrame."""
        import pandas as pd

        if self.cfg is not None:
            flat = self.cfg.to_flat()
            return pd.DataFrame({"value": [str(v) for v in flat.values()]}, index=list(flat))
        from transferlab.runner import plan

        protocol, seeds = self.p.get("protocol", "mini"), self.p.get("seeds") or None
        planned = [p for t in self.tables for p in plan(self.p["paper"], t, protocol, seeds, self.root)]
        frame = pd.DataFrame([{"table": p.cell.params.get("table"), "status": p.status} for p in planned])
        return frame.groupby(["table", "status"]).size().unstack(fill_value=0)

    def execute(self):
        """Train the cell (or run the table); returns the Result (cell) or the runner's counts (table)."""
        if self.cfg is not None:
            out = _repo_path(self.p["out_dir"]) if self.p.get("out_dir") else None
            self.result = api.run(self.cfg, out, root=self.root)
            print(self.result.summary())
            return self.result
        from transferlab.runner import run_tables

        counts = run_tables([(self.p["paper"], t) for t in self.tables], self.p.get("protocol", "mini"),
                            self.p.get("seeds") or None, int(self.p.get("jobs") or os.cpu_count() or 1),
                            root=self.root)  # fmt: skip
        if counts.get("failed"):
            raise RuntimeError(
                f"{counts['failed']} cell(s) failed; see the lines above and each cell's run.log"
            )
        return counts

    def show(self) -> None:
        """A cell's learning curve; a table's results, gaps and figures (as in its report)."""
        from IPython.display import display

        if self.result is not None:
            from transferlab import reports

            display(reports.plot_curves([self.result]))
            return
        from transferlab.report_view import PaperReport

        report = PaperReport(self.p["paper"], str(self.root), str(self.root / ".figures"))
        for name in self.tables:
            report.table(name, self.p.get("protocol", "mini"))

    def routing(self):
        """Hub-Pathway: how the cell's pathways used the hub on the test set (selected weights), as a DataFrame."""
        import pandas as pd

        stats = (self.result.extra if self.result is not None else {}).get("test_statistics", {})
        r = stats.get("routing")
        if r is None:
            print(
                "no routing statistics: only a hub_pathway cell run in this notebook (scope='cell') has them"
            )
            return None
        print(f"FLOPs per sample: {r['flops_per_sample'] / 1e6:.2f} M spent, {r['flops_per_sample_ensemble'] / 1e6:.2f} M "
              "for the whole hub")  # fmt: skip
        return pd.DataFrame({"chosen fraction": r["chosen_fraction"], "mean weight": r["mean_weight"]},
                            index=r["experts"]).round(3)  # fmt: skip


__all__ = ["PARAMETERS", "SCOPES", "Notebook", "parameters_of"]
