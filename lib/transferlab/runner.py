"""The batch runner: a paper table → one papermill execution per cell, each in its own process.

``run_table(paper, table, protocol)`` expands the table over seeds, skips every cell whose ``metrics.json`` already
exists for the same config hash, and runs the rest with the paper's notebook. Each cell is a separate ``papermill``
process (papermill kernels inherit their parent's environment, so GPU pinning with ``CUDA_VISIBLE_DEVICES`` must be
per process). The local executor keeps ``jobs`` processes busy and hands each one a GPU token when GPUs are present
(CPU threads are split between jobs otherwise).

Nothing finished is ever lost: a cell's result is written atomically by the cell itself, a killed runner (Ctrl-C,
SIGKILL) leaves finished cells untouched and unfinished ones with a checkpoint, and the next ``run`` resumes them.
A failed cell is recorded in ``failed.json`` next to its partial outputs and the grid goes on; a kernel-start
failure (a known papermill race) is retried once.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from transferlab.config import ConfigError
from transferlab.papers import PAPERS, Cell
from transferlab.results import RESULTS_DIR, atomic_write_json, read_json

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = Path(os.environ.get("TRANSFERLAB_NOTEBOOKS", REPO / "notebooks"))
KERNEL_START_ERRORS = ("Kernel died before replying", "Kernel didn't respond", "Address already in use")


@dataclass
class Planned:
    cell: Cell
    run_dir: Path | None  # None for a missing method
    status: (
        str  # todo | done | reuse (finished elsewhere) | retry (failed before) | missing (not implemented)
    )
    source: Path | None = None  # for reuse: the finished run of the same experiment


def plan(
    paper: str,
    table: str,
    protocol: str,
    seeds=None,
    root: Path | str = RESULTS_DIR,
    where: dict | None = None,
    overrides: dict | None = None,
) -> list[Planned]:
    """Expand a table into cells and say which are done. Raises ConfigError on any invalid name or value.

    ``where`` keeps the cells whose field equals one of the given values (field → list); ``overrides`` sets fields
    in every cell (a developer's validation run on other data, a shorter schedule): the config hash, and so the run
    directory, changes with them, so overridden runs never pass for the table's own."""
    spec = PAPERS.get(paper)
    cells = spec.table(table, protocol).cells(seeds=seeds, paper=paper)
    cells = select_cells(cells, where or {}, overrides or {})
    finished = finished_runs(root)
    out = []
    for cell in cells:
        if not cell.available:
            out.append(Planned(cell, None, "missing"))
            continue
        cfg = cell.config()  # validates every cell before anything runs
        run_dir = Path(root) / paper / protocol / cfg.run_id()
        metrics = run_dir / "metrics.json"
        done = metrics.exists() and _hash_of(metrics) == cfg.config_hash()
        if done:
            status = "done"
        elif cfg.config_hash() in finished:
            status = "reuse"  # the same experiment already finished in another table: copy, do not re-train
        else:
            status = "retry" if (run_dir / "failed.json").exists() else "todo"
        out.append(Planned(cell, run_dir, status, finished.get(cfg.config_hash())))
    return out


def select_cells(cells: list[Cell], where: dict, overrides: dict) -> list[Cell]:
    """The cells matching ``where`` with ``overrides`` applied, duplicates (after overriding) dropped."""
    from transferlab.papers import missing_reason

    for key, values in where.items():
        present = sorted({str(c.params.get(key)) for c in cells})
        if not any(c.params.get(key) in values for c in cells):
            raise ConfigError(
                f"no cell has {key} in {values}; the table's values of {key!r}: {', '.join(present)}"
            )
    out, seen = [], set()
    for c in cells:
        if not all(c.params.get(k) in v for k, v in where.items()):
            continue
        if overrides:
            params = {**c.params, **overrides}
            c = Cell(params, missing_reason(params))
        key = json.dumps(c.params, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def finished_runs(root: Path | str = RESULTS_DIR) -> dict[str, Path]:
    """config hash → run directory of every finished, original (not reused) run under ``root``."""
    index = {}
    for metrics in sorted(Path(root).glob("*/*/*/metrics.json")):
        try:
            d = read_json(metrics)
        except (OSError, ValueError):
            continue
        if not d.get("extra", {}).get("reused_from"):
            index.setdefault(d.get("config_hash"), metrics.parent)
    return index


def reuse(planned: Planned) -> None:
    """Write a finished run of the same experiment into this cell's directory, relabelled and marked as reused."""
    import shutil

    from transferlab.results import Result

    src, dst = planned.source, planned.run_dir
    result = Result.from_json(read_json(src / "metrics.json"))
    cfg = planned.cell.config()
    result.config = {**result.config, "paper": cfg.paper, "table": cfg.table}
    result.run_id = cfg.run_id()
    result.extra = {**result.extra, "reused_from": str(src)}
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("splits.json", "history.jsonl", "run.ipynb"):
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)
    atomic_write_json(dst / "config.json", {"config": cfg.to_flat(), "config_hash": cfg.config_hash()})
    result.write(dst)


def _hash_of(metrics: Path) -> str | None:
    try:
        return read_json(metrics).get("config_hash")
    except (OSError, ValueError):
        return None  # unreadable: treat as not finished (it will be re-run and rewritten atomically)


def pythonpath_with_lib(pythonpath: str | None) -> str:
    """``PYTHONPATH`` with the checkout's ``lib`` first (once): what every papermill kernel and task needs to
    import this checkout's ``transferlab`` (kernels inherit their parent's environment)."""
    lib = str(REPO / "lib")
    rest = [p for p in (pythonpath or "").split(os.pathsep) if p and p != lib]
    return os.pathsep.join([lib, *rest])


def notebook_ipynb(name: str, work_dir: Path) -> Path:
    """The jupytext notebook ``notebooks/<name>.py`` converted to .ipynb (papermill's input)."""
    import jupytext

    src = NOTEBOOKS / f"{name}.py"
    if not src.exists():
        raise FileNotFoundError(f"notebook {src} not found")
    nb = jupytext.read(src)
    nb.metadata.setdefault(
        "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
    )
    dst = work_dir / f"{name}.ipynb"
    dst.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, dst)
    return dst


def execute_notebook(
    notebook: Path, output: Path, params: dict, env: dict | None = None, log: Path | None = None
):
    """Run papermill in a child process; returns (returncode, tail of its output)."""
    params_file = output.parent / "params.json"
    atomic_write_json(params_file, params)
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(output), "-f", str(params_file)]
    cmd += ["--cwd", str(REPO), "--start-timeout", "180", "-k", "python3"]
    with open(log or os.devnull, "w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    return proc.returncode, tail


def _run_cell(planned: Planned, notebook: Path, env: dict) -> tuple[Planned, str]:
    run_dir = planned.run_dir
    assert run_dir is not None
    run_dir.mkdir(parents=True, exist_ok=True)
    # Every flat field, not only the table's: the notebook's own defaults are not RunConfig's defaults.
    params = {**planned.cell.config().to_flat(), "out_dir": str(run_dir.resolve())}
    for attempt in (1, 2):
        code, tail = execute_notebook(notebook, run_dir / "run.ipynb", params, env, run_dir / "papermill.log")
        if code == 0 and (run_dir / "metrics.json").exists():
            (run_dir / "failed.json").unlink(missing_ok=True)
            return planned, "done"
        if attempt == 1 and any(s in tail for s in KERNEL_START_ERRORS):
            continue  # the papermill kernel-start race: retry once
        break
    atomic_write_json(
        run_dir / "failed.json",
        {"returncode": code, "error_tail": tail[-2000:], "time": time.strftime("%Y-%m-%dT%H:%M:%S")},
    )
    return planned, "failed"


def _gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:
        return []


def run_local(todo: list[Planned], notebook: Path, jobs: int, progress=None) -> dict[str, int]:
    """A process per cell, ``jobs`` at a time; each job holds one GPU token (or a share of the CPU threads)."""
    gpus = _gpu_ids()
    jobs = max(1, min(jobs, len(gpus) or jobs))
    tokens: queue.Queue = queue.Queue()
    for i in range(jobs):
        tokens.put(gpus[i] if gpus else None)
    # Split the cores between concurrent cells unless the user pinned a thread count.
    threads = int(os.environ.get("TRANSFERLAB_THREADS", "0")) or max(1, (os.cpu_count() or 1) // jobs)
    counts = {"done": 0, "failed": 0}

    def work(p: Planned):
        token = tokens.get()
        try:
            env = {**os.environ, "TRANSFERLAB_PROGRESS": "text", "TRANSFERLAB_THREADS": str(threads)}
            env["PYTHONPATH"] = pythonpath_with_lib(os.environ.get("PYTHONPATH"))
            env["CUDA_VISIBLE_DEVICES"] = token if token is not None else ""
            return _run_cell(p, notebook, env)
        finally:
            tokens.put(token)

    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(work, p) for p in todo]
        for fut in as_completed(futures):
            planned, status = fut.result()
            counts[status] += 1
            if progress is not None:
                progress.set_postfix_str(f"{planned.run_dir.name}: {status}", refresh=False)
                progress.update()
    return counts


def run_table(
    paper: str,
    table: str,
    protocol: str,
    seeds=None,
    jobs: int = 1,
    executor: str = "local",
    dry_run: bool = False,
    root: Path | str = RESULTS_DIR,
    out=print,
    where: dict | None = None,
    overrides: dict | None = None,
) -> dict[str, int]:
    """Run every unfinished cell of a table. Returns counts of done / skipped / failed / missing cells."""
    if executor not in ("local", "slurm"):
        raise ConfigError(f"executor={executor!r} is not valid; choose local or slurm")
    if executor == "slurm" and not dry_run:
        from transferlab.slurm import check_cluster

        check_cluster()  # no cluster: say so before pre-training or converting anything
    planned = plan(paper, table, protocol, seeds, root, where, overrides)
    todo = [p for p in planned if p.status in ("todo", "retry")]
    reused = [p for p in planned if p.status == "reuse"]
    summary = {
        "cells": len(planned),
        "skipped": sum(p.status == "done" for p in planned),
        "missing": sum(p.status == "missing" for p in planned),
        "reused": len(reused),
        "to_run": len(todo),
    }
    out(f"{paper}/{table} ({protocol}): {summary['cells']} cells, {summary['skipped']} already finished, "
        f"{len(reused)} finished in another table (reused), {summary['missing']} not implemented yet, "
        f"{len(todo)} to run")  # fmt: skip
    reasons: dict[str, int] = {}
    for p in planned:
        if p.status == "missing":
            reasons[p.cell.missing] = reasons.get(p.cell.missing, 0) + 1
    for reason, n in sorted(reasons.items()):
        out(f"  missing ({n} cells): {reason}")
    if dry_run:
        for p in todo:
            out(f"  would run: {p.run_dir}")
        return summary
    for p in reused:
        reuse(p)
    if not todo:
        return {**summary, "done": 0, "failed": 0}
    _ensure_assets(todo)
    notebook = notebook_ipynb(PAPERS.get(paper).notebook, Path(root) / paper / ".notebooks")
    from tqdm import tqdm

    with tqdm(total=len(todo), desc=f"{paper}/{table}", unit="cell", file=sys.stdout, ascii=True) as bar:
        if executor == "local":
            counts = run_local(todo, notebook, jobs, bar)
        else:
            from transferlab.slurm import run_slurm

            counts = run_slurm(todo, notebook, jobs, bar, Path(root) / paper / ".slurm")
    failed = [p for p in todo if (p.run_dir / "failed.json").exists()]
    for p in failed:
        out(f"  FAILED: {p.run_dir} (see {p.run_dir / 'papermill.log'})")
    return {**summary, **counts}


def _ensure_assets(todo: list[Planned]) -> None:
    """Pre-train the mini hub models the cells need once, here, instead of racing in parallel kernels."""
    from transferlab.models import mini_hub

    needed = sorted(
        {
            p.cell.params.get("pretrained", "")
            for p in todo
            if str(p.cell.params.get("pretrained", "")).startswith("mini:")
        }
    )
    for name in needed:
        mini_hub.ensure(name.removeprefix("mini:"), data_root=todo[0].cell.params.get("data_root", "data"))


def status_json(planned: list[Planned]) -> str:
    return json.dumps(
        [{"run_dir": str(p.run_dir), "status": p.status, **p.cell.params} for p in planned], indent=1
    )
