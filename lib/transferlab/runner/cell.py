"""Executing one planned cell where the executor put it: in this process (a warm worker, a SLURM task), its output
in the cell's ``run.log``; or, on request, through the paper's notebook with papermill (``run.ipynb``).

Whatever happens, the outcome is one small dict the executor reports: ``done`` with the cell's headline metric,
or ``failed`` with the cause's last line (the full traceback stays in the log, and in ``failed.json`` beside it).
A cell that raises never takes its worker down.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from pathlib import Path

from transferlab import api
from transferlab.config import RunConfig
from transferlab.nbexec import child_env, execute_notebook, notebook_ipynb
from transferlab.results import atomic_write_json, finished_result

LOG = "run.log"


@contextlib.contextmanager
def output_to(path: Path):
    """Send this process's stdout and stderr (Python and file-descriptor level) to ``path`` for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def headline(result) -> dict:
    m = result.metrics
    return {"metric": m.get("metric_label", "accuracy (%)"), "value": m["test_at_best_val"], "last": m["test_last"],
            "best_val": m["best_val"], "best_step": m["best_step"],
            "seconds": result.cost.get("wall_time_s", 0.0)}  # fmt: skip


def record_failure(run_dir: Path, error: str, detail: str = "", **more) -> None:
    atomic_write_json(run_dir / "failed.json", {"error": error, "error_tail": detail[-4000:],
                                                "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **more})  # fmt: skip


def execute(cfg: RunConfig, run_dir: Path, root: Path, notebook: str = "") -> dict:
    """Run cell ``cfg`` into ``run_dir`` (``notebook``: through that paper notebook with papermill instead)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if notebook:
        return _via_notebook(cfg, run_dir, notebook)
    try:
        with output_to(run_dir / LOG):
            print(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {cfg.run_id()}", flush=True)
            try:
                result = api.run(cfg, run_dir, root=root)
            except BaseException:
                traceback.print_exc()
                raise
    except Exception as err:  # noqa: BLE001  a failing cell is recorded; the worker goes on
        # the message's first line names what is wrong (a dataset's layout, a weights file and its fix follow)
        line = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        record_failure(run_dir, line[:500], traceback.format_exc(), log=str(run_dir / LOG))
        return {"status": "failed", "error": line[:500], "log": str(run_dir / LOG)}
    (run_dir / "failed.json").unlink(missing_ok=True)
    return {"status": "done", **headline(result)}


def _via_notebook(cfg: RunConfig, run_dir: Path, notebook: str) -> dict:
    nb = notebook_ipynb(notebook, run_dir.parent / ".notebooks")
    params = {"paper": cfg.paper, "table": cfg.table, "protocol": cfg.protocol, "scope": "config",
              "config": cfg.to_flat(), "out_dir": str(run_dir.resolve())}  # fmt: skip
    code, tail = execute_notebook(nb, run_dir / "run.ipynb", params, child_env(TRANSFERLAB_PROGRESS="text"),
                                  run_dir / "papermill.log")  # fmt: skip
    result = finished_result(run_dir, cfg.config_hash())
    if code == 0 and result is not None:
        (run_dir / "failed.json").unlink(missing_ok=True)
        return {"status": "done", **headline(result)}
    lines = [ln for ln in tail.strip().splitlines() if ln.strip()]
    error = next(
        (ln for ln in reversed(lines) if "Error" in ln or "Exception" in ln), lines[-1] if lines else ""
    )
    record_failure(run_dir, error[:500], tail, returncode=code, log=str(run_dir / "papermill.log"))
    return {"status": "failed", "error": error[:500], "log": str(run_dir / "papermill.log")}


__all__ = ["LOG", "execute", "headline", "output_to", "record_failure"]
