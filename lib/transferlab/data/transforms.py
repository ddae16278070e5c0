"""Transform presets: the papers' image pipelines and the mini protocol's batch augmentation.

- ``imagenet224`` — Co-Tuning / Zoo-Tuning / TLlib (official ``utils/transforms.py``-style): train = resize to
  256×256, RandomResizedCrop(224), horizontal flip; test = resize 256×256 → centre crop 224, or ten crops (the four
  corners and the centre, plus their flips) averaged at evaluation. ImageNet mean/std.
- ``cifar32`` — L2T-ww's 32×32 setting: train = 4-pixel padded random crop + flip; test = the image as it is.
- ``mini`` / ``mini_noflip`` — the embedded protocol's in-memory 28×28 grey images: random 2-pixel shifts (+ flip for
  clothing, none for digits) applied to whole uint8 batches on the device, from a ``torch.Generator`` seeded by the
  run seed and the step, so an interrupted run resumes with exactly the same augmentation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from transferlab.registry import Registry

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
# The mini hub is pre-trained with Fashion-MNIST's statistics; every mini dataset is normalised with them, as every
# paper-protocol dataset is normalised with ImageNet's for ImageNet-pre-trained models.
MINI_MEAN, MINI_STD = (0.2860,), (0.3530,)


@dataclass(frozen=True)
class Preset:
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train: Callable | None  # per-sample transform for file-based datasets (PIL → normalised tensor)
    test: Callable | None
    ten_crop: Callable | None = None  # per-sample: PIL → [10, C, H, W]
    shift: int = 0  # batch augmentation for in-memory data: max random shift in pixels
    flip: bool = False  # batch augmentation: random horizontal flip

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float batch [B, C, H, W] → normalised float."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def augment_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random shifts and flips of a uint8 batch [B, C, H, W]; the randomness comes from ``generator`` only."""
        b, _, h, w = x.shape
        if self.shift:
            s = self.shift
            padded = F.pad(x, (s, s, s, s))
            dy = torch.randint(0, 2 * s + 1, (b,), generator=generator)
            dx = torch.randint(0, 2 * s + 1, (b,), generator=generator)
            rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # [B, 1, H, 1]
            cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # [B, 1, 1, W]
            batch = torch.arange(b)[:, None, None, None]
            chans = torch.arange(x.shape[1])[None, :, None, None]
            x = padded[batch, chans, rows, cols]  # one gather instead of a Python loop over samples
        if self.flip:
            flip = torch.rand(b, generator=generator) < 0.5
            x = torch.where(flip.view(b, 1, 1, 1).to(x.device), x.flip(3), x)
        return x


TRANSFORMS: Registry[Preset] = Registry("transform preset")


class _Lazy:
    """A torchvision transform built on its first call: the file-based presets need torchvision, whose import pulls
    in ``torch._dynamo`` (~1.5 s per process); the mini protocol never calls them."""

    def __init__(self, preset: str, part: str):
        self.preset, self.part, self.fn = preset, part, None

    def resolved(self) -> Callable:
        """The torchvision transform itself (the cache and device paths read its steps)."""
        if self.fn is None:
            self.fn = _BUILDERS[self.preset]()[self.part]
        return self.fn

    def __call__(self, image):
        return self.resolved()(image)


@functools.cache
def _imagenet224() -> dict[str, Callable]:
    from torchvision import transforms as T

    norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    to_tensor = T.Compose([T.ToTensor(), norm])
    rgb = T.Lambda(lambda im: im.convert("RGB"))
    return {
        "train": T.Compose([rgb, T.Resize((256, 256)), T.RandomResizedCrop(224), T.RandomHorizontalFlip(), to_tensor]),
        "test": T.Compose([rgb, T.Resize((256, 256)), T.CenterCrop(224), to_tensor]),
        "ten_crop": T.Compose([rgb, T.Resize((256, 256)), T.TenCrop(224),
                               T.Lambda(lambda crops: torch.stack([to_tensor(c) for c in crops]))]),
    }  # fmt: skip


@functools.cache
def _cifar32() -> dict[str, Callable]:
    from torchvision import transforms as T

    norm = T.Compose([T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])
    rgb = T.Lambda(lambda im: im.convert("RGB"))
    return {
        "train": T.Compose(
            [rgb, T.Resize((32, 32)), T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), norm]
        ),
        "test": T.Compose([rgb, T.Resize((32, 32)), norm]),
    }


_BUILDERS = {"imagenet224": _imagenet224, "cifar32": _cifar32}


for _preset in (
    Preset(
        "imagenet224",
        IMAGENET_MEAN,
        IMAGENET_STD,
        _Lazy("imagenet224", "train"),
        _Lazy("imagenet224", "test"),
        _Lazy("imagenet224", "ten_crop"),
    ),
    Preset("cifar32", CIFAR_MEAN, CIFAR_STD, _Lazy("cifar32", "train"), _Lazy("cifar32", "test")),
    Preset("mini", MINI_MEAN, MINI_STD, train=None, test=None, shift=2, flip=True),
    Preset("mini_noflip", MINI_MEAN, MINI_STD, train=None, test=None, shift=2, flip=False),
):
    TRANSFORMS.register(_preset.name)(_preset)
