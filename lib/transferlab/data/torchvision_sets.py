"""Subclasses of torchvision's dataset classes the real loaders use, in their own module so that importing
``transferlab.data`` does not import torchvision (its import pulls in ``torch._dynamo``: ~1.5 s per process);
:mod:`transferlab.data.real` imports this module inside the builders that need it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import STL10, FashionMNIST

from transferlab.data.mini import FMNIST_FILES, fmnist_files, read_idx


class STL10Labelled(STL10):
    """torchvision's STL10, md5-checking only the four labelled files: the 2.7 GB ``unlabeled_X.bin`` is neither
    needed nor worth hashing at every build."""

    train_list = STL10.train_list[:2]


class FashionMNISTFiles(FashionMNIST):
    """torchvision's FashionMNIST, also reading gzipped IDX files (torchvision 0.29 reads only unpacked ones), so
    Debian's ``.gz`` files work without unpacking. The folder stays torchvision's ``FashionMNIST/raw``."""

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root, "FashionMNIST", "raw")

    @property
    def processed_folder(self) -> str:
        return os.path.join(self.root, "FashionMNIST", "processed")

    def _check_exists(self) -> bool:
        return len(fmnist_files(Path(self.raw_folder))) == len(FMNIST_FILES)

    def _load_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        files, split = fmnist_files(Path(self.raw_folder)), "train" if self.train else "test"
        images = torch.from_numpy(read_idx(files[f"{split}_images"]).copy())
        return images, torch.from_numpy(read_idx(files[f"{split}_labels"]).astype(np.int64))


__all__ = ["FashionMNISTFiles", "STL10Labelled"]
