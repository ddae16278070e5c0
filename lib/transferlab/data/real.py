"""Real datasets read through torchvision's classes, never downloaded: the layout is checked first, then torchvision.

Each dataset lives in its own folder of the data root (torchvision's own layout directly under the data root, as
``download=True`` would have left it, is accepted too, except for Fashion-MNIST whose torchvision folder is fixed):

==================  =======================================================  ============================
name                expected under ``<data_root>``                           official split used
==================  =======================================================  ============================
``cifar10``         ``cifar10/cifar-10-batches-py/`` (python pickles)        train 50,000 / test 10,000
``cifar100``        ``cifar100/cifar-100-python/`` (fine labels)             train 50,000 / test 10,000
``fgvc_aircraft``   ``fgvc_aircraft/fgvc-aircraft-2013b/data/``              trainval 6,667 / test 3,333
``stanford_cars``   ``stanford_cars/{devkit,cars_train,cars_test}``          train 8,144 / test 8,041
``eurosat``         ``eurosat/2750/<class>/*.jpg`` (RGB)                     seeded per-class 80/20
``stl10``           ``stl10/stl10_binary/*.bin``                             train 5,000 / test 8,000
``fashion_mnist``   ``FashionMNIST/raw/*-ubyte[.gz]``                        train 60,000 / test 10,000
==================  =======================================================  ============================

Labels are read from torchvision's label attributes (``targets``, ``labels``, ``_labels``, ``_samples``), so no
image is decoded at build time. torchvision's own md5 checks (CIFAR, STL-10) stay on: a corrupt file fails here,
with the layout in the message, not in the middle of training.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Subset

from transferlab.data.base import DATASETS, DatasetNotFoundError, DatasetSource, Part, require
from transferlab.data.mini import FMNIST_CLASSES, FMNIST_FILES, fmnist_files

EUROSAT_SPLIT_SEED = 0  # fixes EuroSAT's train/test split forever: changing it changes the benchmark
EUROSAT_TEST_FRACTION = 0.2
STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def _base(root: Path, folder: str, marker: str) -> Path:
    """``root/folder`` (our layout) or ``root`` itself (torchvision's), whichever holds ``marker``."""
    return root if not (root / folder / marker).exists() and (root / marker).exists() else root / folder


@dataclass(frozen=True)
class _Spec:
    """A dataset's name, expected layout and source: what every error about it must say."""

    name: str
    layout: str
    source: str

    def require(self, base: Path, paths: list[str]) -> None:
        require(self.name, base, paths, self.layout, self.source)

    def error(self, root: Path, detail: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(self.name, root, self.layout, self.source, detail=detail)

    def build(self, root: Path, make: Callable[[], Any]) -> Any:
        """Call torchvision; turn its errors (md5 mismatch, unreadable annotations) into a layout error."""
        try:
            return make()
        except (RuntimeError, ValueError, OSError, KeyError, IndexError) as err:
            detail = f"torchvision could not read the files ({type(err).__name__}: {err}); corrupt or partial copy?"
            raise self.error(root, detail) from err


# ------------------------------------------------------------------------------------------------- CIFAR-10/100
CIFAR_SOURCE = (
    "https://www.cs.toronto.edu/~kriz/cifar.html ({}, the python version), extracted into <data_root>/{}"
)
CIFAR10_LAYOUT = """\
  <data_root>/cifar10/cifar-10-batches-py/data_batch_1 … data_batch_5
  <data_root>/cifar10/cifar-10-batches-py/test_batch
  <data_root>/cifar10/cifar-10-batches-py/batches.meta
(torchvision's <data_root>/cifar-10-batches-py/ is accepted too)"""
CIFAR100_LAYOUT = """\
  <data_root>/cifar100/cifar-100-python/train
  <data_root>/cifar100/cifar-100-python/test
  <data_root>/cifar100/cifar-100-python/meta
(torchvision's <data_root>/cifar-100-python/ is accepted too)"""


CIFAR10_SPEC = _Spec("cifar10", CIFAR10_LAYOUT, CIFAR_SOURCE.format("cifar-10-python.tar.gz", "cifar10"))
CIFAR100_SPEC = _Spec("cifar100", CIFAR100_LAYOUT, CIFAR_SOURCE.format("cifar-100-python.tar.gz", "cifar100"))


def _tv(name: str):
    """A torchvision dataset class, imported where used (torchvision's import pulls in torch._dynamo, ~1.5 s)."""
    import torchvision.datasets

    return getattr(torchvision.datasets, name)


def _cifar(spec: _Spec, cls, root: Path) -> DatasetSource:
    base = _base(root, spec.name, cls.base_folder)
    files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    spec.require(base, [f"{cls.base_folder}/{f}" for f in files])
    tr = spec.build(root, lambda: cls(str(base), train=True, download=False))
    te = spec.build(root, lambda: cls(str(base), train=False, download=False))
    info = {"source": spec.source, "folder": str(base / cls.base_folder)}
    return DatasetSource(
        spec.name, list(tr.classes), Part(tr, tr.targets), Part(te, te.targets), None, "cifar32", info
    )


@DATASETS.register("cifar10")
def cifar10(root: Path) -> DatasetSource:
    """CIFAR-10 (Krizhevsky 2009): 10 classes, torchvision's python pickles, md5-checked by torchvision."""
    return _cifar(CIFAR10_SPEC, _tv("CIFAR10"), root)


@DATASETS.register("cifar100")
def cifar100(root: Path) -> DatasetSource:
    """CIFAR-100 (Krizhevsky 2009): the 100 fine labels, torchvision's python pickles."""
    return _cifar(CIFAR100_SPEC, _tv("CIFAR100"), root)


# ------------------------------------------------------------------------------------------------ FGVC Aircraft
FGVC_LAYOUT = """\
  <data_root>/fgvc_aircraft/fgvc-aircraft-2013b/data/variants.txt
  <data_root>/fgvc_aircraft/fgvc-aircraft-2013b/data/images_variant_trainval.txt
  <data_root>/fgvc_aircraft/fgvc-aircraft-2013b/data/images_variant_test.txt
  <data_root>/fgvc_aircraft/fgvc-aircraft-2013b/data/images/<id>.jpg
(torchvision's <data_root>/fgvc-aircraft-2013b/ is accepted too)"""
FGVC_SOURCE = (
    "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ (fgvc-aircraft-2013b.tar.gz, extracted into "
    "<data_root>/fgvc_aircraft)"
)


FGVC_SPEC = _Spec("fgvc_aircraft", FGVC_LAYOUT, FGVC_SOURCE)


@DATASETS.register("fgvc_aircraft")
def fgvc_aircraft(root: Path) -> DatasetSource:
    """FGVC-Aircraft (Maji et al. 2013): 100 variants; train = the official ``trainval`` split, test = ``test``.

    The official ``val`` half of ``trainval`` is not exposed separately (validation is carved from train by
    :mod:`transferlab.data.splits`, as in the papers). Images keep the 20-pixel copyright banner at the bottom, as in
    torchvision and the papers' pipelines. Labels come from ``_labels``.
    """
    folder = "fgvc-aircraft-2013b"
    base = _base(root, FGVC_SPEC.name, folder)
    data = ["variants.txt", "images_variant_trainval.txt", "images_variant_test.txt", "images"]
    FGVC_SPEC.require(base, [f"{folder}/data/{f}" for f in data])
    tr, te = (
        FGVC_SPEC.build(root, lambda s=s: _tv("FGVCAircraft")(str(base), s, "variant", download=False))
        for s in ("trainval", "test")
    )
    info = {
        "source": FGVC_SOURCE,
        "folder": str(base / folder),
        "annotation_level": "variant",
        "train": "trainval",
    }
    return DatasetSource(
        FGVC_SPEC.name, list(tr.classes), Part(tr, tr._labels), Part(te, te._labels), info=info
    )


# ------------------------------------------------------------------------------------------------ Stanford Cars
CARS_LAYOUT = """\
  <data_root>/stanford_cars/devkit/cars_meta.mat
  <data_root>/stanford_cars/devkit/cars_train_annos.mat
  <data_root>/stanford_cars/cars_test_annos_withlabels.mat
  <data_root>/stanford_cars/cars_train/00001.jpg …   (flat, not cars_train/cars_train/)
  <data_root>/stanford_cars/cars_test/00001.jpg …"""
CARS_SOURCE = (
    "torchvision's download is disabled upstream because the original URL "
    "(ai.stanford.edu/~jkrause/cars/car_dataset.html) is dead, see https://github.com/pytorch/vision/issues/7545. "
    "Use the mirrors given there: the images from Kaggle (https://www.kaggle.com/datasets/jessicali9530/"
    "stanford-cars-dataset), the devkit (https://github.com/pytorch/vision/files/11644847/car_devkit.tgz) and "
    "cars_test_annos_withlabels.mat (https://github.com/pytorch/vision/issues/7545#issuecomment-1631441616). "
    "Reading the .mat files needs scipy"
)
CARS_SPEC = _Spec("stanford_cars", CARS_LAYOUT, CARS_SOURCE)


@DATASETS.register("stanford_cars")
def stanford_cars(root: Path) -> DatasetSource:
    """Stanford Cars (Krause et al. 2013): 196 classes, the official train/test halves (labels from ``_samples``)."""
    base = root / "stanford_cars"  # fixed by torchvision
    files = ["devkit/cars_meta.mat", "devkit/cars_train_annos.mat", "cars_test_annos_withlabels.mat"]
    CARS_SPEC.require(base, [*files, "cars_train", "cars_test"])
    for d in ("cars_train", "cars_test"):
        if (base / d / d).is_dir():  # the Kaggle archive nests the image folders one level too deep
            raise CARS_SPEC.error(
                root, f"images nested one level too deep: move {base / d / d}/* up into {base / d}/"
            )
    try:
        import scipy.io  # noqa: F401  (torchvision's StanfordCars reads the annotations with scipy)
    except ImportError:
        raise CARS_SPEC.error(root, "scipy is not installed (pip install scipy)") from None
    tr, te = (
        CARS_SPEC.build(root, lambda s=s: _tv("StanfordCars")(str(root), s, download=False))
        for s in ("train", "test")
    )
    labels = [[int(t) for _, t in ds._samples] for ds in (tr, te)]
    classes = [str(c) for c in tr.classes]
    info = {"source": CARS_SOURCE, "folder": str(base)}
    return DatasetSource(CARS_SPEC.name, classes, Part(tr, labels[0]), Part(te, labels[1]), info=info)


# ------------------------------------------------------------------------------------------------------ EuroSAT
EUROSAT_LAYOUT = """\
  <data_root>/eurosat/2750/<class>/<class>_<n>.jpg   (the RGB version: AnnualCrop, Forest, …, SeaLake)"""
EUROSAT_SOURCE = (
    "https://github.com/phelber/eurosat (EuroSAT RGB, EuroSAT.zip; torchvision's mirror "
    "https://huggingface.co/datasets/torchgeo/eurosat), extracted into <data_root>/eurosat so that 2750/ is inside"
)
EUROSAT_SPEC = _Spec("eurosat", EUROSAT_LAYOUT, EUROSAT_SOURCE)


def per_class_split(targets: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) sorted indices: per class, a seeded permutation's first ``round(fraction·n_c)`` go to test."""
    rng = np.random.default_rng(seed)
    test = [np.zeros(0, dtype=np.int64)]
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        test.append(rng.permutation(idx)[: round(test_fraction * len(idx))])
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(targets)), test_idx), test_idx


@DATASETS.register("eurosat")
def eurosat(root: Path) -> DatasetSource:
    """EuroSAT RGB (Helber et al. 2019): 27,000 64×64 Sentinel-2 patches, 10 land-use classes.

    EuroSAT has no official split and torchvision gives none: we draw a fixed per-class 80/20 train/test split,
    ``per_class_split(targets, 0.2, EUROSAT_SPLIT_SEED)``, over torchvision's sorted file order (21,600 / 5,400).
    """
    data = root / "eurosat" / "2750"  # fixed by torchvision
    EUROSAT_SPEC.require(root, ["eurosat/2750"])
    if not any(e.is_dir() for e in os.scandir(data)):
        raise EUROSAT_SPEC.error(root, f"{data} has no class folders")
    full = EUROSAT_SPEC.build(root, lambda: _tv("EuroSAT")(str(root), download=False))
    targets = np.asarray(full.targets, dtype=np.int64)
    tr, te = per_class_split(targets, EUROSAT_TEST_FRACTION, EUROSAT_SPLIT_SEED)
    split = f"per-class {1 - EUROSAT_TEST_FRACTION:.0%}/{EUROSAT_TEST_FRACTION:.0%} train/test, seed {EUROSAT_SPLIT_SEED}"
    info = {"source": EUROSAT_SOURCE, "folder": str(data), "split": split}
    parts = [Part(Subset(full, idx.tolist()), targets[idx]) for idx in (tr, te)]
    return DatasetSource(EUROSAT_SPEC.name, list(full.classes), parts[0], parts[1], info=info)


# ------------------------------------------------------------------------------------------------------- STL-10
STL10_LAYOUT = """\
  <data_root>/stl10/stl10_binary/train_X.bin   <data_root>/stl10/stl10_binary/train_y.bin
  <data_root>/stl10/stl10_binary/test_X.bin    <data_root>/stl10/stl10_binary/test_y.bin
  [<data_root>/stl10/stl10_binary/class_names.txt]   (unlabeled_X.bin is not needed)
(torchvision's <data_root>/stl10_binary/ is accepted too)"""
STL10_SOURCE = (
    "https://cs.stanford.edu/~acoates/stl10/ (stl10_binary.tar.gz, extracted into <data_root>/stl10)"
)
STL10_SPEC = _Spec("stl10", STL10_LAYOUT, STL10_SOURCE)


@DATASETS.register("stl10")
def stl10(root: Path) -> DatasetSource:
    """STL-10 (Coates et al. 2011): 96×96 images, 10 classes, the labelled train (5,000) and test (8,000) sets."""
    from transferlab.data.torchvision_sets import STL10Labelled

    folder = STL10Labelled.base_folder
    base = _base(root, STL10_SPEC.name, folder)
    STL10_SPEC.require(base, [f"{folder}/{f}" for f, _ in STL10Labelled.train_list + STL10Labelled.test_list])
    tr, te = (STL10_SPEC.build(root, lambda s=s: STL10Labelled(str(base), s)) for s in ("train", "test"))
    classes = list(getattr(tr, "classes", STL10_CLASSES))
    info = {"source": STL10_SOURCE, "folder": str(base / folder)}
    return DatasetSource(STL10_SPEC.name, classes, Part(tr, tr.labels), Part(te, te.labels), info=info)


# ------------------------------------------------------------------------------------------------ Fashion-MNIST
FMNIST_REAL_LAYOUT = """\
  <data_root>/FashionMNIST/raw/train-images-idx3-ubyte[.gz]   <data_root>/FashionMNIST/raw/train-labels-idx1-ubyte[.gz]
  <data_root>/FashionMNIST/raw/t10k-images-idx3-ubyte[.gz]    <data_root>/FashionMNIST/raw/t10k-labels-idx1-ubyte[.gz]"""
FMNIST_REAL_SOURCE = (
    "https://github.com/zalandoresearch/fashion-mnist (the four files), or on Debian/Ubuntu "
    "`apt-get install dataset-fashion-mnist` and copy or link /usr/share/datasets/fashion-mnist/* into "
    "<data_root>/FashionMNIST/raw"
)
FMNIST_SPEC = _Spec("fashion_mnist", FMNIST_REAL_LAYOUT, FMNIST_REAL_SOURCE)


@DATASETS.register("fashion_mnist")
def fashion_mnist(root: Path) -> DatasetSource:
    """Fashion-MNIST (Xiao et al. 2017) at full size: 28×28 grey PIL images, train 60,000 / test 10,000.

    Unlike ``mini_fmnist`` (in-memory tensors for the mini protocol), this is the file-based dataset for the paper
    protocol; its default preset ``cifar32`` turns the grey images to RGB at 32×32. Labels come from ``targets``.
    """
    raw = root / "FashionMNIST" / "raw"
    found = fmnist_files(raw)
    missing = [f"{stem}[.gz]" for key, stem in FMNIST_FILES.items() if key not in found]
    if missing:
        raise FMNIST_SPEC.error(root, f"missing in {raw}: {', '.join(missing)}")
    from transferlab.data.torchvision_sets import FashionMNISTFiles

    tr, te = (
        FMNIST_SPEC.build(root, lambda t=t: FashionMNISTFiles(str(root), train=t)) for t in (True, False)
    )
    info = {"source": FMNIST_REAL_SOURCE, "folder": str(raw), "licence": "MIT"}
    train, test = Part(tr, tr.targets.numpy()), Part(te, te.targets.numpy())
    return DatasetSource(FMNIST_SPEC.name, list(FMNIST_CLASSES), train, test, None, "cifar32", info)
