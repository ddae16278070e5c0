"""The mini protocol's embedded datasets: real images that need no download on a Debian machine.

- **Fashion-MNIST** (Xiao et al. 2017, MIT licence): 70,000 28×28 grey photographs of clothing in 10 classes. Read
  from Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), from ``<data_root>/FashionMNIST/raw``
  (torchvision's layout), or downloaded by torchvision when online.
- **scikit-learn digits** (UCI optical digits, shipped inside scikit-learn): 1,797 8×8 digits, upsampled to 28×28.

Each source is split once, with a fixed seed, into a **hub pool** (for pre-training the mini hub,
:mod:`transferlab.data.mini_hub_data`) and a **target pool** (for the mini transfer tasks), so no target image is
ever seen in pre-training:
- Fashion-MNIST train (60,000) → target pool of 300 images per class (3,000); the rest (57,000) is the hub pool.
  Target test = the official Fashion-MNIST test set (10,000), which no hub model sees either.
- digits → half of each class to the hub pool; the other half is the target pool, 60 % train / 40 % test.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from transferlab import env
from transferlab.data.base import (
    DATASETS,
    DatasetCorruptError,
    DatasetNotFoundError,
    DatasetSource,
    TensorImages,
)

FMNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FMNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
POOL_SEED = 20201  # fixes the hub/target pool split forever: changing it invalidates every cached hub model
TARGET_PER_CLASS = 300

FMNIST_LAYOUT = """\
  <dir>/train-images-idx3-ubyte[.gz]   <dir>/train-labels-idx1-ubyte[.gz]
  <dir>/t10k-images-idx3-ubyte[.gz]    <dir>/t10k-labels-idx1-ubyte[.gz]
with <dir> one of: $TRANSFERLAB_FASHION_MNIST, <data_root>/FashionMNIST/raw, /usr/share/datasets/fashion-mnist"""
FMNIST_SOURCE = (
    "Debian/Ubuntu: `apt-get install dataset-fashion-mnist` (what `make demo` does as root); otherwise it is "
    "downloaded by torchvision when online; or the four files from https://github.com/zalandoresearch/fashion-mnist"
)


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (LeCun's MNIST format), gzipped or not: big-endian dims after a 4-byte magic. A file that
    cannot be parsed is a DatasetCorruptError naming it (delete it and get it again)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as err:  # a truncated or damaged .gz
        raise _corrupt(path, f"cannot be read ({type(err).__name__}: {err})") from err
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise _corrupt(path, "is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=min(4 + 4 * ndim, len(data)))
    if arr.size != int(np.prod(dims)):
        raise _corrupt(
            path, f"holds {arr.size} bytes of data where its header says {int(np.prod(dims))} (truncated?)"
        )
    return arr.reshape(dims)


def fmnist_files(raw: Path) -> dict[str, Path]:
    """The IDX files found in ``raw`` (unpacked preferred over ``.gz``), by ``FMNIST_FILES`` key."""
    found = {}
    for key, stem in FMNIST_FILES.items():
        hits = [raw / n for n in (stem, f"{stem}.gz") if (raw / n).is_file()]
        if hits:
            found[key] = hits[0]
    return found


def _corrupt(path: Path, why: str) -> DatasetCorruptError:
    return DatasetCorruptError(
        f"Fashion-MNIST file {path} {why}: delete it and get the four files again (Debian/Ubuntu: `apt-get install "
        "--reinstall dataset-fashion-mnist`; or https://github.com/zalandoresearch/fashion-mnist)"
    )


def _find_fmnist_dir(root: Path) -> Path | None:
    chosen = env.folder("TRANSFERLAB_FASHION_MNIST")
    if chosen is not None:  # set: it must hold the files; never fall back to another copy
        missing = [f for f in FMNIST_FILES.values() if not _idx_file(chosen, f)]
        if missing:
            raise DatasetNotFoundError("fashion_mnist", chosen, FMNIST_LAYOUT, FMNIST_SOURCE,
                                       detail=f"$TRANSFERLAB_FASHION_MNIST={chosen} lacks {', '.join(missing)}; "
                                       "fix it or unset it")  # fmt: skip
        return chosen
    for d in (root / "FashionMNIST" / "raw", DEBIAN_FMNIST):
        if all(_idx_file(d, f) for f in FMNIST_FILES.values()):
            return d
    return None


def _idx_file(d: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (d / name).is_file():
            return d / name
    return None


def fashion_mnist_arrays(root: Path) -> dict[str, np.ndarray]:
    """The four Fashion-MNIST arrays (uint8 images [N, 28, 28], labels [N]), found or downloaded as documented."""
    found = _find_fmnist_dir(
        root
    )  # looked up on every call: the cache below is per folder, not per data root
    if found is None:
        try:  # a user's machine with internet: torchvision's own download into the data root
            from torchvision.datasets import FashionMNIST

            FashionMNIST(str(root), train=True, download=True)
            FashionMNIST(str(root), train=False, download=True)
        except Exception as err:  # offline: say what to install instead of a socket error
            raise DatasetNotFoundError(
                "fashion_mnist", root, FMNIST_LAYOUT, FMNIST_SOURCE, detail=str(err)
            ) from None
        found = _find_fmnist_dir(root)
        assert found is not None
    return _arrays(found)


@functools.lru_cache(maxsize=4)
def _arrays(folder: Path) -> dict[str, np.ndarray]:
    return {key: read_idx(_idx_file(folder, stem)) for key, stem in FMNIST_FILES.items()}  # type: ignore[arg-type]


def _stratified_take(labels: np.ndarray, per_class: int | float, rng: np.random.Generator) -> np.ndarray:
    """Per class, the first ``per_class`` (a count, or a fraction if < 1) indices of a random permutation."""
    out = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = per_class if isinstance(per_class, int) else round(per_class * len(idx))
        out.append(idx[:n])
    return np.sort(np.concatenate(out))


def fmnist_pools(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """(hub pool, target pool) indices into Fashion-MNIST train; fixed by ``POOL_SEED``."""
    labels = fashion_mnist_arrays(root)["train_labels"]
    target = _stratified_take(labels, TARGET_PER_CLASS, np.random.default_rng(POOL_SEED))
    hub = np.setdiff1d(np.arange(len(labels)), target)
    return hub, target


def _as_images(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(x, copy=True)).unsqueeze(1)  # [N, 1, 28, 28] uint8


@DATASETS.register("mini_fmnist")
def mini_fmnist(root: Path) -> DatasetSource:
    """Mini target task: 10-way Fashion-MNIST from the 3,000-image target pool; the official test set."""
    a = fashion_mnist_arrays(root)
    _, target = fmnist_pools(root)
    train = TensorImages(_as_images(a["train_images"][target]), a["train_labels"][target])
    test = TensorImages(_as_images(a["test_images"]), a["test_labels"])
    return DatasetSource(
        "mini_fmnist", FMNIST_CLASSES, train.part(), test.part(), preset="mini", info=_fmnist_info()
    )


def _fmnist_info() -> dict:
    return {"source": "Fashion-MNIST (Xiao, Rasul, Vollgraf 2017), MIT licence", "pool_seed": POOL_SEED}


@functools.lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 [1797, 28, 28] (bilinear upsampling of the 8×8 images) and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1)
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    return x.squeeze(1).round().clamp(0, 255).to(torch.uint8).numpy(), d.target.astype(np.int64)


def digits_pools() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hub pool, target train, target test) indices into the digits arrays; fixed by ``POOL_SEED``."""
    _, labels = digits_arrays()
    rng = np.random.default_rng(POOL_SEED)
    hub = _stratified_take(labels, 0.5, rng)
    rest = np.setdiff1d(np.arange(len(labels)), hub)
    test = rest[_stratified_take(labels[rest], 0.4, rng)]
    return hub, np.setdiff1d(rest, test), test


@DATASETS.register("mini_digits")
def mini_digits(root: Path) -> DatasetSource:
    """Mini target task: 10-way digits (a different image source from the Fashion-MNIST hub models)."""
    images, labels = digits_arrays()
    _, train_idx, test_idx = digits_pools()
    train = TensorImages(_as_images(images[train_idx]), labels[train_idx])
    test = TensorImages(_as_images(images[test_idx]), labels[test_idx])
    info = {"source": "scikit-learn load_digits (UCI optical recognition of handwritten digits)"}
    return DatasetSource(
        "mini_digits", [str(i) for i in range(10)], train.part(), test.part(), preset="mini_noflip", info=info
    )
