"""The real dataset loaders (torchvision-backed and image-file) against tiny fixture trees, and their errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from fixtures_data import (
    EUROSAT_FIXTURE,
    Expected,
    make_cifar10,
    make_cifar100,
    make_cub_native,
    make_eurosat,
    make_fashion_mnist,
    make_fgvc_aircraft,
    make_image_folder,
    make_image_lists,
    make_stanford_cars,
    make_stl10,
    patch_md5,
    rgb,
    write_jpeg,
)
from torchvision.datasets import CIFAR10, CIFAR100
from transferlab.data import DATASETS, DatasetNotFoundError, load
from transferlab.data import folders as folders_mod
from transferlab.data import real as real_mod
from transferlab.data.real import EUROSAT_SPLIT_SEED, per_class_split
from transferlab.data.torchvision_sets import STL10Labelled


def _cifar10(root: Path, mp: pytest.MonkeyPatch) -> Expected:
    exp = make_cifar10(root)
    patch_md5(mp, CIFAR10, root / "cifar10" / CIFAR10.base_folder)
    return exp


def _cifar100(root: Path, mp: pytest.MonkeyPatch) -> Expected:
    exp = make_cifar100(root)
    patch_md5(mp, CIFAR100, root / "cifar100" / CIFAR100.base_folder)
    return exp


def _stl10(root: Path, mp: pytest.MonkeyPatch) -> Expected:
    exp = make_stl10(root)
    patch_md5(mp, STL10Labelled, root / "stl10" / "stl10_binary")
    return exp


def _eurosat(root: Path, mp: pytest.MonkeyPatch) -> Expected:
    exp = make_eurosat(root)
    tr, te = per_class_split(np.asarray(exp.train), 0.2, EUROSAT_SPLIT_SEED)
    labels = np.asarray(exp.train)
    exp.train, exp.test = labels[tr].tolist(), labels[te].tolist()
    return exp


# name → (fixture maker, a fragment of the expected layout, a fragment of the source), for every real dataset.
CASES = {
    "cifar10": (
        _cifar10,
        "<data_root>/cifar10/cifar-10-batches-py/data_batch_1",
        "cs.toronto.edu/~kriz/cifar",
    ),
    "cifar100": (_cifar100, "<data_root>/cifar100/cifar-100-python/train", "cifar-100-python.tar.gz"),
    "fgvc_aircraft": (
        lambda r, mp: make_fgvc_aircraft(r),
        "<data_root>/fgvc_aircraft/fgvc-aircraft-2013b/data/images_variant_trainval.txt",
        "robots.ox.ac.uk/~vgg/data/fgvc-aircraft",
    ),
    "stanford_cars": (
        lambda r, mp: make_stanford_cars(r),
        "<data_root>/stanford_cars/devkit/cars_meta.mat",
        "pytorch/vision/issues/7545",
    ),
    "eurosat": (_eurosat, "<data_root>/eurosat/2750/<class>/", "phelber/eurosat"),
    "stl10": (_stl10, "<data_root>/stl10/stl10_binary/train_X.bin", "cs.stanford.edu/~acoates/stl10"),
    "fashion_mnist": (
        lambda r, mp: make_fashion_mnist(r),
        "<data_root>/FashionMNIST/raw/train-images-idx3-ubyte",
        "zalandoresearch/fashion-mnist",
    ),
    "cub200": (
        lambda r, mp: make_cub_native(r / "cub200"),
        "<data_root>/cub200/CUB_200_2011/images.txt",
        "data.caltech.edu/records/65de6-vp158",
    ),
    "mit_indoor67": (
        lambda r, mp: make_image_folder(r / "mit_indoor67", with_val=False),
        "<data_root>/mit_indoor67/train/<class>/",
        "web.mit.edu/torralba/www/indoor.html",
    ),
    "stanford40": (
        lambda r, mp: make_image_folder(r / "stanford40"),
        "<data_root>/stanford40/image_list/train_100.txt",
        "vision.stanford.edu/Datasets/40actions.html",
    ),
    "stanford_dogs": (
        lambda r, mp: make_image_lists(r / "stanford_dogs", style="tllib"),
        "<data_root>/stanford_dogs/test/<class>/",
        "vision.stanford.edu/aditya86/ImageNetDogs",
    ),
    "coco70": (
        lambda r, mp: make_image_lists(r / "coco70", style="coco"),
        "<data_root>/coco70/train.txt",
        "thuml/CoTuning",
    ),
    "dmlab": (lambda r, mp: make_image_folder(r / "dmlab"), "<data_root>/dmlab/val/<class>/", "TFDS `dmlab`"),
    "cifar10_jpeg": (
        lambda r, mp: make_image_folder(r / "cifar10_jpeg", size=(32, 32), with_val=False),
        "<data_root>/cifar10_jpeg/train/<class>/",
        "CIFAR-10",
    ),
}
PRESETS = {"cifar10": "cifar32", "cifar100": "cifar32", "fashion_mnist": "cifar32", "cifar10_jpeg": "cifar32"}


def _no_decoding(*args, **kwargs):
    raise AssertionError("a builder opened an image: builders must only index files")


def check(src, exp: Expected, name: str) -> None:
    assert src.name == name
    assert src.classes == exp.classes
    assert src.preset == PRESETS.get(name, "imagenet224")
    assert src.train.targets.tolist() == exp.train
    assert src.test.targets.tolist() == exp.test
    assert (src.val.targets.tolist() if src.val is not None else None) == exp.val
    for part in (
        src.train,
        src.test,
    ):  # the first and the last image decode, at the size written, with their label
        for i in (0, len(part) - 1):
            img, y = part.dataset[i]
            assert img.size == exp.size
            assert y == part.targets[i]


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_loads(name, tmp_path, monkeypatch):
    exp = CASES[name][0](tmp_path, monkeypatch)
    with monkeypatch.context() as m:
        m.setattr(PIL.Image, "open", _no_decoding)
        src = load(name, tmp_path)
    check(src, exp, name)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("empty_folder", [False, True], ids=["missing", "empty"])
def test_missing_data_names_layout_and_source(name, empty_folder, tmp_path):
    if empty_folder:  # the dataset's folder exists (as do its first-level folders), but holds nothing useful
        for d in (
            "cifar10",
            "cifar100",
            "fgvc_aircraft",
            "stanford_cars",
            "eurosat",
            "stl10",
            "FashionMNIST",
            name,
        ):
            (tmp_path / d).mkdir(exist_ok=True)
    _, layout, source = CASES[name]
    with pytest.raises(DatasetNotFoundError) as info:
        load(name, tmp_path)
    msg = str(info.value)
    assert "Expected layout" in msg and layout in msg and source in msg, msg


def test_every_real_dataset_is_covered():
    modules = {real_mod.__name__, folders_mod.__name__}
    registered = {n for n in DATASETS.names() if DATASETS.get(n).__module__ in modules}
    assert registered == set(CASES)


# ----------------------------------------------------------------------------------------- layouts and details
@pytest.mark.parametrize("layout", ["imagefolder", "coco", "tllib", "native"])
def test_cub200_accepts_every_layout(layout, tmp_path):
    folder = tmp_path / "cub200"
    if layout == "imagefolder":
        exp = make_image_folder(folder)
    elif layout == "native":
        exp = make_cub_native(folder)
    else:
        exp = make_image_lists(folder, style=layout)
    src = load("cub200", tmp_path)
    check(src, exp, "cub200")
    if layout == "tllib":
        assert set(src.info["sampling_rate_lists"]) == {100, 50}


def test_tllib_class_names_come_from_folders_without_classes_txt(tmp_path):
    make_image_lists(tmp_path / "coco70", style="coco")
    (tmp_path / "coco70" / "classes.txt").unlink()
    assert load("coco70", tmp_path).classes == ["zebra", "apple pie", "car"]  # each label's parent folder


def test_imagefolder_labels_consistent_across_parts(tmp_path):
    folder = tmp_path / "dmlab"
    make_image_folder(folder)
    shutil.rmtree(folder / "test" / "bee")  # a class absent from test keeps its label
    src = load("dmlab", tmp_path)
    assert src.classes == ["ant", "bee", "cat"]
    assert src.test.targets.tolist() == [0, 0, 2]
    assert src.val.targets.tolist() == [0, 1, 2]


def test_numeric_class_folders_sort_numerically(tmp_path):
    for c in ("0", "2", "10"):
        write_jpeg(tmp_path / "dmlab" / "train" / c / "a.jpg")
        write_jpeg(tmp_path / "dmlab" / "test" / c / "a.jpg")
    assert load("dmlab", tmp_path).classes == ["0", "2", "10"]


@pytest.mark.parametrize(
    "breakage, detail",
    [
        ("test class not in train", "is not a class folder of train/"),
        ("bad list line", "expected 'relative/path.jpg <label>'"),
        ("label out of range", "only 3 classes"),
        ("list path missing", "is not under"),
    ],
)
def test_malformed_layouts_are_explained(breakage, detail, tmp_path):
    folder = tmp_path / "mit_indoor67"
    if breakage == "test class not in train":
        make_image_folder(folder)
        write_jpeg(folder / "test" / "dog" / "0.jpg")
    else:
        make_image_lists(folder, style="coco")
        line = {"bad list line": "no-label-here", "label out of range": "zebra/img 0.jpg 7"}
        line["list path missing"] = "nowhere/x.jpg 0"
        (folder / "test.txt").write_text(line[breakage] + "\n")
    with pytest.raises(DatasetNotFoundError, match="Expected layout") as info:
        load("mit_indoor67", tmp_path)
    assert detail in str(info.value)


def test_cifar_checksum_mismatch_is_a_layout_error(tmp_path):
    make_cifar10(tmp_path)  # official md5s are kept: the fixture files fail torchvision's integrity check
    with pytest.raises(DatasetNotFoundError, match="corrupt or partial"):
        load("cifar10", tmp_path)


def test_cifar_torchvision_layout_directly_under_root(tmp_path, monkeypatch):
    exp = make_cifar10(tmp_path)
    shutil.move(tmp_path / "cifar10" / CIFAR10.base_folder, tmp_path / CIFAR10.base_folder)
    patch_md5(monkeypatch, CIFAR10, tmp_path / CIFAR10.base_folder)
    check(load("cifar10", tmp_path), exp, "cifar10")


def test_stanford_cars_error_points_to_mirrors_and_nesting(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load("stanford_cars", tmp_path)
    assert "download is disabled upstream" in str(info.value) and "kaggle.com" in str(info.value)
    make_stanford_cars(tmp_path)
    write_jpeg(tmp_path / "stanford_cars" / "cars_train" / "cars_train" / "00001.jpg")  # Kaggle's nesting
    with pytest.raises(DatasetNotFoundError, match="nested one level too deep"):
        load("stanford_cars", tmp_path)


def test_fashion_mnist_reads_gzipped_idx(tmp_path):
    exp = make_fashion_mnist(tmp_path, gz=True)
    src = load("fashion_mnist", tmp_path)
    check(src, exp, "fashion_mnist")
    assert src.train.dataset[1][0].mode == "L"
    assert not (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists()  # nothing unpacked


def test_stl10_pixels_and_no_unlabeled_file_needed(tmp_path, monkeypatch):
    _stl10(tmp_path, monkeypatch)
    src = load("stl10", tmp_path)
    assert not (tmp_path / "stl10" / "stl10_binary" / "unlabeled_X.bin").exists()
    np.testing.assert_array_equal(np.asarray(src.test.dataset[1][0]), rgb((96, 96), 7 * 1 + 1))


def test_eurosat_split_is_fixed_per_class_80_20(tmp_path):
    make_eurosat(tmp_path)
    a, b = load("eurosat", tmp_path), load("eurosat", tmp_path)
    assert (
        a.train.dataset.indices == b.train.dataset.indices
        and a.test.dataset.indices == b.test.dataset.indices
    )
    assert not set(a.train.dataset.indices) & set(a.test.dataset.indices)
    n_test = np.bincount(a.test.targets, minlength=3).tolist()
    assert n_test == [round(0.2 * n) for n in EUROSAT_FIXTURE.values()]
    assert len(a.train) + len(a.test) == sum(EUROSAT_FIXTURE.values())
    assert "seed" in a.info["split"]


# ------------------------------------------------------------------------------- the developers' real JPEG copy
@pytest.fixture(scope="session")
def cifar10_jpeg_root(tmp_path_factory):
    shared = os.environ.get("TRANSFERLAB_SHARED_DATA")
    if not shared:
        pytest.skip("TRANSFERLAB_SHARED_DATA is not set")
    tarball = Path(shared) / "cifar10-jpeg.tar.gz"
    if not tarball.is_file():
        pytest.skip(f"{tarball} not found")
    root = tmp_path_factory.mktemp("shared_data")
    dest = root / "cifar10_jpeg"
    dest.mkdir()
    if shutil.which("tar"):  # GNU tar: a few seconds for the 60,000 files; Python's tarfile takes ~10× longer
        subprocess.run(["tar", "-xzf", str(tarball), "-C", str(dest)], check=True)
    else:
        with tarfile.open(tarball) as tf:
            tf.extractall(dest, filter="data")
    yield root
    shutil.rmtree(root, ignore_errors=True)  # 236 MB on disk: do not leave it in pytest's kept tmp dirs


@pytest.mark.slow  # extracting 60,000 files takes 3 s on an idle disk but 20-40 s on a busy one
def test_cifar10_jpeg_from_shared_tarball(cifar10_jpeg_root):
    src = load("cifar10_jpeg", cifar10_jpeg_root)
    assert len(src.classes) == 10 and "airplane" in src.classes
    assert len(src.train) == 50_000 and len(src.test) == 10_000 and src.val is None
    assert np.bincount(src.train.targets).tolist() == [5000] * 10
    img, y = src.test.dataset[9_999]
    assert img.size == (32, 32) and img.mode == "RGB" and y == src.test.targets[-1]
