"""``transferlab run … --via-notebook``: each paper's tables executed through the paper's notebook with papermill.

The notebook (``scope="table"``, ``table="all"`` or one table) runs the tables through the same runner and warm
workers as ``transferlab run``, then shows each table's results, paired gaps and figures; the executed notebook is
kept at ``<results>/<paper>/<protocol>/notebook-<table>.ipynb``. Papermill's output streams to this terminal.
"""

from __future__ import annotations

from pathlib import Path

from transferlab.nbexec import child_env, execute_notebook, notebook_ipynb
from transferlab.papers import PAPERS


def run_papers(work: list[tuple[str, str]], protocol: str, seeds, jobs: int, root: str | Path) -> int:
    """Execute each paper's notebook for its tables in ``work``; returns 0, or 1 if any notebook failed."""
    root = Path(root).resolve()
    failed = 0
    by_paper: dict[str, list[str]] = {}
    for paper, table in work:
        by_paper.setdefault(paper, []).append(table)
    for paper, tables in by_paper.items():
        spec = PAPERS.get(paper)
        table = (
            "all"
            if sorted(tables) == sorted(spec.table_names(protocol, demo_only=True))
            else ",".join(tables)
        )
        out_dir = root / paper / protocol
        nb = notebook_ipynb(spec.notebook, out_dir / ".notebooks")
        params = {"paper": paper, "table": table, "protocol": protocol, "scope": "table", "seeds": list(seeds or []),
                  "jobs": jobs, "results": str(root)}  # fmt: skip
        output = out_dir / f"notebook-{'all' if table == 'all' else '-'.join(tables)}.ipynb"
        print(
            f"== {paper}: executing notebooks/{spec.notebook}.py (scope=table, table={table}) → {output}",
            flush=True,
        )
        code, _ = execute_notebook(
            nb, output, params, child_env(TRANSFERLAB_PROGRESS="text"), log=None, stream=True
        )
        if code:
            failed += 1
            print(
                f"== {paper}: the notebook failed (exit {code}); its output is above and in {output}",
                flush=True,
            )
    return 1 if failed else 0


__all__ = ["run_papers"]
