"""Train / validation / test splits with per-class sampling, drawn reproducibly from a seed.

The papers' low-data settings keep a fraction of every class's training images ("sampling rate" 15/30/50/100 % in
Co-Tuning and TLlib) or k images per class (L2T-ww's limited-data CIFAR-10). We sample *per class*, so every class
keeps at least one image, and then carve the validation set out of the sampled training images, again per class.
The test split is never touched: model selection uses validation only.

The chosen indices are returned (and saved with every run as ``splits.json``) so a result can be traced to exactly
the images it was trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from transferlab.config import DataConfig
from transferlab.seeds import Stream, rng


@dataclass(frozen=True)
class SplitIndices:
    train: np.ndarray  # indices into the source's train part
    val: np.ndarray  # indices into the source's train part, disjoint from ``train``
    test: np.ndarray  # indices into the source's test part (all of it)

    def to_json(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("train", "val", "test")}

    @classmethod
    def from_json(cls, d: dict) -> SplitIndices:
        return cls(*(np.asarray(d[k], dtype=np.int64) for k in ("train", "val", "test")))


def per_class_sample(
    targets: np.ndarray, rng: np.random.Generator, rate: float = 1.0, shots: int = 0
) -> np.ndarray:
    """Indices keeping ``ceil(rate * n_c)`` (or ``min(shots, n_c)``) images of each class c, sorted."""
    keep = []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        n = min(shots, len(idx)) if shots else max(1, math.ceil(rate * len(idx) - 1e-9))
        keep.append(rng.permutation(idx)[:n])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def carve_validation(
    targets: np.ndarray, pool: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``pool`` (indices) per class into (train, val) with ``round(fraction * n_c)`` validation images.

    A class keeps at least one training image; with ``fraction > 0`` a class of two or more images gives at least
    one to validation, so no class is missing from model selection.
    """
    train, val = [], []
    labels = targets[pool]
    for c in np.unique(labels):
        idx = rng.permutation(pool[labels == c])
        n_val = 0
        if fraction > 0 and len(idx) >= 2:
            n_val = min(max(1, round(fraction * len(idx))), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def make_splits(train_targets: np.ndarray, n_test: int, cfg: DataConfig, seed: int) -> SplitIndices:
    """Sample the training set at ``cfg.sample_rate`` (or ``cfg.shots``), then carve validation from it — the papers'
    rule — or, with ``cfg.val_per_class``, hold a fixed validation set of that many images per class out of the
    whole pool first and sample the training images from the rest (a validation set whose size does not shrink
    with the sampling rate: the mini protocol's choice, so that best-validation selection is not a coin toss)."""
    # Separate streams for sampling and carving: the same seed at 30 % and 50 % draws nested-looking but
    # independent subsets, and changing val_fraction does not change which images are sampled.
    sample_rng = rng(seed, Stream.SAMPLING)
    carve_rng = rng(seed, Stream.CARVE)
    if cfg.val_per_class:
        everything = np.arange(len(train_targets))
        val = per_class_sample(train_targets, carve_rng, shots=cfg.val_per_class)
        rest = np.setdiff1d(everything, val)
        small = [c for c in np.unique(train_targets) if (train_targets[rest] == c).sum() == 0]
        if small:
            raise ValueError(f"val_per_class={cfg.val_per_class} leaves no training image of classes {small}")
        picked = per_class_sample(train_targets[rest], sample_rng, rate=cfg.sample_rate, shots=cfg.shots)
        return SplitIndices(train=np.sort(rest[picked]), val=val, test=np.arange(n_test))
    pool = per_class_sample(train_targets, sample_rng, rate=cfg.sample_rate, shots=cfg.shots)
    train, val = carve_validation(train_targets, pool, cfg.val_fraction, carve_rng)
    return SplitIndices(train=train, val=val, test=np.arange(n_test))
