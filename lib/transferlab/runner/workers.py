"""The local executor: warm worker processes fed from a longest-first queue.

``jobs`` worker processes (``python -m transferlab.runner.worker``, one CPU thread each by default, or one GPU
each when GPUs are visible) import the suite once and then run cells in-process, so a mini cell costs its training
and not ~10 s of interpreter, kernel and torch start-up. The pool is driven from the calling thread with a
selector (no helper threads, so ``PR_SET_PDEATHSIG`` ties each worker's life to the runner's):

- a cell goes to an idle worker as soon as every cell it depends on (distillation's teacher) is finished;
- a cell that raises is recorded by the worker (``failed.json``) and the worker goes on;
- a worker that dies (killed, out of memory, a crash in native code) has its cell recorded as failed with the
  signal, and a fresh worker takes its place;
- Ctrl-C or SIGTERM stops the workers; a ``kill -9`` of the runner kills them too (death signal). Unfinished
  cells keep their checkpoints and resume on the next run; finished cells are never touched again.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from transferlab import env
from transferlab.nbexec import child_env, die_with_parent
from transferlab.runner.cell import record_failure
from transferlab.runner.plan import Planned, blockers


def gpu_ids() -> list[str]:
    """The GPUs this process may use (``CUDA_VISIBLE_DEVICES``, else every visible device)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001  no usable CUDA: CPU workers
        return []


class Worker:
    def __init__(self, index: int, token: str | None, threads: int, log_dir: Path):
        env = child_env(TRANSFERLAB_PROGRESS="text", TRANSFERLAB_THREADS=str(threads),
                        CUDA_VISIBLE_DEVICES=token if token is not None else "")  # fmt: skip
        log_dir.mkdir(parents=True, exist_ok=True)
        self.index, self.token = index, token
        self.stderr = open(log_dir / f"worker-{index}.log", "a")  # noqa: SIM115  closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "transferlab.runner.worker"], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     preexec_fn=die_with_parent, bufsize=1)  # fmt: skip
        self.cell: Planned | None = None
        self.ready = False

    def send(self, p: Planned, root: Path, notebook: str) -> None:
        self.cell = p
        req = {"cfg": p.cfg.to_flat(), "run_dir": str(p.run_dir), "root": str(root), "notebook": notebook}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def run_pool(todo: list[Planned], jobs: int, root: Path, on_result: Callable[[Planned, dict], None],
             notebooks: dict[str, str] | None = None, threads: int = 0) -> dict[str, int]:  # fmt: skip
    """Run ``todo`` (already ordered) on ``jobs`` warm workers; ``on_result(cell, reply)`` for every outcome.
    ``notebooks``: paper → notebook to run each of its cells through (papermill) instead of in the worker."""
    notebooks = notebooks or {}
    gpus = gpu_ids()
    jobs = max(1, min(jobs, len(gpus) or jobs, len(todo) or 1))
    threads = threads or env.integer("TRANSFERLAB_THREADS") or (
        max(1, (os.cpu_count() or 1) // jobs) if gpus else 1)  # fmt: skip
    log_dir = Path(root) / ".workers"
    pending = list(todo)
    unfinished = {p.cfg.config_hash() for p in todo}
    counts = {"done": 0, "failed": 0}
    sel = selectors.DefaultSelector()
    workers: list[Worker] = []

    def spawn(i: int) -> Worker:
        w = Worker(i, gpus[i] if gpus else None, threads, log_dir)
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        return w

    def dispatch(w: Worker) -> None:
        for k, p in enumerate(pending):
            if not blockers(p, [q for q in todo if q.cfg.config_hash() in unfinished and q is not p]):
                pending.pop(k)
                w.send(p, root, notebooks.get(p.cfg.paper, ""))
                return
        if pending and not any(
            x.cell for x in workers if x is not w
        ):  # only blocked cells left: run in order
            p = pending.pop(0)
            w.send(p, root, notebooks.get(p.cfg.paper, ""))

    def finish(w: Worker, reply: dict) -> None:
        p, w.cell = w.cell, None
        unfinished.discard(p.cfg.config_hash())
        counts["done" if reply.get("status") == "done" else "failed"] += 1
        on_result(p, reply)

    try:
        workers = [spawn(i) for i in range(jobs)]
        while pending or any(w.cell for w in workers):
            for key, _ in sel.select(timeout=1.0):
                w: Worker = key.data
                line = w.proc.stdout.readline()
                if line:
                    reply = json.loads(line)
                    if reply.get("status") == "ready":
                        w.ready = True
                    else:
                        finish(w, reply)
                    if pending and w.cell is None:
                        dispatch(w)
                    continue
                sel.unregister(w.proc.stdout)  # EOF: the worker died
                code = w.proc.wait()
                if w.cell is not None:
                    how = f"signal {-code}" if code < 0 else f"exit status {code}"
                    error = f"the worker process died ({how}) while running this cell"
                    record_failure(w.cell.run_dir, error, log=str(w.cell.run_dir / "run.log"))
                    finish(w, {"status": "failed", "error": error})
                w.stop()
                workers[workers.index(w)] = spawn(w.index)
            for w in workers:  # a worker that became ready before any cell was ready for it
                if w.ready and w.cell is None and pending:
                    dispatch(w)
    finally:
        for w in workers:
            w.stop()
        sel.close()
    return counts


__all__ = ["gpu_ids", "run_pool"]
