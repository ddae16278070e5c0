"""Tiny on-disk fixtures for the dataset loaders: real (PIL-encoded) JPEGs and the exact files torchvision reads.

Every ``make_*`` helper writes a few images per class under a data root and returns what it wrote (class names,
labels per part, image size), so a test can compare the loader's view with the truth.

Checksums: torchvision's CIFAR and STL-10 classes md5-check their files against the official digests
(``check_integrity(path, md5)`` in ``torchvision.datasets.utils``), which no fixture can match. The loaders keep that
check on (it catches corrupt downloads for users); the tests instead point the class's digest lists at the
fixture's own files with ``patch_md5`` (pytest's ``monkeypatch``, undone after each test). The check then runs for
real, and passes, on the fixture.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Expected:
    """What a fixture wrote: class names, the labels of each part in loader order, an image's (width, height)."""

    classes: list[str]
    train: list[int]
    test: list[int]
    size: tuple[int, int]
    val: list[int] | None = None
    extra: dict = field(default_factory=dict)


def rgb(size: tuple[int, int], seed: int) -> np.ndarray:
    """A gradient plus noise, uint8 [H, W, 3]: distinct per seed, compressible, a real image to decode."""
    w, h = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, seed * 37 % 256)], -1
    )
    return np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)


def write_jpeg(path: Path, size: tuple[int, int] = (20, 16), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb(size, seed)).save(path, format="JPEG", quality=85)
    return path


# ---------------------------------------------------------------------------------------------- image-file trees
FOLDER_CLASSES = ["ant", "bee", "cat"]
FOLDER_COUNTS = {"train": [3, 2, 4], "val": [1, 1, 1], "test": [2, 2, 1]}


def make_image_folder(folder: Path, size=(20, 16), with_val: bool = True) -> Expected:
    """``folder/{train,val,test}/<class>/NNNN.jpg`` with ``FOLDER_COUNTS`` images per class."""
    labels: dict[str, list[int]] = {}
    for part, counts in FOLDER_COUNTS.items():
        if part == "val" and not with_val:
            continue
        labels[part] = []
        for k, (c, n) in enumerate(zip(FOLDER_CLASSES, counts)):
            for i in range(n):
                write_jpeg(folder / part / c / f"{i:04d}.jpg", size, seed=100 * k + i)
            labels[part] += [k] * n
    (folder / "train" / ".ipynb_checkpoints").mkdir()  # hidden folders are not classes
    return Expected(list(FOLDER_CLASSES), labels["train"], labels["test"], size, val=labels.get("val"))


def _write_list(path: Path, rows: list[tuple[str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{p} {y}\n" for p, y in rows) + "\n", encoding="utf-8")


def make_image_lists(folder: Path, style: str = "coco", size=(18, 14)) -> Expected:
    """COCO-70 style (``train.txt dev.txt test.txt classes.txt``) or TLlib style (``image_list/train_*.txt``).

    Images sit in ``{train,dev,test}/<class>/``; COCO-style list paths are relative to the part's folder (so the
    loader's path resolution is exercised), TLlib-style ones to the dataset folder, as in TLlib. The list order is
    deliberately not sorted: the loader must keep it.
    """
    classes = ["zebra", "apple pie", "car"]  # a space in a class name and in a file name
    per = {"train": 3, "dev": 1, "test": 2}
    rows: dict[str, list[tuple[str, int]]] = {}
    for part, n in per.items():
        rows[part] = []
        for k in (2, 0, 1):
            for i in range(n):
                rel = f"{classes[k]}/img {i}.jpg"
                write_jpeg(folder / part / rel, size, seed=10 * k + i)
                rows[part].append((rel if style == "coco" else f"{part}/{rel}", k))
    if style == "coco":
        for part in per:
            _write_list(folder / f"{part}.txt", rows[part])
        (folder / "classes.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
        val = [y for _, y in rows["dev"]]
    else:
        _write_list(folder / "image_list" / "train_100.txt", rows["train"])
        _write_list(folder / "image_list" / "train_50.txt", rows["train"][::2])
        _write_list(folder / "image_list" / "test.txt", rows["test"])
        val = None
    return Expected(classes, [y for _, y in rows["train"]], [y for _, y in rows["test"]], size, val=val)


def make_cub_native(folder: Path, size=(24, 20)) -> Expected:
    """``folder/CUB_200_2011/`` with the Caltech index files (1-based ids and labels) and ``images/``."""
    d = folder / "CUB_200_2011"
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    images, labels, split = [], [], []
    train, test = [], []
    for i in range(1, 8):  # image ids 1..7, alternating classes, ids 3 and 6 in test
        k = i % 2
        rel = f"{classes[k]}/{classes[k][4:]}_{i:04d}.jpg"
        write_jpeg(d / "images" / rel, size, seed=i)
        is_train = i not in (3, 6)
        images.append(f"{i} {rel}")
        labels.append(f"{i} {k + 1}")
        split.append(f"{i} {int(is_train)}")
        (train if is_train else test).append(k)
    for name, lines in [
        ("images.txt", images),
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", split),
    ]:
        (d / name).write_text("\n".join(lines) + "\n")
    (d / "classes.txt").write_text("".join(f"{k + 1} {c}\n" for k, c in enumerate(classes)))
    return Expected(classes, train, test, size)


# ------------------------------------------------------------------------------------------- torchvision formats
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def _cifar_rows(n: int, seed: int) -> np.ndarray:
    """n images as CIFAR rows: uint8 [n, 3072], channel planes R, G, B of 32×32 each."""
    return np.stack([rgb((32, 32), seed + i).transpose(2, 0, 1).reshape(-1) for i in range(n)])


def make_cifar10(root: Path) -> Expected:
    """``root/cifar10/cifar-10-batches-py/`` with the five train batches, the test batch and ``batches.meta``."""
    d = root / "cifar10" / "cifar-10-batches-py"
    train, test = [], [3, 9, 0]
    for b in range(1, 6):
        labels = [b % 10, (2 * b) % 10]
        _pickle(
            d / f"data_batch_{b}",
            {
                "batch_label": f"batch {b}",
                "labels": labels,
                "data": _cifar_rows(2, b),
                "filenames": [f"b{b}_{i}.png" for i in range(2)],
            },
        )
        train += labels
    _pickle(
        d / "test_batch", {"batch_label": "test", "labels": test, "data": _cifar_rows(3, 50), "filenames": []}
    )
    _pickle(d / "batches.meta", {"label_names": CIFAR10_NAMES, "num_cases_per_batch": 2, "num_vis": 3072})
    return Expected(list(CIFAR10_NAMES), train, test, (32, 32))


def make_cifar100(root: Path) -> Expected:
    """``root/cifar100/cifar-100-python/{train,test,meta}`` with fine and coarse labels (the loader uses fine)."""
    d = root / "cifar100" / "cifar-100-python"
    fine = [f"fine{k:02d}" for k in range(100)]
    train, test = [0, 57, 99, 12], [42, 7]
    for name, labels, seed in [("train", train, 1), ("test", test, 9)]:
        _pickle(
            d / name,
            {
                "data": _cifar_rows(len(labels), seed),
                "fine_labels": labels,
                "coarse_labels": [y // 5 for y in labels],
                "filenames": [],
            },
        )
    _pickle(d / "meta", {"fine_label_names": fine, "coarse_label_names": [f"coarse{k}" for k in range(20)]})
    return Expected(fine, train, test, (32, 32))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def patch_md5(monkeypatch, cls, folder: Path) -> None:
    """Point ``cls``'s expected digests (``train_list``, ``test_list``, ``meta``) at the files in ``folder``."""
    for attr in ("train_list", "test_list"):
        monkeypatch.setattr(cls, attr, [[f, md5(folder / f)] for f, _ in getattr(cls, attr)])
    if isinstance(getattr(cls, "meta", None), dict):
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})


def make_fgvc_aircraft(root: Path, size=(30, 22)) -> Expected:
    """``root/fgvc_aircraft/fgvc-aircraft-2013b/data/`` with variant lists and ``images/<id>.jpg``."""
    d = root / "fgvc_aircraft" / "fgvc-aircraft-2013b" / "data"
    variants = ["707-320", "Cessna 172", "F/A-18"]  # spaces and slashes, as in the real variants.txt
    d.mkdir(parents=True)
    (d / "variants.txt").write_text("\n".join(variants) + "\n")
    labels = {"trainval": [0, 1, 2, 2, 1], "test": [2, 0, 1]}
    n = 1000000
    for split, ys in labels.items():
        lines = []
        for y in ys:
            n += 1
            write_jpeg(d / "images" / f"{n:07d}.jpg", size, seed=n)
            lines.append(f"{n:07d} {variants[y]}")
        (d / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    return Expected(variants, labels["trainval"], labels["test"], size)


def make_stanford_cars(root: Path, size=(26, 18)) -> Expected:
    """``root/stanford_cars/``: devkit .mat files (scipy.io.savemat), flat image folders, the labelled test .mat."""
    from scipy.io import savemat

    base = root / "stanford_cars"
    classes = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi TTS Coupe 2012"]
    labels = {
        "train": [2, 0, 1, 0],
        "test": [1, 2, 0],
    }  # at least 2 per split: squeeze_me keeps the struct array
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    for split, ys in labels.items():
        annos = np.zeros(len(ys), dtype=[(f, object) for f in fields])
        for i, y in enumerate(ys):
            fname = f"{i + 1:05d}.jpg"
            write_jpeg(base / f"cars_{split}" / fname, size, seed=10 * i + y)
            annos[i] = (1, 1, size[0], size[1], y + 1, fname)  # class ids are 1-based in the .mat files
        mat = (
            base / "devkit" / "cars_train_annos.mat"
            if split == "train"
            else base / "cars_test_annos_withlabels.mat"
        )
        mat.parent.mkdir(parents=True, exist_ok=True)
        savemat(mat, {"annotations": annos})
    savemat(
        base / "devkit" / "cars_meta.mat", {"class_names": np.array(classes, dtype=object).reshape(1, -1)}
    )
    return Expected(classes, labels["train"], labels["test"], size)


EUROSAT_FIXTURE = {"AnnualCrop": 5, "Forest": 10, "SeaLake": 4}


def make_eurosat(root: Path, size=(64, 64)) -> Expected:
    """``root/eurosat/2750/<class>/<class>_<n>.jpg``; labels are the whole set (the loader splits 80/20)."""
    labels = []
    for k, (c, n) in enumerate(EUROSAT_FIXTURE.items()):
        for i in range(1, n + 1):
            write_jpeg(root / "eurosat" / "2750" / c / f"{c}_{i}.jpg", size, seed=100 * k + i)
        labels += [k] * n
    return Expected(list(EUROSAT_FIXTURE), labels, [], size)


STL10_NAMES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def make_stl10(root: Path) -> Expected:
    """``root/stl10/stl10_binary/{train,test}_{X,y}.bin`` (uint8 column-major 3×96×96, 1-based labels) + names."""
    d = root / "stl10" / "stl10_binary"
    d.mkdir(parents=True)
    labels = {"train": [0, 9, 4], "test": [5, 1]}
    for split, ys in labels.items():
        imgs = np.stack(
            [rgb((96, 96), 7 * i + y).transpose(2, 1, 0) for i, y in enumerate(ys)]
        )  # [N, 3, W, H]
        imgs.tofile(d / f"{split}_X.bin")
        (np.asarray(ys, dtype=np.uint8) + 1).tofile(d / f"{split}_y.bin")
    (d / "class_names.txt").write_text("\n".join(STL10_NAMES) + "\n")
    return Expected(list(STL10_NAMES), labels["train"], labels["test"], (96, 96))


def _idx_bytes(arr: np.ndarray) -> bytes:
    """IDX (LeCun) encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian dims, then the bytes."""
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def make_fashion_mnist(root: Path, gz: bool = False) -> Expected:
    """``root/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``."""
    from transferlab.data.mini import FMNIST_CLASSES

    d = root / "FashionMNIST" / "raw"
    d.mkdir(parents=True)
    labels = {"train": [0, 3, 9, 3], "t10k": [8, 1]}
    for split, ys in labels.items():
        images = np.stack([rgb((28, 28), 3 * i + y)[..., 0] for i, y in enumerate(ys)])
        for kind, arr in [("images-idx3", images), ("labels-idx1", np.asarray(ys, dtype=np.uint8))]:
            data = _idx_bytes(arr)
            name = f"{split}-{kind}-ubyte"
            if gz:
                (d / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (d / name).write_bytes(data)
    return Expected(list(FMNIST_CLASSES), labels["train"], labels["t10k"], (28, 28))
