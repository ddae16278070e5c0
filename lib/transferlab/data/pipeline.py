"""Batches for the training loop: a resumable training stream and evaluation passes.

Every random choice is a pure function of (run seed, step): the order of epoch e is a permutation drawn from the
ORDER stream with key e, and the augmentation of the batch at step s (in-memory data) or of each sample j of it
(file-based data) from the AUGMENT stream with keys (s) or (s, j) (:mod:`transferlab.seeds`). An interrupted run therefore resumes at step s with exactly the
batches an uninterrupted run would have seen, whatever the number of DataLoader workers.

Two paths, one interface (``TrainStream.batches(start_step)`` and ``eval_batches``):
- in-memory ``TensorImages`` (mini protocol): index the uint8 tensor, augment the whole batch, normalise;
- file-based parts (paper protocol): a DataLoader whose sampler hands each sample its own augmentation seed; with
  ``pipeline="cache"`` or ``"device"`` it reads the decoded-image cache instead of decoding every image every epoch
  (:mod:`transferlab.data.cached_input`; the same input values). Workers persist across epochs and evaluations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from transferlab.data.base import Part, TensorImages
from transferlab.data.keypoints import JointTransform, TensorLandmarks, augment_landmarks
from transferlab.data.transforms import Preset
from transferlab.seeds import Stream, rng, seed_for


class _SeededSamples(Dataset):
    """Wraps a part: item ``(i, seed)`` → the transformed image i, its augmentation drawn from ``seed`` only."""

    def __init__(self, part: Part, transform):
        self.part, self.transform = part, transform

    def __len__(self) -> int:
        return len(self.part)

    def __getitem__(self, item: tuple[int, int]):
        i, seed = item
        image, label = self.part.dataset[i]
        with torch.random.fork_rng(
            devices=[]
        ):  # torchvision's random transforms draw from torch's global RNG
            torch.manual_seed(seed)
            if isinstance(self.transform, JointTransform):  # landmarks: the target moves with the image
                return self.transform(image, label)
            return self.transform(image), label


class _EpochBatches(Sampler):
    """Yields the batches of one epoch from a given offset, each item carrying its sample seed."""

    def __init__(self, stream: TrainStream):
        self.stream = stream
        self.epoch, self.offset = 0, 0

    def __iter__(self):
        s = self.stream
        order = s.order(self.epoch)
        for b in range(self.offset, s.steps_per_epoch):
            step = self.epoch * s.steps_per_epoch + b
            idx = order[b * s.batch_size : (b + 1) * s.batch_size]
            yield [(int(i), seed_for(s.seed, Stream.AUGMENT, step, j)) for j, i in enumerate(idx)]

    def __len__(self) -> int:
        return self.stream.steps_per_epoch - self.offset


class TrainStream:
    """An endless, resumable stream of augmented training batches (drop-last epochs of a fixed batch size)."""

    def __init__(self, part: Part, indices: np.ndarray, preset: Preset, batch_size: int, seed: int, device,
                 workers=0, pipeline: str = "pil"):  # fmt: skip
        if len(indices) == 0:
            raise ValueError("the training split is empty (sample_rate or shots too small for this dataset)")
        self.part, self.indices, self.preset, self.seed = part, np.asarray(indices), preset, seed
        self.batch_size = min(batch_size, len(indices))  # a tiny k-shot split still yields full batches
        self.steps_per_epoch = len(indices) // self.batch_size
        self.device = torch.device(device)
        self.in_memory = isinstance(part.dataset, TensorImages)
        if not self.in_memory:
            if preset.train is None:
                raise ValueError(f"preset {preset.name!r} has no per-sample transform for file-based data")
            self.sampler = _EpochBatches(self)
            self.loader, self._finish = _file_loader(
                part, preset, "train", pipeline, self.device, workers, batch_sampler=self.sampler
            )

    def order(self, epoch: int) -> np.ndarray:
        return rng(self.seed, Stream.ORDER, epoch).permutation(self.indices)

    def batches(self, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, offset = divmod(start_step, self.steps_per_epoch)
        while True:
            if self.in_memory:
                yield from self._memory_epoch(epoch, offset)
            else:
                self.sampler.epoch, self.sampler.offset = epoch, offset
                for batch in self.loader:
                    yield self._finish(*batch)
            epoch, offset = epoch + 1, 0

    def _memory_epoch(self, epoch: int, offset: int):
        data: TensorImages = self.part.dataset  # type: ignore[assignment]
        order = torch.from_numpy(self.order(epoch))
        for b in range(offset, self.steps_per_epoch):
            step = epoch * self.steps_per_epoch + b
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            gen = torch.Generator().manual_seed(seed_for(self.seed, Stream.AUGMENT, step))
            y = data.targets[idx]
            if isinstance(data, TensorLandmarks):  # positions in the image: shifted and mirrored with it
                x, y = augment_landmarks(self.preset, data.images[idx], y, data.flip_index, gen)
            else:
                x = self.preset.augment_batch(data.images[idx], gen)
            yield self._to_device(self.preset.normalize(x), y)

    def _to_device(self, x: torch.Tensor, y: torch.Tensor):
        x = _channels_last(x.to(self.device, non_blocking=True))
        return x, y.to(self.device, non_blocking=True)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """Image batches [B, C, H, W] channels_last; anything else (token batches [B, 2, T]) as it is."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def _file_loader(part: Part, preset: Preset, which: str, pipeline: str, device: torch.device, workers: int,
                 **batching) -> tuple[DataLoader, Callable]:  # fmt: skip
    """(DataLoader over items (i, seed), batch → (x, y) on the device) for file-based data; ``which``: the preset's
    train, test or ten_crop transform; ``pipeline``: pil, cache or device (:mod:`transferlab.data.cached_input`)."""
    from transferlab.data import cached_input  # file-based data only: it imports torchvision (~1.5 s)

    if pipeline not in cached_input.PIPELINES:
        raise ValueError(f"pipeline={pipeline!r}; choose one of: {', '.join(cached_input.PIPELINES)}")
    common = {"num_workers": workers, "pin_memory": device.type == "cuda", "persistent_workers": workers > 0}
    if pipeline != "pil" and isinstance(getattr(preset, which), JointTransform):
        raise ValueError(
            f"pipeline={pipeline!r} caches images only; landmark targets move with them: use 'pil'"
        )
    if pipeline == "device":
        rows = cached_input.DeviceRows(part, preset, which, workers)
        return DataLoader(rows, collate_fn=cached_input.as_batch, **common, **batching), rows.finish(device)
    transform = getattr(preset, which)
    if transform is None:
        raise ValueError(f"preset {preset.name!r} has no {which.replace('_', '-')} transform")
    if pipeline == "cache":
        part, transform = cached_input.cached_part(part, preset, which, workers)

    def to_device(x: torch.Tensor, y: torch.Tensor):
        if which == "train":
            x = _channels_last(x.to(device, non_blocking=True))
            return x, y.to(device, non_blocking=True)
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    return DataLoader(_SeededSamples(part, transform), **common, **batching), to_device


class EvalBatches:
    """Deterministic evaluation batches, iterable any number of times; with ``ten_crop`` each x is [B, 10, C, H, W].
    File-based data keeps one DataLoader (and its workers) for every pass: ``fit()`` holds one for validation."""

    def __init__(self, part: Part, indices: np.ndarray, preset: Preset, batch_size: int, device,
                 ten_crop: bool = False, workers: int = 0, pipeline: str = "pil"):  # fmt: skip
        self.part, self.indices, self.preset, self.batch_size = part, np.asarray(indices), preset, batch_size
        self.device, self.ten_crop = torch.device(device), ten_crop
        self.in_memory = isinstance(part.dataset, TensorImages)
        if self.in_memory and ten_crop:
            raise ValueError("ten_crop needs a file-based dataset with a 10-crop preset (e.g. imagenet224)")
        if not self.in_memory:
            items = [(int(i), 0) for i in self.indices]
            which = "ten_crop" if ten_crop else "test"
            self.loader, self._finish = _file_loader(part, preset, which, pipeline, self.device, workers,
                                                     sampler=items, batch_size=batch_size)  # fmt: skip

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.in_memory:
            for batch in self.loader:
                yield self._finish(*batch)
            return
        data: TensorImages = self.part.dataset  # type: ignore[assignment]
        idx = torch.from_numpy(self.indices)
        for start in range(0, len(idx), self.batch_size):
            sel = idx[start : start + self.batch_size]
            x = _channels_last(self.preset.normalize(data.images[sel]))
            yield x.to(self.device), data.targets[sel].to(self.device)


def eval_batches(
    part: Part,
    indices: np.ndarray,
    preset: Preset,
    batch_size: int,
    device,
    ten_crop: bool = False,
    workers: int = 0,
    pipeline: str = "pil",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass of :class:`EvalBatches`."""
    return iter(EvalBatches(part, indices, preset, batch_size, device, ten_crop, workers, pipeline))
