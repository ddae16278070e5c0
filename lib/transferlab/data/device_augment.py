"""Augmentation on the training device: a preset's random crops, flips, normalisation and ten crops, applied to uint8
batches of the decoded-image cache, with the input values of the PIL path.

A :class:`Plan` is read from the preset's own torchvision pipeline (no second description to drift): the transforms
up to its first ``Resize`` are the cached stage (:mod:`transferlab.data.cache`); what follows must be among
``RandomResizedCrop`` (bilinear), ``RandomCrop`` (constant zero padding), ``RandomHorizontalFlip``, ``CenterCrop``,
``TenCrop``, ``ToTensor``, ``Normalize`` (and, after ``TenCrop``, the preset's per-crop tensor conversion), or the
preset is refused with an error that names the transform and the PIL pipeline to use instead.

Randomness: sample j of training step s still draws from ``torch.Generator`` seeded with ``seed_for(seed, AUGMENT, s,
j)``, the same generator state the PIL path gets from ``torch.manual_seed`` of that seed, and the draws are made in
the pipeline's order with the same calls. So every crop box and flip equals the PIL path's, and a batch stays a pure
function of (seed, step). The draws run where the batch is assembled (DataLoader workers); only pixels go to the
device.

Where we match torchvision's ``RandomResizedCrop`` (``get_params``) and where not: the same up to 10 tries of an area
fraction ~ U(scale) and a log-aspect ~ U(log ratio) drawn as float32 and converted to Python floats, the same
rounding (``int(round(sqrt(area·ratio)))``), the same acceptance test (0 < w ≤ W, 0 < h ≤ H), the same position draws
(``randint(0, H − h + 1)``, then the column), and the same fallback (the central crop, clamped to the ratio range);
``tests/test_fast_input.py`` compares boxes with torchvision's own for thousands of seeds, fallbacks included. Where
not: the resampling is Pillow's (:mod:`transferlab.data.resample`), as on the PIL path, not torchvision's tensor
``resized_crop`` (whose antialiased float bilinear differs from Pillow by up to a few grey levels); batches are
drawn per sample, not vectorised, because vectorised draws could not reproduce the per-sample seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision import transforms as T

from transferlab.data.resample import crop_tables, resize_crops


class DevicePathError(ValueError):
    """A preset whose pipeline the cached / device paths cannot reproduce exactly."""


def _flat(transform) -> list:
    if hasattr(transform, "resolved"):  # a preset's lazily built transform (data/transforms.py)
        transform = transform.resolved()
    if isinstance(transform, T.Compose):
        return [t for inner in transform.transforms for t in _flat(inner)]
    return [transform]


def _pair(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[-1]))


@dataclass(frozen=True)
class Plan:
    """What a preset does after its cached stage. ``stage``: the PIL transforms up to the resize to ``size``;
    ``train`` / ``test`` / ``ten_crop``: the random and fixed operations after it, in order; ``tail_*``: the same
    transforms as torchvision callables (the ``cache`` pipeline runs them on PIL images of the cached rows)."""

    preset: str
    size: tuple[int, int]
    stage: T.Compose
    train: tuple[tuple, ...]
    test: tuple[tuple, ...]
    ten_crop: tuple[tuple, ...] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    tail_train: T.Compose
    tail_test: T.Compose
    tail_ten_crop: T.Compose | None

    # ----------------------------------------------------------------------------------------- random draws
    def draw(self, seed: int) -> tuple[tuple[int, int, int, int], bool]:
        """The crop box (top, left, height, width) in the cached image (or its padding) and the flip of one sample,
        drawn as the PIL pipeline draws them under ``torch.manual_seed(seed)``."""
        gen = torch.Generator().manual_seed(seed)
        (h, w), box, flip = self.size, (0, 0, *self.size), False
        for op in self.train:
            if op[0] == "resized_crop":
                box = resized_crop_box(h, w, op[2], op[3], gen)
            elif op[0] == "pad_crop":
                (th, tw), pad = op[1], op[2]
                box = (_randint(h + 2 * pad - th + 1, gen), _randint(w + 2 * pad - tw + 1, gen), th, tw)
            elif op[0] == "flip":
                flip = bool(torch.rand(1, generator=gen) < op[1])
        return box, flip

    def params(self, seeds) -> dict:
        """The host-side work of a training batch (in the DataLoader workers): ``boxes`` [B, 4], ``flips`` [B] and,
        for a resized crop, Pillow's resampling tables (:func:`transferlab.data.resample.crop_tables`)."""
        drawn = [self.draw(s) for s in seeds]
        out = {"boxes": torch.tensor([b for b, _ in drawn], dtype=torch.int64),
               "flips": torch.tensor([f for _, f in drawn])}  # fmt: skip
        for op in self.train:
            if op[0] == "resized_crop":
                out["crops"] = crop_tables(out["boxes"].numpy(), op[1])
        return out

    # ---------------------------------------------------------------------------------------- on the device
    def _constants(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """255, mean and std on ``device``, made once: a tensor made from Python numbers on a GPU is a synchronous
        copy, which would stall the device every batch."""
        cache = self.__dict__.setdefault("_on_device", {})
        if str(device) not in cache:
            cache[str(device)] = (torch.tensor(255.0, device=device),
                                  torch.tensor(self.mean, device=device).view(-1, 1, 1),
                                  torch.tensor(self.std, device=device).view(-1, 1, 1))  # fmt: skip
        return cache[str(device)]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 → float as ToTensor + Normalize compute it: x / 255, − mean, / std (tensor divisors, so CUDA
        divides as the CPU does instead of multiplying by a rounded reciprocal)."""
        scale, mean, std = self._constants(x.device)
        return x.float().div(scale).sub(mean).div(std)

    def augment(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        """uint8 [B, C, H, W] cached images (on the device) and :meth:`params` → normalised float training batch."""
        dev = x.device
        for op in self.train:
            if op[0] == "resized_crop":
                x = resize_crops(x, params["crops"], op[1])
            elif op[0] == "pad_crop":
                (th, tw), pad = op[1], op[2]
                boxes = params["boxes"].to(dev, non_blocking=True)
                x = _crops(F.pad(x, (pad, pad, pad, pad)), boxes[:, 0], boxes[:, 1], th, tw)
            elif op[0] == "flip":
                f = params["flips"].to(dev, non_blocking=True).view(-1, 1, 1, 1)
                x = torch.where(f, x.flip(3), x)
        return self.normalize(x)

    def evaluate(self, x: torch.Tensor, ten_crop: bool = False) -> torch.Tensor:
        """uint8 [B, C, H, W] → the normalised test batch [B, C, h, w], or ten crops [B, 10, C, h, w]."""
        ops = self.ten_crop if ten_crop else self.test
        if ops is None:
            raise DevicePathError(f"preset {self.preset!r} has no ten-crop transform")
        for op in ops:
            if op[0] == "center":
                x = _center(x, *op[1])
            elif op[0] == "ten":  # torchvision's ten_crop: five_crop of the image, then of its mirror image
                crops = _five(x, *op[1]) + _five(x.flip(3), *op[1])
                return torch.stack([self.normalize(c) for c in crops], dim=1)
        return self.normalize(x)


def _randint(n: int, gen: torch.Generator) -> int:
    return int(torch.randint(0, n, size=(1,), generator=gen).item())


def resized_crop_box(
    height: int, width: int, scale, ratio, gen: torch.Generator
) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box for an image of ``height`` × ``width`` (see the module doc for what matches)."""
    area = height * width
    lo, hi = torch.log(torch.tensor(ratio))  # float32, as torchvision computes them
    for _ in range(10):
        frac = torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect = torch.exp(torch.empty(1).uniform_(lo, hi, generator=gen)).item()
        w = int(round(math.sqrt(area * frac * aspect)))
        h = int(round(math.sqrt(area * frac / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return _randint(height - h + 1, gen), _randint(width - w + 1, gen), h, w
    aspect_in = width / height  # no try fitted: the central crop, at the nearest allowed aspect ratio
    if aspect_in < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif aspect_in > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def _crops(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    """Per-sample crops of one size: x [B, C, H, W], top / left [B] → [B, C, th, tw] (one gather)."""
    dev = x.device
    rows = (top.to(dev)[:, None] + torch.arange(th, device=dev))[:, None, :, None]
    cols = (left.to(dev)[:, None] + torch.arange(tw, device=dev))[:, None, None, :]
    b = torch.arange(x.shape[0], device=dev)[:, None, None, None]
    c = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    return x[b, c, rows, cols]


def _fixed(x: torch.Tensor, top: int, left: int, th: int, tw: int) -> torch.Tensor:
    return x[:, :, top : top + th, left : left + tw]


def _center(x: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if th > h or tw > w:
        raise DevicePathError(
            f"centre crop {th}x{tw} of a {h}x{w} image (torchvision would pad; not implemented)"
        )
    return _fixed(x, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


def _five(x: torch.Tensor, th: int, tw: int) -> list[torch.Tensor]:
    """torchvision's five_crop order: top-left, top-right, bottom-left, bottom-right, centre."""
    h, w = x.shape[-2:]
    corners = [(0, 0), (0, w - tw), (h - th, 0), (h - th, w - tw)]
    return [*(_fixed(x, top, left, th, tw) for top, left in corners), _center(x, th, tw)]


# ------------------------------------------------------------------------------------------- reading presets
def _ops(
    transforms: list, preset: str, kind: str
) -> tuple[tuple[tuple, ...], tuple[float, ...], tuple[float, ...]]:
    ops, mean, std = [], None, None
    for i, t in enumerate(transforms):
        if isinstance(t, T.RandomResizedCrop):
            if t.interpolation != T.InterpolationMode.BILINEAR:
                raise DevicePathError(
                    f"preset {preset!r}: RandomResizedCrop with {t.interpolation} (only bilinear)"
                )
            ops.append(("resized_crop", _pair(t.size), tuple(t.scale), tuple(t.ratio)))
        elif isinstance(t, T.RandomCrop):
            if (
                t.pad_if_needed
                or t.fill != 0
                or t.padding_mode != "constant"
                or not isinstance(t.padding, int)
            ):
                raise DevicePathError(f"preset {preset!r}: RandomCrop({t}) (only an int zero padding)")
            ops.append(("pad_crop", _pair(t.size), int(t.padding)))
        elif isinstance(t, T.RandomHorizontalFlip):
            ops.append(("flip", float(t.p)))
        elif isinstance(t, T.CenterCrop):
            ops.append(("center", _pair(t.size)))
        elif isinstance(t, T.TenCrop) and not t.vertical_flip:
            ops.append(("ten", _pair(t.size)))
            if i + 1 != len(transforms) - 1 or not isinstance(transforms[-1], T.Lambda):
                raise DevicePathError(
                    f"preset {preset!r}: TenCrop must be followed by its per-crop conversion only"
                )
            break  # the preset's per-crop ToTensor + Normalize: the test pipeline's normalisation is used
        elif isinstance(t, T.ToTensor):
            continue
        elif isinstance(t, T.Normalize):
            mean, std = tuple(float(v) for v in t.mean), tuple(float(v) for v in t.std)
        else:
            raise DevicePathError(
                f"preset {preset!r} ({kind}): {type(t).__name__} after the cached resize is not implemented on the "
                "device; use pipeline='cache' (cached decode, PIL augmentation) or 'pil'"
            )
    return tuple(ops), mean, std


def _split(transform, preset: str, kind: str) -> tuple[list, list, tuple[int, int]]:
    parts = _flat(transform)
    first = next((i for i, t in enumerate(parts) if isinstance(t, T.Resize)), None)
    if first is None or any(not isinstance(t, T.Lambda) for t in parts[:first]):
        raise DevicePathError(
            f"preset {preset!r} ({kind}) does not start with a fixed Resize((H, W)): nothing to cache"
        )
    resize = parts[first]
    if not isinstance(resize.size, list | tuple) or len(resize.size) != 2:
        raise DevicePathError(
            f"preset {preset!r}: Resize({resize.size}) keeps the aspect ratio; the cache needs (H, W)"
        )
    if resize.interpolation != T.InterpolationMode.BILINEAR or resize.max_size is not None:
        raise DevicePathError(f"preset {preset!r}: only a bilinear Resize((H, W)) is cached")
    return parts[: first + 1], parts[first + 1 :], _pair(resize.size)


def plan_of(preset) -> Plan:
    """The :class:`Plan` of a transform preset (``transferlab.data.transforms.Preset``) or DevicePathError."""
    if preset.train is None or preset.test is None:
        raise DevicePathError(f"preset {preset.name!r} has no per-sample transforms (an in-memory preset)")
    stage, train_tail, size = _split(preset.train, preset.name, "train")
    test_stage, test_tail, test_size = _split(preset.test, preset.name, "test")
    if repr(test_stage) != repr(stage) or test_size != size:
        raise DevicePathError(f"preset {preset.name!r}: train and test start with different stages")
    train, mean, std = _ops(train_tail, preset.name, "train")
    test, tmean, tstd = _ops(test_tail, preset.name, "test")
    if mean is None or (mean, std) != (tmean, tstd):
        raise DevicePathError(f"preset {preset.name!r}: train and test must end with the same Normalize")
    ten = ten_tail = None
    if preset.ten_crop is not None:
        _, ten_tail, _ = _split(preset.ten_crop, preset.name, "ten_crop")
        ten, _, _ = _ops(ten_tail, preset.name, "ten_crop")
    compose = T.Compose
    return Plan(preset.name, size, compose(stage), train, test, ten, mean, std, compose(train_tail),
                compose(test_tail), compose(ten_tail) if ten_tail else None)  # fmt: skip


__all__ = ["DevicePathError", "Plan", "plan_of", "resized_crop_box"]
