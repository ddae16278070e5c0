"""One table cell from configuration to result files: check → data → method → prepare → ``fit()`` → result.

An RL run (its dataset an Atari environment, task ``rl``) takes the same path with ``rl.loop.fit_rl`` in place of
``fit()``: no split is drawn, and the result has the same shape (``metric="return"``).

Order matters for honesty and reproducibility: :func:`check` validates every name and value and the method's
preconditions (before touching data), then threads are pinned, the dataset is loaded and the split drawn (saved with
the run), the method is built from the INIT seed stream, it ``prepare()``s on training data only, and ``fit()``
trains from the TRAIN stream. A finished run with the same config hash is returned from disk instead of re-trained;
an unfinished one resumes from its checkpoint. One process at a time trains in a run directory (a file lock): a
second waits, then finds the run finished.

Mini-hub models are not pre-trained here (that trains, so it sits above this layer: :mod:`transferlab.hubbuild`);
``transferlab.run`` (:mod:`transferlab.api`) builds what a run needs and then calls :func:`run`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import torch

from transferlab import data as tl_data
from transferlab import env
from transferlab.config import ConfigError, RunConfig
from transferlab.data.splits import SplitIndices
from transferlab.methods import METHODS, Method, method_config
from transferlab.methods.base import supports
from transferlab.methods.context import PrepareData
from transferlab.models import BACKBONES, check_weights
from transferlab.models.policy import POLICY_ARCHS
from transferlab.registry import RegistryError
from transferlab.results import (
    RESULTS_DIR,
    Result,
    atomic_write_json,
    finished_result,
    read_json,
    read_result,
    remove_stale_temporaries,
    run_lock,
)
from transferlab.rl import fit_rl
from transferlab.seeds import Stream, seed_for
from transferlab.tasks import Task, task_of
from transferlab.train import fit, resolve_device


def check(cfg: RunConfig) -> RunConfig:
    """``cfg`` validated against every registry (with a "did you mean") and its method's preconditions, with the
    method's parameters spelled out (defaults filled in: the record says what ran, and ``{}`` and the explicit
    defaults are one experiment with one hash). Raises ConfigError; reads no data and loads no weights."""
    try:
        tl_data.DATASETS.check(cfg.data.dataset)
        rl = tl_data.task_name(cfg.data.dataset) == "rl"
        (POLICY_ARCHS if rl else BACKBONES).check(cfg.backbone)  # RL runs name a policy network
        METHODS.check(cfg.method)
        if cfg.data.preset != "auto":
            tl_data.TRANSFORMS.check(cfg.data.preset)
    except RegistryError as err:
        raise ConfigError(str(err)) from None
    method = METHODS.get(cfg.method)
    supports(method, tl_data.task_name(cfg.data.dataset))
    if not rl:  # an RL method checks its source policies itself (rl/methods/base.py)
        check_weights(cfg.backbone, cfg.weights)
    full = dataclasses.asdict(method_config(cfg.method, cfg.method_params))
    cfg = dataclasses.replace(cfg, method_params=full) if full != cfg.method_params else cfg
    method.check(cfg)
    return cfg


def run_dir(cfg: RunConfig, root: Path | str = RESULTS_DIR) -> Path:
    return Path(root) / cfg.paper / cfg.protocol / cfg.run_id()


def setup_runtime(cfg: RunConfig) -> torch.device:
    """Pin CPU threads (results depend on them in the last bits) and choose deterministic kernels on CPU."""
    threads = env.integer("TRANSFERLAB_THREADS") or min(os.cpu_count() or 1, 8)
    torch.set_num_threads(threads)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = (
            True  # speed over bitwise reproducibility on GPU (recorded in provenance)
        )
    return device


def load_data(cfg: RunConfig) -> tuple[tl_data.DatasetSource, SplitIndices, tl_data.Preset, Task]:
    """The run's dataset, its seeded train/val/test split, its transform preset and its task."""
    source = tl_data.load(cfg.data.dataset, cfg.data.data_root)
    task = task_of(source)
    # the task draws the split: classification samples per class and carves validation; tokens keep the dev file
    splits = task.split(source, cfg.data, cfg.seed)
    preset = tl_data.TRANSFORMS.get(source.preset if cfg.data.preset == "auto" else cfg.data.preset)
    return source, splits, preset, task


def prepared_method(
    cfg: RunConfig, out: Path | None = None, dependencies: dict[str, Path] | None = None
) -> tuple[Method, PrepareData]:
    """Build ``cfg``'s method and run its ``prepare()``, without training: what a notebook inspects (Co-Tuning's
    relationship, DELTA's channel attention). With ``out``, the split is saved there (and must match a saved one)."""
    cfg = check(cfg)
    device = setup_runtime(cfg)
    if is_rl(cfg):
        return _prepared_policy(cfg, device, out, dependencies)
    source, splits, preset, task = load_data(cfg)
    if out is not None:
        splits_path = out / "splits.json"
        if (
            splits_path.exists()
            and SplitIndices.from_json(read_json(splits_path)).to_json() != splits.to_json()
        ):
            raise RuntimeError(
                f"{splits_path} differs from the split this config draws; the run directory is stale"
            )
        atomic_write_json(splits_path, splits.to_json())
    torch.manual_seed(seed_for(cfg.seed, Stream.INIT))  # model initialisation (new heads, scratch weights)
    method = METHODS.get(cfg.method).build(cfg, task)
    method.to(device)
    method.eval()
    data = PrepareData(source, splits, preset, cfg, device, out, dependencies)
    method.prepare(data)
    return method, data


def is_rl(cfg: RunConfig) -> bool:
    """An RL run (an Atari environment as its dataset): trained by ``rl.loop.fit_rl``, not ``train.fit``."""
    return tl_data.task_name(cfg.data.dataset) == "rl"


def _prepared_policy(cfg: RunConfig, device, out: Path | None, dependencies) -> tuple[Method, PrepareData]:
    """An RL method built from the INIT stream and prepared (the ensemble reads its members' runs); no split."""
    source = tl_data.load(cfg.data.dataset, cfg.data.data_root)
    task = task_of(source)
    torch.manual_seed(seed_for(cfg.seed, Stream.INIT))
    method = METHODS.get(cfg.method).build(cfg, task)
    method.to(device)
    data = PrepareData(source, None, None, cfg, device, out, dependencies)
    method.prepare(data)
    return method, data


def train(cfg: RunConfig, out: Path, dependencies: dict[str, Path] | None = None) -> tuple[Method, Result]:
    """Like :func:`run`, always training (resuming a checkpoint if one is there); returns the trained method too."""
    cfg = check(cfg)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # left by a run killed in the middle of a write
    atomic_write_json(out / "config.json", {"config": cfg.to_flat(), "config_hash": cfg.config_hash()})
    method, data = prepared_method(cfg, out, dependencies)
    torch.manual_seed(
        seed_for(cfg.seed, Stream.TRAIN)
    )  # anything random inside training (dropout, noisy gates)
    if is_rl(cfg):
        return method, fit_rl(method, cfg, out)
    return method, fit(method, data.source, data.splits, data.preset, cfg, out)


def run(cfg: RunConfig, out_dir: Path | str | None = None, force: bool = False,
        dependencies: dict[str, Path] | None = None) -> Result:  # fmt: skip
    """Train one cell and write its results under ``out_dir`` (default ``results/<paper>/<protocol>/<run_id>``),
    holding the run directory's lock; a finished run with the same config hash is returned as it is."""
    cfg = check(cfg)
    out = Path(out_dir) if out_dir else run_dir(cfg)
    with run_lock(
        out, on_wait=lambda: print(f"another process is running {out}; waiting for it", flush=True)
    ):
        done = None if force else finished_result(out, cfg.config_hash())
        if done is not None:
            print(f"already finished: {out} (delete it or pass force=True to re-run)")
            return done
        _set_aside_unreadable(out / "metrics.json")
        return train(cfg, out, dependencies)[1]


def _set_aside_unreadable(metrics: Path) -> None:
    """A partial or corrupt metrics.json means "not finished": kept for inspection under another name (nothing is
    deleted), and the cell runs again."""
    if metrics.exists() and read_result(metrics) is None:
        aside = metrics.with_name(f"{metrics.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        metrics.replace(aside)
        print(f"{metrics} is unreadable or partial (not a finished run): moved it to {aside.name}; running again",
              flush=True)  # fmt: skip


__all__ = ["check", "is_rl", "load_data", "prepared_method", "run", "run_dir", "setup_runtime", "train"]
