"""The mini protocol's landmark task: a **proxy** — geometric keypoints of Fashion-MNIST silhouettes. Not faces.

No human-labelled landmark data ships with any package this suite can install, so the mini landmark tables run on
keypoints computed from the images themselves. Their numbers say nothing about facial landmarks and are not
comparable to any published NME; they exercise the same task (head, loss, NME, model selection), the same data path
(coordinates moved with every shift and flip) and the same methods on the mini hub.

For a 28×28 image, the silhouette is the mask of pixels ≥ ``THRESHOLD``; its 12 keypoints (x, y in pixels):

- 0–3: the **extreme points** — left-most and right-most column (at the mean row of the mask pixels in it),
  top-most and bottom-most row (at the mean column);
- 4–11: **contour points** on 8 rays from the mask's centroid at 0°, 45°, …, 315° (image axes, y down): the
  farthest mask pixel along the ray (marched in 0.25-pixel steps, nearest-pixel lookup).

A horizontal flip maps left ↔ right and the ray at θ to the ray at 180° − θ (``FLIP_INDEX``), so the keypoints of a
mirrored image are the mirrored, permuted keypoints: the augmentation stays consistent with the definition. NME is
normalised by the diagonal of the keypoints' bounding box, which the extreme points make the silhouette's own box.

Why a proxy where the hub helps: the contour points depend on the whole garment's shape, and the training sets are
small (the target pool's 2,000 images at the table's sampling rate), so features pre-trained on the hub pool's
garments should beat random initialisation; the README reports the measured fine-tuning vs scratch gap.

Images: the Fashion-MNIST **target pool** (2,000 training images never seen by the mini hub) for training, and a
fixed class-stratified 2,000 of the official test set (200 per class, seed ``POOL_SEED``) for test.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from transferlab.data.base import DatasetSource, register_dataset
from transferlab.data.keypoints import TensorLandmarks
from transferlab.data.mini import POOL_SEED, _as_images, _stratified_take, fashion_mnist_arrays, fmnist_pools

THRESHOLD = 32  # of 255: the silhouette's mask (Fashion-MNIST backgrounds are 0)
RAY_ANGLES = tuple(range(0, 360, 45))
NAMES = ["left", "right", "top", "bottom"] + [f"ray_{a}" for a in RAY_ANGLES]
# left ↔ right, top and bottom fixed; ray k (angle 45k°) ↔ ray (4 − k) mod 8 (angle 180° − θ)
FLIP_INDEX = [1, 0, 2, 3] + [4 + (4 - k) % 8 for k in range(8)]
TEST_PER_CLASS = 200
STEP, REACH = 0.25, 40.0  # ray marching: step and maximum distance (pixels)
TASK_PARAMS = {"input_size": [28, 28], "normaliser": "bbox_diagonal", "sigma": 1.0, "deconv_layers": 2,
               "deconv_channels": 32}  # fmt: skip


def silhouette_keypoints(images: np.ndarray, threshold: int = THRESHOLD) -> np.ndarray:
    """Keypoints [N, 12, 2] (x, y) of uint8 images [N, H, W] (module doc). An image with an empty mask uses every
    non-zero pixel; one with none at all is refused."""
    n, h, w = images.shape
    mask = images >= threshold
    empty = ~mask.any((1, 2))
    mask[empty] = images[empty] > 0
    if not mask.any((1, 2)).all():
        raise ValueError("an image without any non-zero pixel has no silhouette")
    rows, cols = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    col_any, row_any = mask.any(1), mask.any(2)  # [N, W], [N, H]
    left, right = col_any.argmax(1), w - 1 - col_any[:, ::-1].argmax(1)
    top, bottom = row_any.argmax(1), h - 1 - row_any[:, ::-1].argmax(1)
    i = np.arange(n)

    def mean_row(col):  # mean row of the mask pixels in column col [N]
        m = mask[i, :, col]
        return (m * rows).sum(1) / m.sum(1)

    def mean_col(row):
        m = mask[i, row, :]
        return (m * cols).sum(1) / m.sum(1)

    extremes = np.stack([
        np.stack([left, mean_row(left)], 1), np.stack([right, mean_row(right)], 1),
        np.stack([mean_col(top), top], 1), np.stack([mean_col(bottom), bottom], 1),
    ], 1).astype(np.float64)  # fmt: skip
    count = mask.sum((1, 2))
    centre = np.stack([(mask * cols).sum((1, 2)) / count, (mask * rows[:, None]).sum((1, 2)) / count], 1)
    theta = np.deg2rad(np.array(RAY_ANGLES, dtype=np.float64))
    direction = np.stack([np.cos(theta), np.sin(theta)], 1)  # [8, 2]
    t = np.arange(0.0, REACH + STEP, STEP)  # [T]
    pos = centre[:, None, None, :] + t[None, None, :, None] * direction[None, :, None, :]  # [N, 8, T, 2]
    px, py = np.rint(pos[..., 0]).astype(int), np.rint(pos[..., 1]).astype(int)
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    on = inside & mask[i[:, None, None], py.clip(0, h - 1), px.clip(0, w - 1)]
    last = np.where(on.any(2), (on.shape[2] - 1) - on[..., ::-1].argmax(2), 0)  # farthest step on the mask
    rays = centre[:, None, :] + t[last][..., None] * direction[None]  # [N, 8, 2]
    return np.concatenate([extremes, rays], 1).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _keypoint_sets(root: Path) -> tuple[np.ndarray, ...]:
    a = fashion_mnist_arrays(root)
    _, target = fmnist_pools(root)
    test = _stratified_take(a["test_labels"], TEST_PER_CLASS, np.random.default_rng(POOL_SEED + 3))
    x_tr, x_te = a["train_images"][target], a["test_images"][test]
    return x_tr, silhouette_keypoints(x_tr), x_te, silhouette_keypoints(x_te)


def _build(root: Path, name: str, head: str) -> DatasetSource:
    x_tr, k_tr, x_te, k_te = _keypoint_sets(Path(root))
    train = TensorLandmarks(_as_images(x_tr), torch.from_numpy(k_tr), FLIP_INDEX)
    test = TensorLandmarks(_as_images(x_te), torch.from_numpy(k_te), FLIP_INDEX)
    info = {"source": "Fashion-MNIST (Xiao, Rasul, Vollgraf 2017), MIT licence; keypoints computed from the "
            "images (transferlab.data.mini_keypoints): a proxy, not faces", "pool_seed": POOL_SEED}  # fmt: skip
    return DatasetSource(name, list(NAMES), train.part(), test.part(), preset="mini", info=info,
                         task="landmarks", task_params={**TASK_PARAMS, "head": head})  # fmt: skip


@register_dataset("mini_fmnist_keypoints", task="landmarks")
def mini_fmnist_keypoints(root: Path) -> DatasetSource:
    """The mini landmark proxy with the heat-map head (the default)."""
    return _build(root, "mini_fmnist_keypoints", "heatmap")


@register_dataset("mini_fmnist_keypoints_regression", task="landmarks")
def mini_fmnist_keypoints_regression(root: Path) -> DatasetSource:
    """The same proxy with the direct coordinate-regression head (the task's option)."""
    return _build(root, "mini_fmnist_keypoints_regression", "regression")


__all__ = ["FLIP_INDEX", "NAMES", "silhouette_keypoints"]
