"""Planning a table: expand it into cells, validate every one, say which are finished, and order the rest.

``plan(paper, table, protocol)`` expands the table over seeds, validates every cell's configuration (an unknown name
or bad value is a ConfigError before anything runs; a part of the paper not implemented yet is a *missing* cell),
and marks each cell ``done`` (its ``metrics.json`` is readable and has the cell's config hash), ``reuse`` (the same
experiment finished in another table: copied, never re-trained), ``retry`` (failed before) or ``todo``. A
``Planned`` carries the validated configuration, so nothing downstream parses it again.

``order(todo)`` puts cells that other cells depend on first (distillation's teacher is the ensemble cell) and then
the longest first (an estimate from the method and the schedule), so that two workers finish together.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from transferlab.config import ConfigError, RunConfig
from transferlab.methods import METHODS
from transferlab.papers import PAPERS, Cell
from transferlab.results import (
    RESULTS_DIR,
    Result,
    atomic_write_json,
    finished_result,
    finished_runs,
    read_json,
)

# Relative cost of one training step of a method on the mini protocol (measured with `transferlab bench --suite
# methods`, rounded): what orders the queue longest-first. Unlisted methods count 1.
STEP_COST = {"l2t_ww": 22.0, "l2t_w": 18.0, "fm": 3.0, "at": 2.0, "l2t_lwf": 2.0, "zoo_tuning": 4.5,
             "zoo_tuning_lite": 4.0, "ensemble": 5.0, "feature_concat": 2.5, "distill": 2.0, "hub_pathway": 3.5,
             "delta": 1.6, "co_tuning": 1.2, "lwf": 1.5}  # fmt: skip


@dataclass
class Planned:
    cell: Cell
    cfg: RunConfig | None  # validated; None for a missing cell
    run_dir: Path | None  # None for a missing cell
    status: (
        str  # todo | done | reuse (finished elsewhere) | retry (failed before) | missing (not implemented)
    )
    source: Path | None = None  # for reuse: the finished run of the same experiment

    @property
    def label(self) -> str:
        c = self.cfg
        if c is None:
            return str(self.cell.params.get("method"))
        amount = f"k{c.data.shots}" if c.data.shots else f"r{round(c.data.sample_rate * 100):g}"
        return f"{c.paper}/{c.table} {c.method} {c.data.dataset} {amount} s{c.seed}"

    def cost(self) -> float:
        """An estimate of the cell's training cost (for ordering only)."""
        c = self.cfg
        if c is None:
            return 0.0
        return STEP_COST.get(c.method, 1.0) * c.optim.iterations * c.data.batch_size


def plan(paper: str, table: str, protocol: str, seeds=None, root: Path | str = RESULTS_DIR,
         where: dict | None = None, overrides: dict | None = None) -> list[Planned]:  # fmt: skip
    """Expand a table into cells and say which are done. Raises ConfigError on any invalid name or value.

    ``where`` keeps the cells whose field equals one of the given values (field → list); ``overrides`` sets fields
    in every cell (a developer's validation run on other data, a shorter schedule): the config hash, and so the run
    directory, changes with them, so overridden runs never pass for the table's own."""
    spec = PAPERS.get(paper).table(table, protocol)
    cells = select_cells(spec.cells(seeds=seeds, paper=paper), where or {}, overrides or {}, spec.missing)
    finished = finished_runs(root)
    out = []
    for cell in cells:
        if not cell.available:
            out.append(Planned(cell, None, None, "missing"))
            continue
        try:
            cfg = cell.config()  # validates every cell before anything runs
        except ConfigError as err:
            if not overrides:
                raise
            raise ConfigError(f"{err} (in the {cell.params.get('method')} cells of {paper}/{table}: --set changes "
                              "every cell; --where method=<name> keeps only some)") from None  # fmt: skip
        run_dir = Path(root) / paper / protocol / cfg.run_id()
        if finished_result(run_dir, cfg.config_hash()) is not None:
            status = "done"
        elif cfg.config_hash() in finished:
            status = "reuse"  # the same experiment already finished in another table: copy, do not re-train
        else:
            status = "retry" if (run_dir / "failed.json").exists() else "todo"
        out.append(Planned(cell, cfg, run_dir, status, finished.get(cfg.config_hash())))
    return out


def select_cells(cells: list[Cell], where: dict, overrides: dict, missing: dict | None = None) -> list[Cell]:
    """The cells matching ``where`` with ``overrides`` applied, duplicates (after overriding) dropped."""
    from transferlab.config import flat_field_names

    valid = set(flat_field_names())
    for kind, keys in (("--where", where), ("--set", overrides)):
        bad = sorted(set(keys) - valid)
        if bad:
            raise ConfigError(f"{kind}: unknown field(s) {bad}; valid fields: {', '.join(sorted(valid))}")
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
            c = Cell(params, (missing or {}).get(params.get("method", ""), ""))
        key = json.dumps(c.params, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def reuse(planned: Planned) -> None:
    """Write a finished run of the same experiment into this cell's directory, relabelled and marked as reused."""
    src, dst, cfg = planned.source, planned.run_dir, planned.cfg
    assert src is not None and dst is not None and cfg is not None
    result = Result.from_json(read_json(src / "metrics.json"))
    result.config = {**result.config, "paper": cfg.paper, "table": cfg.table}
    result.run_id = cfg.run_id()
    result.extra = {**result.extra, "reused_from": str(src)}
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("splits.json", "history.jsonl", "run.ipynb", "weights.pt"):
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)
    atomic_write_json(dst / "config.json", {"config": cfg.to_flat(), "config_hash": cfg.config_hash()})
    result.write(dst)


def order(todo: list[Planned]) -> list[Planned]:
    """Cells others depend on first, then the longest first (stable for equal estimates)."""
    wanted = {dep.config_hash() for p in todo for dep in _deps(p)}
    return sorted(todo, key=lambda p: (p.cfg.config_hash() not in wanted, -p.cost()))


def blockers(p: Planned, todo: list[Planned]) -> set[str]:
    """Config hashes of the cells in ``todo`` that ``p`` depends on."""
    mine = {dep.config_hash() for dep in _deps(p)}
    return {q.cfg.config_hash() for q in todo if q.cfg.config_hash() in mine}


def _deps(p: Planned) -> list[RunConfig]:
    from transferlab.experiment import check

    return [check(d) for d in METHODS.get(p.cfg.method).dependencies(p.cfg).values()]


def status_json(planned: list[Planned]) -> str:
    return json.dumps(
        [{"run_dir": str(p.run_dir), "status": p.status, **p.cell.params} for p in planned], indent=1
    )


__all__ = ["Planned", "blockers", "order", "plan", "reuse", "select_cells", "status_json"]
