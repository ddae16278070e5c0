"""``transferlab.run(cfg)``: what a notebook or a script calls — check, build what the run needs, then train.

Above :mod:`transferlab.experiment` (one cell) and :mod:`transferlab.hubbuild` (mini-hub pre-training): it checks
the configuration, pre-trains any mini-hub model the run needs (once, cached), finds or trains the runs it depends
on (distillation's teacher is the ``ensemble`` cell of the same table: found by config hash anywhere under the
results root, or trained into its own run directory first), and then runs the cell.
"""

from __future__ import annotations

from pathlib import Path

from transferlab import experiment, hubbuild
from transferlab.config import RunConfig
from transferlab.methods import METHODS, Method
from transferlab.methods.context import PrepareData
from transferlab.results import RESULTS_DIR, Result, finished_runs


def dependencies(cfg: RunConfig, root: Path | str = RESULTS_DIR) -> dict[str, Path]:
    """role → finished run directory of each run ``cfg`` depends on (run first where none has finished)."""
    out: dict[str, Path] = {}
    for role, dep in METHODS.get(cfg.method).dependencies(cfg).items():
        dep = experiment.check(dep)
        done = finished_runs(root).get(dep.config_hash())
        if done is None or not _has_weights(done, dep):
            run(dep, root=root)
            done = experiment.run_dir(dep, root)
        out[role] = done
    return out


def _has_weights(run_dir: Path, cfg: RunConfig) -> bool:
    from transferlab.checkpoint import WEIGHTS

    return not METHODS.get(cfg.method).saves_weights or (run_dir / WEIGHTS).exists()


def run(
    cfg: RunConfig, out_dir: Path | str | None = None, force: bool = False, root: Path | str = RESULTS_DIR
) -> Result:
    """Train one cell (results under ``out_dir``, default ``<root>/<paper>/<protocol>/<run_id>``); a finished run
    with the same configuration is returned from disk."""
    cfg = experiment.check(cfg)
    hubbuild.ensure_assets(cfg)
    deps = dependencies(cfg, root)
    return experiment.run(cfg, out_dir or experiment.run_dir(cfg, root), force=force, dependencies=deps)


def prepared_method(cfg: RunConfig, root: Path | str = RESULTS_DIR) -> tuple[Method, PrepareData]:
    """The method built and prepared (Co-Tuning's relationship, DELTA's attention), not trained: for exploring."""
    cfg = experiment.check(cfg)
    hubbuild.ensure_assets(cfg)
    return experiment.prepared_method(cfg, dependencies=dependencies(cfg, root))


__all__ = ["dependencies", "prepared_method", "run"]
