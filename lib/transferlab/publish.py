"""``transferlab report``: execute ``notebooks/report.py`` with papermill, export HTML without input cells.

Outputs: ``reports/<paper>.ipynb`` (the executed report notebook), ``reports/<paper>.html`` and
``reports/figures/<paper>-*.png``; ``--all`` adds ``reports/index.html`` linking every paper's report.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
import time
from pathlib import Path

from transferlab.nbexec import REPO, notebook_ipynb, pythonpath_with_lib
from transferlab.results import atomic_write_bytes


def build_report(paper: str, results_dir: str | Path = "results", out_dir: str | Path = "reports") -> Path:
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = notebook_ipynb(
        "report", out / ".notebooks" / paper
    )  # one per paper: reports may build in parallel
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
        # ipykernel 7 warns on every start that its local TCP sockets are unencrypted; on a terminal building five
        # reports that is noise, and the kernel's errors still arrive as cell errors
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    nb = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    target = out / f"{paper}.html"
    atomic_write_bytes(target, body.encode())
    return target


def build_reports(papers: list[str], results_dir: str | Path = "results", out_dir: str | Path = "reports",
                  jobs: int = 1, out=print) -> None:  # fmt: skip
    """``build_report`` for each paper, ``jobs`` at a time in child processes (each report is its own papermill
    kernel; one at a time leaves a core idle while a kernel starts or nbconvert writes). A failed report is an error
    naming the paper and the end of its output, after the others have finished."""
    if jobs <= 1 or len(papers) <= 1:
        for name in papers:
            out(f"wrote {build_report(name, results_dir, out_dir)}")
        return
    queue, running, failed = list(papers), {}, []
    # each child's output goes to a file: a pipe read only at exit could fill and block
    logs = Path(out_dir) / ".logs"
    logs.mkdir(parents=True, exist_ok=True)
    while queue or running:
        while queue and len(running) < jobs:
            name = queue.pop(0)
            cmd = [sys.executable, "-m", "transferlab.publish", name, str(results_dir), str(out_dir)]
            with open(logs / f"{name}.log", "w") as log:  # the child holds its own copy of the descriptor
                running[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        for name, proc in list(running.items()):
            if proc.poll() is None:
                continue
            text = (logs / f"{name}.log").read_text(errors="replace")
            del running[name]
            if proc.returncode:
                failed.append(f"{name} (exit {proc.returncode}): {text.strip()[-1500:]}")
            else:
                out(text.strip().splitlines()[-1] if text.strip() else f"wrote {name}")
        time.sleep(0.2)
    if failed:
        raise RuntimeError("report(s) failed:\n" + "\n".join(failed))


def paper_status(paper: str, results_dir: str | Path) -> list[str]:
    """One line per table of ``paper``: finished cells of its cells (seeds as the table lists them)."""
    from transferlab.papers import PAPERS
    from transferlab.runner import plan

    spec, lines = PAPERS.get(paper), []
    for table, protocol in spec.tables:
        planned = plan(paper, table, protocol, root=results_dir)
        done = sum(p.status in ("done", "reuse") for p in planned)
        missing = sum(p.status == "missing" for p in planned)
        state = (
            "complete" if done == len(planned) - missing and done else ("not run" if not done else "partial")
        )
        extra = f", {missing} not implemented" if missing else ""
        lines.append(f"{table} ({protocol}): {done} of {len(planned)} cells finished{extra} — {state}")
    return lines


def build_index(
    papers: list[str], out_dir: str | Path = "reports", results_dir: str | Path = "results"
) -> Path:
    """``index.html``: every paper, a link to its report if built, and each table's state (how many cells ran)."""
    from transferlab.papers import PAPERS

    out = Path(out_dir)
    items = []
    for name in papers:
        spec = PAPERS.get(name)
        exists = (out / f"{name}.html").exists()
        link = f'<a href="{name}.html">{html.escape(spec.title)}</a>' if exists else html.escape(spec.title)
        status = "".join(f"<li>{html.escape(line)}</li>" for line in paper_status(name, results_dir))
        items.append(
            f"<li>{link} — <code>{name}</code>{'' if exists else ' (no report yet)'}<ul>{status}</ul></li>"
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>transferlab reports</title></head><body>"
        f"<h1>transferlab reports</h1><ul>{''.join(items)}</ul>"
        f"<p>Built {time.strftime('%Y-%m-%d %H:%M')} from <code>{html.escape(str(results_dir))}</code>. "
        "Mini-protocol numbers are not comparable to published ones.</p></body></html>"
    )
    target = out / "index.html"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, page.encode())
    return target


if (
    __name__ == "__main__"
):  # one report in a child process of build_reports: python -m transferlab.publish PAPER RESULTS OUT
    print(f"wrote {build_report(sys.argv[1], sys.argv[2], sys.argv[3])}")
