"""``run_table``: plan a table, reuse what finished elsewhere, run the rest on an executor, and say what happened.

Progress tells something: one line per finished cell with its headline metric (test at the best-validation step,
and at the last step) or its failure's cause, and an overall bar whose ETA is weighted by each cell's estimated cost
(cells run longest first, so a count-based ETA would be too pessimistic early on). Mini-hub models the cells need
are pre-trained once, up front (``model k of n``), instead of racing in parallel workers. Paper-protocol data are
checked before any cell starts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from transferlab import hubbuild
from transferlab.config import ConfigError
from transferlab.data import load as load_dataset
from transferlab.models.mini_hub import MINI_HUB, load_hub_backbone
from transferlab.nbexec import notebook_path
from transferlab.papers import PAPERS
from transferlab.results import RESULTS_DIR, finished_result, writable_folder
from transferlab.runner.plan import Planned, order, plan, reuse
from transferlab.runner.workers import run_pool
from transferlab.train import resolve_device

EXECUTORS = ("local", "slurm")


def run_table(paper: str, table: str, protocol: str, seeds=None, jobs: int = 1, executor: str = "local",
              dry_run: bool = False, root: Path | str = RESULTS_DIR, out=print, where: dict | None = None,
              overrides: dict | None = None, notebooks: bool = False) -> dict[str, int]:  # fmt: skip
    """Run every unfinished cell of one table (see :func:`run_tables`)."""
    return run_tables([(paper, table)], protocol, seeds, jobs, executor, dry_run, root, out, where, overrides,
                      notebooks)  # fmt: skip


def run_tables(work: list[tuple[str, str]], protocol: str, seeds=None, jobs: int = 1, executor: str = "local",
               dry_run: bool = False, root: Path | str = RESULTS_DIR, out=print, where: dict | None = None,
               overrides: dict | None = None, notebooks: bool = False) -> dict[str, int]:  # fmt: skip
    """Run every unfinished cell of several (paper, table)s on one executor. An experiment that appears in
    several of them (the same config hash) is trained once and copied into the others. Returns counts."""
    if executor not in EXECUTORS:
        raise ConfigError(f"executor={executor!r} is not valid; choose one of: {', '.join(EXECUTORS)}")
    if jobs < 1:
        raise ConfigError(f"jobs={jobs} must be >= 1")
    if executor == "slurm" and not dry_run:
        from transferlab.runner.slurm import check_cluster

        check_cluster()  # no cluster: say so before pre-training or converting anything
    root = Path(root)
    planned_all: list[Planned] = []
    for paper, table in work:  # every table planned (and so validated) before anything runs
        planned = plan(paper, table, protocol, seeds, root, where, overrides)
        _say_plan(f"{paper}/{table} ({protocol})", planned, out)
        planned_all += planned
    first: dict[str, Planned] = {}
    later: list[Planned] = []  # the same experiment as a cell that runs now: copied when that one finishes
    for p in planned_all:
        if p.status in ("todo", "retry"):
            if p.cfg.config_hash() in first:
                later.append(p)
            else:
                first[p.cfg.config_hash()] = p
    todo = order(list(first.values()))
    counts = {"cells": len(planned_all), "skipped": sum(p.status == "done" for p in planned_all),
              "missing": sum(p.status == "missing" for p in planned_all), "to_run": len(todo), "done": 0,
              "failed": 0}  # fmt: skip
    if dry_run:
        for p in todo:
            out(f"  would run: {p.run_dir}")
        return counts
    if todo or any(p.status == "reuse" for p in planned_all):  # before anything is written or trained
        for paper in sorted({paper for paper, _ in work} if notebooks else ()):
            notebook_path(PAPERS.get(paper).notebook)
        if protocol == "paper":
            check_data(todo)
        writable_folder(root, "results folder", "pass --results <a writable folder> (the Python API and notebooks: "
                        "results=... or TRANSFERLAB_RESULTS)")  # fmt: skip
    for p in planned_all:
        if p.status == "reuse":
            reuse(p)
    if todo:
        if (
            executor == "local"
        ):  # a device this machine lacks: say so now, not in every cell (SLURM nodes differ)
            for device in sorted({p.cfg.device for p in todo}):
                resolve_device(device)
        names = sorted({n for p in todo for n in hubbuild.models_of(p.cfg)})
        if names:
            hubbuild.ensure_all(names, data_root=todo[0].cfg.data.data_root, out=out)
            # a cached file that matches its manifest but not the network: stop before any cell (mini-hub models;
            # source policies, "policy:<name>", are checked when their run loads them)
            for name in (n for n in names if not n.startswith(hubbuild.POLICY)):
                load_hub_backbone(name, MINI_HUB.get(name).backbone)
        notebook = {paper: PAPERS.get(paper).notebook for paper, _ in work} if notebooks else {}
        report = Progress(todo, ", ".join(sorted({f"{p}/{t}" for p, t in work})), out)
        try:
            if executor == "local":
                counts.update(run_pool(todo, jobs, root, report.cell, notebook))
            else:
                from transferlab.runner.slurm import run_slurm

                counts.update(run_slurm(todo, root, jobs, report.cell, root / ".slurm", notebook))
        finally:
            report.close()
    for p in later:
        source = first[p.cfg.config_hash()]
        if finished_result(source.run_dir, p.cfg.config_hash()) is not None:
            p.source = source.run_dir
            reuse(p)
    return counts


def _say_plan(name: str, planned: list[Planned], out) -> None:
    n = {s: sum(p.status == s for p in planned) for s in ("done", "reuse", "missing", "todo", "retry")}
    out(f"{name}: {len(planned)} cells, {n['done']} already finished, {n['reuse']} finished in another table "
        f"(reused), {n['missing']} not implemented yet, {n['todo'] + n['retry']} to run")  # fmt: skip
    reasons: dict[str, int] = {}
    for p in planned:
        if p.status == "missing":
            reasons[p.cell.missing] = reasons.get(p.cell.missing, 0) + 1
    for reason, k in sorted(reasons.items()):
        out(f"  missing ({k} cells): {reason}")


def check_data(todo: list[Planned]) -> None:
    """Every dataset the cells read must be where their loader looks (its error names the layout and source)."""
    for name, data_root in sorted({(p.cfg.data.dataset, p.cfg.data.data_root) for p in todo}):
        load_dataset(name, data_root)


class Progress:
    """One line per finished cell with the overall progress and an ETA weighted by each cell's estimated cost; a
    tqdm bar as well on a terminal (logs and notebooks get the lines only)."""

    def __init__(self, todo: list[Planned], desc: str, out=print):
        self.n, self.k, self.out = len(todo), 0, out
        self.costs = {id(p): max(p.cost(), 1.0) for p in todo}
        self.design = {id(p): PAPERS.get(p.cfg.paper).table(p.cfg.table, p.cfg.protocol).kind == "design"
                       for p in todo}  # fmt: skip
        self.total, self.spent, self.start = sum(self.costs.values()), 0.0, time.perf_counter()
        self.bar = None
        if sys.stdout.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=desc, file=sys.stdout, bar_format="{desc}: {percentage:3.0f}%|{bar:20}| [{elapsed}<{remaining}]")  # fmt: skip

    def cell(self, p: Planned, reply: dict) -> None:
        self.k += 1
        self.spent += self.costs.get(id(p), 1.0)
        elapsed = time.perf_counter() - self.start
        eta = elapsed * (self.total - self.spent) / max(self.spent, 1e-9)
        where = f"[{self.k}/{self.n}, {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min]"
        if reply.get("status") == "done" and self.design.get(id(p)):  # a design grid: validation, never test
            line = (f"{where} done   {p.label}: best validation {reply['metric']} {reply['best_val']:.2f} at step "
                    f"{reply['best_step']} ({reply['seconds']:.0f} s)")  # fmt: skip
        elif reply.get("status") == "done":
            line = (f"{where} done   {p.label}: test {reply['metric']} {reply['value']:.2f} at best val, "
                    f"{reply['last']:.2f} at the last step ({reply['seconds']:.0f} s)")  # fmt: skip
        else:
            line = f"{where} FAILED {p.label}: {reply.get('error', '?')} (log: {reply.get('log', p.run_dir)})"
        if self.bar is not None:
            self.bar.write(line)
            self.bar.update(self.costs.get(id(p), 1.0))
        else:
            self.out(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


__all__ = ["EXECUTORS", "check_data", "run_table", "run_tables"]
