"""The two input paths built on the decoded-image cache, selected by ``DataConfig.pipeline``:

- ``cache``: the cached stage's uint8 rows become PIL images again and go through the rest of the preset's PIL
  pipeline in the DataLoader workers (the same transforms, the same per-sample seeds): decode and resize are paid
  once per dataset instead of once per image and epoch;
- ``device``: workers hand over uint8 rows of the cache with each sample's crop box and flip (drawn as the PIL path
  draws them, :mod:`transferlab.data.device_augment`), a quarter of the bytes of float tensors; cropping, Pillow's
  resampling, flipping and normalisation run on the training device, on whole batches.

Both give the PIL path's input values bit for bit (``tests/test_fast_input.py``), so ``pipeline`` is a run-time
option left out of the config hash. ``pil`` (the default) is the per-sample PIL path of :mod:`.pipeline`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from transferlab.data.base import Part
from transferlab.data.cache import CachedPart, open_cache
from transferlab.data.device_augment import Plan, plan_of
from transferlab.data.resample import pass_order_rule

PIPELINES = ("pil", "cache", "device")
WHICH = ("train", "test", "ten_crop")


def _open(part: Part, preset, workers: int) -> tuple[Plan, object]:
    plan = plan_of(preset)
    images = open_cache(part, preset.name, plan.stage, plan.size, name=part.name, workers=workers)
    return plan, images


def cached_part(part: Part, preset, which: str, workers: int = 0) -> tuple[Part, Callable]:
    """``pipeline="cache"``: (a part whose images are the cached rows, the preset's ``which`` transform after the
    cached stage)."""
    plan, images = _open(part, preset, workers)
    tail = {"train": plan.tail_train, "test": plan.tail_test, "ten_crop": plan.tail_ten_crop}[which]
    if tail is None:
        raise ValueError(f"preset {preset.name!r} has no {which} transform")
    return Part(CachedPart(images, part.targets), part.targets, part.name), tail


def as_batch(batch):
    """collate_fn of :class:`DeviceRows`: ``__getitems__`` already returns the batch."""
    return batch


class DeviceRows(Dataset):
    """``pipeline="device"``: items ``(i, seed)`` fetched a batch at a time (``__getitems__``) as uint8 rows
    [B, H, W, 3] and labels [B], plus, for training, the host-side augmentation work drawn from the seeds (crop
    boxes, flips, resampling tables: :meth:`transferlab.data.device_augment.Plan.params`)."""

    def __init__(self, part: Part, preset, which: str, workers: int = 0):
        if which not in WHICH:
            raise ValueError(f"which={which!r}; choose one of {WHICH}")
        self.plan, self.images = _open(part, preset, workers)
        self.targets, self.which = np.asarray(part.targets, dtype=np.int64), which
        if which == "ten_crop" and self.plan.ten_crop is None:
            raise ValueError(f"preset {preset.name!r} has no ten-crop transform")
        if any(op[0] == "resized_crop" for op in self.plan.train):
            pass_order_rule()  # probed once here, before the workers fork (they inherit the answer)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitems__(self, items: list[tuple[int, int]]):
        idx = np.fromiter((i for i, _ in items), dtype=np.int64, count=len(items))
        x = torch.from_numpy(np.ascontiguousarray(self.images.rows(idx)))
        y = torch.from_numpy(self.targets[idx])
        if self.which != "train":
            return x, y
        return x, y, self.plan.params([s for _, s in items])

    def __getitem__(self, item: tuple[int, int]):
        return self.__getitems__([item])

    def finish(self, device: torch.device) -> Callable:
        """batch → (x, y) on ``device``: x normalised float, channels_last ([B, 10, C, h, w] for ten crops)."""
        plan, which = self.plan, self.which

        def run(x: torch.Tensor, y: torch.Tensor, params: dict | None = None):
            x = x.to(device, non_blocking=True).permute(0, 3, 1, 2)  # NHWC bytes = an NCHW channels_last view
            y = y.to(device, non_blocking=True)
            if which == "train":
                x = plan.augment(x, params)
            else:
                x = plan.evaluate(x, ten_crop=which == "ten_crop")
            if x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            return x, y

        return run


__all__ = ["PIPELINES", "DeviceRows", "as_batch", "cached_part"]
