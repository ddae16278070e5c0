"""What a method computes in ``prepare()`` (Co-Tuning's relationship, DELTA's channel attention), saved with the run.

The file holds the arrays and a key: a sha256 of everything that produced them (the pre-trained weights, the
method's settings, the split, the dataset and any extra inputs). A file with another key is deleted and recomputed,
never silently reused, unlike TLlib's cache files, which are loaded whatever produced them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def fingerprint(
    module: nn.Module, cfg: Any, data: Any, extra: dict | None = None, skip: tuple[str, ...] = ()
) -> str:
    """sha256 over ``module``'s state (keys starting with one of ``skip`` left out), the method config, the split
    and dataset of ``data`` (a :class:`transferlab.experiment.PrepareData`) and ``extra`` (JSON-able)."""
    h = hashlib.sha256()
    state = module.state_dict()
    for k in sorted(state):
        if not k.startswith(skip):
            h.update(k.encode())
            h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    h.update(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode())
    h.update(json.dumps(data.splits.to_json(), sort_keys=True).encode())
    h.update(data.source.name.encode())
    h.update(json.dumps(extra or {}, sort_keys=True).encode())
    return h.hexdigest()


def load(data: Any, filename: str, key: str) -> dict[str, np.ndarray] | None:
    """The arrays saved under ``filename`` in the run directory if their key is ``key``; a stale file is deleted."""
    path = _path(data, filename)
    if path is None or not path.exists():
        return None
    with np.load(path, allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in saved.files}
    if str(arrays.pop("key", "")) == key:
        return arrays
    path.unlink()  # produced by other weights, images or settings
    return None


def save(data: Any, filename: str, key: str, **arrays: Any) -> None:
    """Write ``arrays`` with ``key`` into the run directory (atomically: a temporary file, then a rename)."""
    path = _path(data, filename)
    if path is None:
        return
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, key=key, **arrays)
    tmp.replace(path)


def _path(data: Any, filename: str) -> Path | None:
    out = getattr(data, "out_dir", None)
    return Path(out) / filename if out else None


def to_numpy(tensors: list[torch.Tensor]) -> np.ndarray:
    return torch.cat([t.detach().double().cpu() for t in tensors]).numpy()
