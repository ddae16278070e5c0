"""The mini hub's pre-training data: hub-pool images only, with label spaces that are not a target's.

Every image here comes from a hub pool of :mod:`transferlab.data.mini` (Fashion-MNIST train minus the target pool;
the half of scikit-learn's digits that is not the ``mini_digits`` target): no target image — train, validation or
test — is ever used to pre-train or to evaluate a hub model. Each dataset's test part is a held-out 5 % of its own
pool, stratified by its own labels.

| dataset                  | images                                   | labels                                      |
|--------------------------|------------------------------------------|---------------------------------------------|
| ``mini_hub_clusters``    | Fashion-MNIST + digits hub pools         | 64 k-means clusters of the pixels (a broad, label-free pretext, as DeepCluster's pseudo-labels) |
| ``mini_hub_fmnist_coarse`` | Fashion-MNIST hub pool                 | 4 coarse groups: tops, trousers, footwear, bags |
| ``mini_hub_fmnist_rot``  | 12,000 Fashion-MNIST hub-pool images      | their rotation, 0/90/180/270° (RotNet)       |
| ``mini_hub_digits_parity`` | digits hub pool                        | even / odd                                   |
| ``mini_hub_jigsaw``      | Fashion-MNIST + digits hub pools          | which of the 24 orders its four quadrants were shuffled into (jigsaw) |
| ``mini_hub_digits``      | digits hub pool                          | 10 digits — used by the tests only, never by the mini hub (it is ``mini_digits``' label set) |

Coarse groups and parity are coarsenings of the targets' label sets (as ImageNet's broad classes relate to a
fine-grained target's); the clusters, rotations and jigsaw orders use no label at all.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np
import torch

from transferlab.data.base import DATASETS, DatasetSource, TensorImages
from transferlab.data.mini import (
    POOL_SEED,
    _as_images,
    _fmnist_info,
    _stratified_take,
    digits_arrays,
    digits_pools,
    fashion_mnist_arrays,
    fmnist_pools,
)

CLUSTERS = 64  # the ancestor's pseudo-classes (ours: enough to split every target class several ways)
ROTATION_IMAGES = 12_000  # hub-pool images used for rotation pre-training (×4 rotations)
JIGSAW_IMAGES = 24_000  # hub-pool images for the jigsaw pretext (one shuffled order each)
COARSE = {
    0: 0,
    2: 0,
    3: 0,
    4: 0,
    6: 0,
    1: 1,
    5: 2,
    7: 2,
    9: 2,
    8: 3,
}  # fine class → tops, trousers, footwear, bags
COARSE_CLASSES = ["top", "trouser", "footwear", "bag"]
TEST_SHARE = 0.05
DIGITS_INFO = {"source": "scikit-learn load_digits (UCI optical recognition of handwritten digits)"}


def _source(name: str, images: torch.Tensor, labels: np.ndarray, classes: list[str], preset: str,
            info: dict, salt: int) -> DatasetSource:  # fmt: skip
    """Split a pool into train and a stratified 5 % test part (fixed by ``POOL_SEED + salt``)."""
    test = _stratified_take(labels, TEST_SHARE, np.random.default_rng(POOL_SEED + salt))
    train = np.setdiff1d(np.arange(len(labels)), test)
    tr = TensorImages(images[torch.from_numpy(train)], labels[train])
    te = TensorImages(images[torch.from_numpy(test)], labels[test])
    return DatasetSource(name, classes, tr.part(), te.part(), preset=preset, info=info)


def _hub_images(root: Path) -> tuple[torch.Tensor, np.ndarray]:
    """Every hub-pool image of both sources [N, 1, 28, 28] uint8, and its domain (0 Fashion-MNIST, 1 digits)."""
    a = fashion_mnist_arrays(root)
    hub, _ = fmnist_pools(root)
    images, _ = digits_arrays()
    dhub, _, _ = digits_pools()
    x = torch.cat([_as_images(a["train_images"][hub]), _as_images(images[dhub])])
    return x, np.concatenate([np.zeros(len(hub), np.int64), np.ones(len(dhub), np.int64)])


@functools.lru_cache(maxsize=2)
def cluster_labels(root: Path) -> np.ndarray:
    """k-means (k = ``CLUSTERS``) of the hub images' pixels after a 32-component PCA; deterministic."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    x, _ = _hub_images(root)
    flat = x.flatten(1).float().div_(255).numpy()
    reduced = PCA(32, svd_solver="randomized", random_state=POOL_SEED).fit_transform(flat)
    km = KMeans(CLUSTERS, n_init=1, random_state=POOL_SEED).fit(reduced)
    return km.labels_.astype(np.int64)


@DATASETS.register("mini_hub_clusters")
def mini_hub_clusters(root: Path) -> DatasetSource:
    """The ancestor's pretext: which of 64 pixel clusters a hub image falls in (no class label is used)."""
    x, _ = _hub_images(root)
    classes = [f"cluster {i}" for i in range(CLUSTERS)]
    info = {**_fmnist_info(), "also": DIGITS_INFO["source"], "pretext": f"k-means, k = {CLUSTERS}"}
    return _source("mini_hub_clusters", x, cluster_labels(root), classes, "mini_noflip", info, 11)


@DATASETS.register("mini_hub_fmnist_coarse")
def mini_hub_fmnist_coarse(root: Path) -> DatasetSource:
    """4 coarse clothing groups of the Fashion-MNIST hub pool."""
    a = fashion_mnist_arrays(root)
    hub, _ = fmnist_pools(root)
    labels = np.array([COARSE[int(c)] for c in a["train_labels"][hub]], dtype=np.int64)
    return _source("mini_hub_fmnist_coarse", _as_images(a["train_images"][hub]), labels, COARSE_CLASSES, "mini",
                   _fmnist_info(), 12)  # fmt: skip


def rotations(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image at 0°, 90°, 180°, 270° with the rotation index as label (RotNet, Gidaris et al. ICLR 2018)."""
    rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
    return rotated, torch.arange(4).repeat_interleave(len(images))


@DATASETS.register("mini_hub_fmnist_rot")
def mini_hub_fmnist_rot(root: Path) -> DatasetSource:
    """Self-supervised: the rotation of unlabelled Fashion-MNIST hub-pool images. No flips (a flipped 90° image
    looks like a 270° one)."""
    a = fashion_mnist_arrays(root)
    hub, _ = fmnist_pools(root)
    pick = np.sort(np.random.default_rng(POOL_SEED + 1).choice(hub, ROTATION_IMAGES, replace=False))
    x, y = rotations(_as_images(a["train_images"][pick]))
    return _source("mini_hub_fmnist_rot", x, y.numpy(), ["0°", "90°", "180°", "270°"], "mini_noflip",
                   _fmnist_info(), 13)  # fmt: skip


@DATASETS.register("mini_hub_digits_parity")
def mini_hub_digits_parity(root: Path) -> DatasetSource:
    """Even or odd, on the digits hub pool (another image source)."""
    images, labels = digits_arrays()
    hub, _, _ = digits_pools()
    return _source("mini_hub_digits_parity", _as_images(images[hub]), labels[hub] % 2, ["even", "odd"],
                   "mini_noflip", DIGITS_INFO, 14)  # fmt: skip


PERMUTATIONS = list(itertools.permutations(range(4)))  # quadrant orders: index = the jigsaw label


def jigsaw(images: torch.Tensor, orders: np.ndarray) -> torch.Tensor:
    """Each image's four 14×14 quadrants (TL, TR, BL, BR) put in the order ``PERMUTATIONS[orders[i]]``."""
    quads = [images[..., :14, :14], images[..., :14, 14:], images[..., 14:, :14], images[..., 14:, 14:]]
    out = torch.empty_like(images)
    slots = [(slice(None, 14), slice(None, 14)), (slice(None, 14), slice(14, None)),
             (slice(14, None), slice(None, 14)), (slice(14, None), slice(14, None))]  # fmt: skip
    for label in np.unique(orders):
        sel = torch.from_numpy(np.flatnonzero(orders == label))
        for slot, quad in zip(slots, PERMUTATIONS[label]):
            out[sel, :, slot[0], slot[1]] = quads[quad][sel]
    return out


@DATASETS.register("mini_hub_jigsaw")
def mini_hub_jigsaw(root: Path) -> DatasetSource:
    """Self-supervised (Noroozi & Favaro 2016, at 2×2): which of 24 orders a hub image's quadrants were shuffled
    into. No flips (a flip changes the order)."""
    x, _ = _hub_images(root)
    rng = np.random.default_rng(POOL_SEED + 4)
    pick = np.sort(rng.choice(len(x), JIGSAW_IMAGES, replace=False))
    orders = rng.integers(0, len(PERMUTATIONS), size=len(pick))
    images = jigsaw(x[torch.from_numpy(pick)], orders)
    classes = ["".join(map(str, p)) for p in PERMUTATIONS]
    info = {**_fmnist_info(), "also": DIGITS_INFO["source"]}
    return _source("mini_hub_jigsaw", images, orders.astype(np.int64), classes, "mini_noflip", info, 15)


@DATASETS.register("mini_hub_digits")
def mini_hub_digits(root: Path) -> DatasetSource:
    """The digits hub pool with its 10 digit labels: for tests only (the mini hub never uses ``mini_digits``' label
    set)."""
    images, labels = digits_arrays()
    hub, _, _ = digits_pools()
    return _source("mini_hub_digits", _as_images(images[hub]), labels[hub], [str(i) for i in range(10)],
                   "mini_noflip", DIGITS_INFO, 2)  # fmt: skip


__all__ = ["CLUSTERS", "COARSE", "COARSE_CLASSES", "PERMUTATIONS", "cluster_labels", "jigsaw", "rotations"]
