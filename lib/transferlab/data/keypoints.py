"""Data whose targets are positions in the image (landmarks): augmentation must move the targets with the image.

Coordinates are (x, y) pixels in the pixel-index convention (:mod:`transferlab.tasks.landmark_metrics`): a
horizontal flip of a width-W image maps x ↦ W − 1 − x and swaps every left landmark with its right twin
(``flip_index[k]`` is the landmark that becomes landmark k: an involution, identity on the midline).

Two paths, as for images (:mod:`transferlab.data.pipeline`):

- **in memory** (:class:`TensorLandmarks`, the mini protocol): :func:`augment_landmarks` applies the preset's own
  ``augment_batch`` to the images — the very code and random draws classification uses — and replays the same
  draws from a copy of the generator's state to move the coordinates: shift by (s − dx, s − dy), then flip and
  permute. The replay mirrors ``Preset.augment_batch``'s draw order (dy, dx, then the flip); a test pins the two
  together (a bright pixel under each landmark must stay under it after augmentation).
- **from files** (the face datasets): a :class:`JointTransform` maps (image, target) to (tensor, coordinates);
  :class:`FaceCrop` is HRNet-Facial-Landmark-Detection's train/test crop (``lib/datasets/face300w.py``, ``wflw.py``,
  ``cofw.py`` with ``utils/transforms.py``): a square box around the face enlarged 1.25×, in training scaled by
  U(0.75, 1.25), rotated by U(−30°, 30°) with probability 0.6 and mirrored with probability 0.5, then resized to
  256 × 256 (bilinear) and normalised with ImageNet's mean/std. Random numbers come from torch's global RNG, which
  the pipeline seeds per sample, so a resumed run sees the same crops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from transferlab.data.base import Part, TensorImages
from transferlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preset


def check_flip_index(flip_index, landmarks: int) -> torch.Tensor:
    """``flip_index`` as a long tensor, checked: a permutation of 0..L−1 that is its own inverse."""
    idx = torch.as_tensor(list(flip_index), dtype=torch.long)
    if len(idx) != landmarks or not torch.equal(idx.sort().values, torch.arange(landmarks)):
        raise ValueError(f"flip_index must be a permutation of 0..{landmarks - 1}, got {list(flip_index)}")
    if not torch.equal(idx[idx], torch.arange(landmarks)):
        raise ValueError("flip_index must be an involution (mirroring twice is the identity)")
    return idx


def pairs_to_flip_index(pairs, landmarks: int, base: int = 0) -> list[int]:
    """A flip permutation from left/right pairs (``base`` 1 for 1-based pairs, as HRNet's MATCHED_PARTS)."""
    idx = list(range(landmarks))
    for a, b in pairs:
        idx[a - base], idx[b - base] = b - base, a - base
    check_flip_index(idx, landmarks)
    return idx


class TensorLandmarks(TensorImages):
    """In-memory images uint8 [N, C, H, W] whose targets are landmark coordinates float [N, L, 2].

    ``targets`` (what batches carry as y) are the coordinates; :meth:`part` labels every image with group 0, so the
    splits sample and carve images uniformly (there are no classes to stratify by)."""

    def __init__(self, images: torch.Tensor, points: torch.Tensor, flip_index):
        super().__init__(images, torch.zeros(len(images), dtype=torch.int64))  # checks the images
        points = torch.as_tensor(points, dtype=torch.float32)
        if points.dim() != 3 or points.shape[0] != len(images) or points.shape[2] != 2:
            raise ValueError(
                f"points must be [N, L, 2] for N = {len(images)} images, got {tuple(points.shape)}"
            )
        self.targets = points
        self.flip_index = check_flip_index(flip_index, points.shape[1])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.targets[i]

    def part(self) -> Part:
        return Part(self, np.zeros(len(self), dtype=np.int64))


def augment_landmarks(preset: Preset, images: torch.Tensor, points: torch.Tensor, flip_index: torch.Tensor,
                      generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """``preset.augment_batch`` of uint8 ``images`` [B, C, H, W] and the same shifts and flips of ``points``
    [B, L, 2]; draws from ``generator`` exactly what ``augment_batch`` alone draws."""
    replay = torch.Generator().set_state(generator.get_state())
    x = preset.augment_batch(images, generator)
    b, w = images.shape[0], images.shape[3]
    pts = points.clone()
    if (
        preset.shift
    ):  # augment_batch: out[r, c] = in[r + dy − s, c + dx − s], so content moves by (s − dx, s − dy)
        s = preset.shift
        dy = torch.randint(0, 2 * s + 1, (b,), generator=replay)
        dx = torch.randint(0, 2 * s + 1, (b,), generator=replay)
        pts += torch.stack([s - dx, s - dy], dim=1).to(pts.dtype)[:, None, :]
    if preset.flip:
        flip = torch.rand(b, generator=replay) < 0.5
        mirrored = pts[:, flip_index].clone()
        mirrored[..., 0] = w - 1 - mirrored[..., 0]
        pts = torch.where(flip.view(b, 1, 1), mirrored, pts)
    return x, pts


class JointTransform:
    """A per-sample transform of (image, target) → (tensor, target): the pipeline hands it both (landmarks)."""

    def __call__(self, image, target):  # pragma: no cover - interface
        raise NotImplementedError


def box_from_points(points: np.ndarray) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the square around the landmarks: HRNet ``cofw.py``'s rule, the box spans
    floor(min) … ceil(max) on each axis and the side is the longer span (the 1.25× enlargement is :class:`FaceCrop`'s)."""
    lo, hi = np.floor(points.min(0)), np.ceil(points.max(0))
    centre = (lo + hi) / 2.0
    return float(centre[0]), float(centre[1]), float(max(hi - lo))


@dataclass(frozen=True)
class FaceCrop(JointTransform):
    """(PIL image, {"points" [L, 2], "box" (cx, cy, side)}) → (normalised tensor [3, S, S], points [L, 2] in it)."""

    train: bool
    flip_index: tuple[int, ...]
    size: int = 256  # HRNet-Facial IMAGE_SIZE
    enlarge: float = 1.25  # HRNet-Facial: scale *= 1.25 at train and test
    scale_factor: float = 0.25  # SCALE_FACTOR: side × U(1 − f, 1 + f) in training
    rot_factor: float = 30.0  # ROT_FACTOR: U(−30°, 30°) ...
    rot_prob: float = 0.6  # ... with probability 0.6, else 0
    flip_prob: float = 0.5  # FLIP: true, with probability 0.5

    def __call__(self, image: Image.Image, target: dict) -> tuple[torch.Tensor, torch.Tensor]:
        pts = np.array(target["points"], dtype=np.float64)
        cx, cy, side = (float(v) for v in target["box"])
        side *= self.enlarge
        angle = 0.0
        if self.train:
            u = torch.rand(4).tolist()  # one draw per sample: scale, rotate?, angle, flip?
            side *= 1 + self.scale_factor * (2 * u[0] - 1)
            angle = self.rot_factor * (2 * u[2] - 1) if u[1] < self.rot_prob else 0.0
            if u[3] < self.flip_prob:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                pts = pts[list(self.flip_index)]
                pts[:, 0] = image.width - 1 - pts[:, 0]
                cx = image.width - 1 - cx
        # Output pixel q (index convention) shows input point p = c + M (q − (S−1)/2), M = (side/S)·R(angle).
        k = side / self.size
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        m = np.array([[k * cos, -k * sin], [k * sin, k * cos]])
        half = (self.size - 1) / 2.0
        # PIL's AFFINE maps output to input in continuous coordinates (pixel centres at +0.5): p_c = M q_c + t
        t = np.array([cx, cy]) + 0.5 - m @ np.array([self.size / 2.0, self.size / 2.0])
        crop = image.convert("RGB").transform((self.size, self.size), Image.Transform.AFFINE,
                                              (m[0, 0], m[0, 1], t[0], m[1, 0], m[1, 1], t[1]),
                                              resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))  # fmt: skip
        q = (pts - np.array([cx, cy])) @ np.linalg.inv(m).T + half
        x = torch.from_numpy(np.asarray(crop, dtype=np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        return (x - mean) / std, torch.from_numpy(q.astype(np.float32))


def face_preset(name: str, flip_index) -> Preset:
    """The file-based preset of a face dataset: :class:`FaceCrop` for training and test (ImageNet statistics)."""
    flip = tuple(int(i) for i in flip_index)
    return Preset(name, IMAGENET_MEAN, IMAGENET_STD, train=FaceCrop(True, flip), test=FaceCrop(False, flip))


__all__ = ["FaceCrop", "JointTransform", "TensorLandmarks", "augment_landmarks", "box_from_points",
           "check_flip_index", "face_preset", "pairs_to_flip_index"]  # fmt: skip
