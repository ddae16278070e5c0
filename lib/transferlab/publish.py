"""``transferlab report``: execute ``notebooks/report.py`` with papermill, export HTML without input cells.

Outputs: ``reports/<paper>.ipynb`` (the executed report notebook), ``reports/<paper>.html`` and
``reports/figures/<paper>-*.png``; ``--all`` adds ``reports/index.html`` linking every paper's report.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

from transferlab.results import atomic_write_bytes
from transferlab.runner import REPO, notebook_ipynb, pythonpath_with_lib


def build_report(paper: str, results_dir: str | Path = "results", out_dir: str | Path = "reports") -> Path:
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = notebook_ipynb("report", out / ".notebooks")
    executed = out / f"{paper}.ipynb"
    os.environ["PYTHONPATH"] = pythonpath_with_lib(os.environ.get("PYTHONPATH"))  # the kernel inherits it
    params = {
        "paper": paper,
        "results_dir": str(Path(results_dir).resolve()),
        "figures_dir": str((out / "figures").resolve()),
    }
    papermill.execute_notebook(
        str(source),
        str(executed),
        parameters=params,
        kernel_name="python3",
        cwd=str(REPO),
        progress_bar=False,
    )
    nb = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    target = out / f"{paper}.html"
    atomic_write_bytes(target, body.encode())
    return target


def build_index(papers: list[str], out_dir: str | Path = "reports") -> Path:
    from transferlab.papers import PAPERS

    out = Path(out_dir)
    items = []
    for name in papers:
        spec = PAPERS.get(name)
        exists = (out / f"{name}.html").exists()
        link = f'<a href="{name}.html">{html.escape(spec.title)}</a>' if exists else html.escape(spec.title)
        items.append(f"<li>{link} — <code>{name}</code>{'' if exists else ' (no report yet)'}</li>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>transferlab reports</title></head><body>"
        f"<h1>transferlab reports</h1><ul>{''.join(items)}</ul>"
        f"<p>Built {time.strftime('%Y-%m-%d %H:%M')}. Mini-protocol numbers are not comparable to published ones.</p>"
        "</body></html>"
    )
    target = out / "index.html"
    atomic_write_bytes(target, page.encode())
    return target
