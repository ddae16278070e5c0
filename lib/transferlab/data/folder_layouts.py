"""Reading an image dataset's folder: ImageFolder trees, image lists (COCO-70 / TLlib style), CUB's native release.

The layouts and the rules for finding class names are those of :mod:`transferlab.data.folders` (its docstring);
these readers only list directories and read index files, never images.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from transferlab.data.base import Part

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
