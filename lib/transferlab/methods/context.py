"""``PrepareData``: what ``Method.prepare`` may look at — the train and validation splits, never test.

It offers deterministic passes over train and validation (the test transform), the augmented training stream as
``fit()`` draws it (for methods that train something of their own in ``prepare``, such as DELTA's attention
classifier) under a method-owned seed stream, the run directory (to cache what was prepared with the run), and the
finished runs the method declared as ``dependencies`` (distillation's teacher).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferlab.config import RunConfig
from transferlab.data.pipeline import TrainStream, eval_batches
from transferlab.data.splits import SplitIndices
from transferlab.seeds import Stream, seed_for


class PrepareData:
    def __init__(self, source: Any, splits: SplitIndices, preset: Any, cfg: RunConfig, device: Any,
                 out_dir: Path | None = None, dependencies: dict[str, Path] | None = None):  # fmt: skip
        self.source, self.splits, self.preset, self.cfg, self.device = source, splits, preset, cfg, device
        self.out_dir = out_dir  # where a method may cache what it prepared (saved with the run)
        self.dependencies = dict(dependencies or {})  # role → finished run directory

    def _batches(self, indices):
        d = self.cfg.data
        return eval_batches(self.source.train, indices, self.preset, d.eval_batch_size, self.device, False,
                            d.num_workers, d.pipeline)  # fmt: skip

    def train(self):
        return self._batches(self.splits.train)

    def val(self):
        return self._batches(self.splits.val)

    def train_stream(self, batch_size: int, key: int) -> TrainStream:
        """Augmented, shuffled training batches as ``fit()`` draws them, from the METHOD seed stream with ``key``."""
        d = self.cfg.data
        seed = seed_for(self.cfg.seed, Stream.METHOD, key)
        return TrainStream(self.source.train, self.splits.train, self.preset, batch_size, seed, self.device,
                           d.num_workers, d.pipeline)  # fmt: skip

    def dependency(self, role: str) -> Path:
        """The finished run directory of the dependency ``role`` (see ``Method.dependencies``)."""
        if role not in self.dependencies:
            raise KeyError(f"no finished dependency {role!r}; have: {', '.join(self.dependencies) or 'none'}")
        return self.dependencies[role]
