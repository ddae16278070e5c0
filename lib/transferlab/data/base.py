"""What a dataset builder returns, and the error it raises when the data is not where it should be.

A builder (registered in ``transferlab.data.DATASETS``) turns a data root into a :class:`DatasetSource`: the official
train and test parts (and the official validation part, where one exists), the class names, and the transform preset
the dataset is used with. Each part carries its labels as an array, so splits by class can be drawn without
decoding a single image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from transferlab.errors import TransferlabError
from transferlab.registry import Registry

# name → builder(root: Path) -> DatasetSource. Builders must not read images: they check the layout, index the files
# and return; decoding happens lazily in the training loop.
DATASETS: Registry = Registry("dataset")
# name → the task kind its DatasetSource declares (transferlab.tasks.TASKS), known without loading anything, so a
# method that cannot handle it is refused when a table is planned; datasets registered without one classify.
DATASET_TASKS: dict[str, str] = {}


def register_dataset(name: str, task: str = "classification"):
    """Decorator: register a builder under ``name`` in ``DATASETS`` with the task kind it produces."""

    def add(builder):
        DATASETS.register(name)(builder)
        DATASET_TASKS[name] = task
        return builder

    return add


def task_name(dataset: str) -> str:
    """The task kind of a registered dataset (``classification`` unless registered otherwise)."""
    DATASETS.check(dataset)
    return DATASET_TASKS.get(dataset, "classification")


class DatasetNotFoundError(TransferlabError, FileNotFoundError):
    """The data root does not hold the expected layout. The message says what to put where and where to get it."""

    def __init__(self, name: str, root: Path | str, layout: str, source: str, detail: str = ""):
        self.name, self.root = name, Path(root)
        msg = f"dataset {name!r} not found under {self.root}"
        if detail:
            msg += f" ({detail})"
        msg += f".\nExpected layout:\n{layout.rstrip()}\nWhere to get it: {source}"
        super().__init__(msg)


class DatasetCorruptError(TransferlabError, ValueError):
    """A dataset file is there but cannot be read (truncated download, wrong file); the message names the file and
    how to get it again."""


def require(name: str, root: Path, paths: Sequence[str], layout: str, source: str) -> None:
    """Raise :class:`DatasetNotFoundError` unless every relative path in ``paths`` exists under ``root``."""
    missing = [p for p in paths if not (root / p).exists()]
    if missing:
        raise DatasetNotFoundError(name, root, layout, source, detail=f"missing: {', '.join(missing)}")


@dataclass
class Part:
    """One official split: ``dataset[i] -> (image, label)`` with images as PIL or uint8 [C, H, W] tensors."""

    dataset: Dataset
    targets: np.ndarray  # int64 [N], the labels of ``dataset`` in order
    name: str = ""  # "<dataset>-<part>", set by DatasetSource (names the part's decoded-image cache)

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.int64)
        if len(self.targets) != len(self.dataset):  # type: ignore[arg-type]
            raise ValueError(f"{len(self.targets)} labels for {len(self.dataset)} images")  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.targets)


class TensorImages(Dataset):
    """An in-memory image set: uint8 images [N, C, H, W] and int64 labels [N] (the mini protocol's datasets).

    The training loop recognises this type and augments whole batches on the device instead of going through a
    per-sample DataLoader, which is what makes the mini protocol fast on two CPU cores.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor | np.ndarray):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"TensorImages expects uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}"
            )
        self.images = images
        if torch.is_tensor(targets):
            self.targets = targets.to(torch.int64).clone()
        else:  # a copy: the numpy source may be read-only (np.frombuffer), which torch warns about
            self.targets = torch.from_numpy(np.array(targets, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.targets[i])

    def part(self) -> Part:
        return Part(self, self.targets.numpy())


@dataclass
class DatasetSource:
    name: str
    classes: list[str]
    train: Part
    test: Part
    val: Part | None = None  # the dataset's own validation split, if it has one
    preset: str = "imagenet224"  # default transform preset (transferlab.data.transforms.TRANSFORMS)
    info: dict = field(default_factory=dict)  # provenance: source URL, licence, notes
    task: str = "classification"  # the task kind (transferlab.tasks.TASKS) its targets are for
    task_params: dict = field(
        default_factory=dict
    )  # what the task needs beyond the classes (e.g. NME normaliser)

    def __post_init__(self) -> None:
        for label in ("train", "test", "val"):
            part = getattr(self, label)
            if part is not None and not part.name:
                part.name = f"{self.name}-{label}"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train.dataset, TensorImages)
