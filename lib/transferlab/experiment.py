"""``run(cfg)``: one table cell from configuration to result files — what every notebook calls.

Order matters for honesty and reproducibility: validate the config (before touching data), pin threads and seeds,
load the dataset, draw the splits (saved), build the method from a seeded RNG, let it ``prepare()`` on training data
only, then ``fit()``. A finished run with the same config hash is returned from disk instead of re-trained; an
unfinished one resumes from its checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from transferlab import data as tl_data
from transferlab.config import RunConfig
from transferlab.data.pipeline import TrainStream, derive_seed, eval_batches
from transferlab.data.splits import SplitIndices, make_splits
from transferlab.methods import METHODS, Method
from transferlab.results import (
    RESULTS_DIR,
    Result,
    atomic_write_json,
    load_result,
    read_json,
    remove_stale_temporaries,
)
from transferlab.train import fit, resolve_device


def run_dir(cfg: RunConfig, root: Path | str = RESULTS_DIR) -> Path:
    return Path(root) / cfg.paper / cfg.protocol / cfg.run_id()


def setup_runtime(cfg: RunConfig) -> torch.device:
    """Pin CPU threads (results depend on them in the last bits) and choose deterministic kernels on CPU."""
    threads = int(os.environ.get("TRANSFERLAB_THREADS", "0")) or min(os.cpu_count() or 1, 8)
    torch.set_num_threads(threads)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = (
            True  # speed over bitwise reproducibility on GPU (recorded in provenance)
        )
    return device


class PrepareData:
    """What ``Method.prepare`` may look at: train and val (deterministic test-transform passes, or augmented training
    batches), never test."""

    def __init__(
        self, source, splits: SplitIndices, preset, cfg: RunConfig, device, out_dir: Path | None = None
    ):
        self.source, self.splits, self.preset, self.cfg, self.device = source, splits, preset, cfg, device
        self.out_dir = out_dir  # where a method may cache what it prepared (saved with the run)

    def _batches(self, indices):
        d = self.cfg.data
        part = self.source.train
        return eval_batches(part, indices, self.preset, d.eval_batch_size, self.device, False, d.num_workers)

    def train(self):
        return self._batches(self.splits.train)

    def val(self):
        return self._batches(self.splits.val)

    def train_stream(self, batch_size: int, key: int) -> TrainStream:
        """Augmented, shuffled training batches as ``fit()`` draws them, seeded by (seed, ``key``): for methods that
        train something of their own in ``prepare()`` (DELTA's attention classifier)."""
        d = self.cfg.data
        seed = derive_seed(self.cfg.seed, key)
        return TrainStream(
            self.source.train, self.splits.train, self.preset, batch_size, seed, self.device, d.num_workers
        )


def run(cfg: RunConfig, out_dir: Path | str | None = None, force: bool = False) -> Result:
    """Train one cell and write its results under ``out_dir`` (default ``results/<paper>/<protocol>/<run_id>``)."""
    out = Path(out_dir) if out_dir else run_dir(cfg)
    if (out / "metrics.json").exists() and not force:
        done = load_result(out)
        if done.config_hash == cfg.config_hash():
            print(f"already finished: {out} (delete it or pass force=True to re-run)")
            return done
    return train(cfg, out)[1]


def train(cfg: RunConfig, out: Path) -> tuple[Method, Result]:
    """Like :func:`run`, always training (resuming a checkpoint if one is there); returns the trained method too."""
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # left by a run killed in the middle of a write
    atomic_write_json(out / "config.json", {"config": cfg.to_flat(), "config_hash": cfg.config_hash()})
    method, data = prepared_method(cfg, out)
    torch.manual_seed(derive_seed(cfg.seed, 8))  # anything random inside training (dropout, noisy gates)
    return method, fit(method, data.source, data.splits, data.preset, cfg, out)


def load_data(cfg: RunConfig) -> tuple[tl_data.DatasetSource, SplitIndices, tl_data.Preset]:
    """The run's dataset, its seeded train/val/test split and its transform preset."""
    source = tl_data.load(cfg.data.dataset, cfg.data.data_root)
    splits = make_splits(source.train.targets, len(source.test), cfg.data, cfg.seed)
    preset = tl_data.TRANSFORMS.get(source.preset if cfg.data.preset == "auto" else cfg.data.preset)
    return source, splits, preset


def prepared_method(cfg: RunConfig, out: Path | None = None) -> tuple[Method, PrepareData]:
    """Build ``cfg``'s method and run its ``prepare()``, without training: what a notebook inspects (Co-Tuning's
    relationship, DELTA's channel attention). With ``out``, the split is saved there (and must match a saved one)."""
    device = setup_runtime(cfg)
    source, splits, preset = load_data(cfg)
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
    torch.manual_seed(derive_seed(cfg.seed, 7))  # model initialisation (new heads, scratch weights)
    method = METHODS.get(cfg.method).build(cfg, source.num_classes)
    method.to(device)
    method.eval()
    data = PrepareData(source, splits, preset, cfg, device, out)
    method.prepare(data)
    return method, data
