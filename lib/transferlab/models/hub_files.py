"""The files of a hub's models: where each comes from, how its keys map to a torchvision ResNet, how it is checked.

``Published`` — a published checkpoint (torchvision, MoCo), found on disk or downloaded, checksum-checked, its keys
remapped by a :class:`KeyMap`; ``MiniHubWeights`` — a mini-hub model, pre-trained and cached by the suite.
:mod:`transferlab.models.hub` builds the hubs from them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from transferlab.models import mini_hub
from transferlab.models.weights import (
    WeightsError,
    file_digest,
    find_or_download,
    find_weights,
    load_checked,
    weights_dirs,
)

TORCHVISION_LICENCE = "torchvision pre-trained weights; the terms of the training data (ImageNet, COCO) apply"
MOCO_LICENCE = "CC-BY-NC 4.0 (facebookresearch/moco): non-commercial use only"


@dataclass(frozen=True)
class KeyMap:
    """Checkpoint keys → torchvision ResNet keys: keep the keys under ``prefix`` (stripped), minus those under ``drop``."""

    prefix: str = ""
    drop: tuple[str, ...] = ()

    def __call__(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        body = {k.removeprefix(self.prefix): v for k, v in state.items() if k.startswith(self.prefix)}
        if not body:
            raise WeightsError(f"no key starts with {self.prefix!r} (first keys: {list(state)[:3]})")
        return {k: v for k, v in body.items() if not k.startswith(self.drop)}

    def __str__(self) -> str:
        kept = f"{self.prefix}* → *, other keys dropped" if self.prefix else "keys as is"
        return kept + "".join(f"; {d}* dropped" for d in self.drop)


@dataclass(frozen=True)
class Published:
    """A published checkpoint: found on disk or downloaded (``weights.find_or_download``), checksum-checked."""

    file: str
    url: str
    checksum: str  # "sha256": the prefix torchvision puts in the file name; "md5": the MoCo README's
    prefix: str
    keys: KeyMap
    licence: str

    def locate(self, weights_dir=None) -> Path | None:
        return find_weights(self.file, weights_dir)

    def where(self, weights_dir=None) -> str:
        dirs = " or ".join(str(d) for d in weights_dirs(weights_dir))
        return f"download it from the source and put it in {dirs}"

    def problem(self, path: Path) -> str:
        """ "" if ``path`` matches the expected checksum prefix, else what is wrong."""
        digest = file_digest(path, self.checksum)
        if digest.startswith(self.prefix):
            return ""
        return (
            f"checksum mismatch for {path}: {self.checksum} {digest[:12]}… does not start with {self.prefix} "
            "(a truncated download or a different file); delete it and fetch it again"
        )

    def fetch(self, what: str, weights_dir=None, data_root: str = "data") -> Path:
        path = find_or_download(self.file, self.url, what, weights_dir)
        if problem := self.problem(path):
            raise WeightsError(problem)
        return path

    def state_dict(self, what: str, weights_dir=None, data_root: str = "data") -> dict[str, torch.Tensor]:
        # checked above, so load_checked only unwraps a {"state_dict": ...} checkpoint with weights_only=True
        return self.keys(load_checked(self.fetch(what, weights_dir), None))


# Backbone-wrapper keys (how the mini hub saves its models) → torchvision ResNet keys
_BACKBONE_TO_RESNET = (("stem.0.", "conv1."), ("stem.1.", "bn1."), ("head.", "fc."))


def _resnet_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        for old, new in _BACKBONE_TO_RESNET:
            if k.startswith(old):
                k = new + k.removeprefix(old)
        if k.startswith("stages."):
            _, i, rest = k.split(".", 2)
            k = f"layer{int(i) + 1}.{rest}"
        out[k] = v
    return out


@dataclass(frozen=True)
class MiniHubWeights:
    """A :mod:`~transferlab.models.mini_hub` model: pre-trained and cached by ``mini_hub.ensure``."""

    model: str  # a MINI_HUB name
    checksum: str = "sha256"
    keys: str = "Backbone keys stem.0, stem.1, stages.i, head → conv1, bn1, layer{i+1}, fc"
    licence: str = "pre-trained locally by transferlab on Fashion-MNIST / scikit-learn digits"

    @property
    def _files(self) -> tuple[Path, Path]:
        return mini_hub._paths(mini_hub.MINI_HUB.get(self.model))

    @property
    def file(self) -> str:
        return self._files[0].name

    @property
    def url(self) -> str:
        return f"pre-trained locally: `transferlab hub build mini` (cache {mini_hub.cache_dir()})"

    @property
    def prefix(self) -> str | None:
        """The sha256 recorded when the model was pre-trained (None before)."""
        try:
            return json.loads(self._files[1].read_text())["sha256"]
        except (OSError, ValueError, KeyError):
            return None

    def locate(self, weights_dir=None) -> Path | None:
        return self._files[0] if self._files[0].is_file() else None

    def where(self, weights_dir=None) -> str:
        return "not pre-trained yet: `transferlab hub build mini` (or first use) pre-trains it"

    def problem(self, path: Path) -> str:
        expected = self.prefix
        if expected is None:
            return f"manifest {self._files[1]} missing or unreadable: the model is pre-trained again on use"
        if file_digest(path, self.checksum) != expected:
            return f"checksum mismatch for {path}: the model is deleted and pre-trained again on use"
        return ""

    def fetch(self, what: str, weights_dir=None, data_root: str = "data") -> Path:
        found = mini_hub.cached(self.model)
        if (
            found is None
        ):  # pre-training sits above this layer: transferlab.hubbuild / `transferlab hub build mini`
            raise mini_hub.HubModelMissing(f"{what} is not pre-trained yet: run `transferlab hub build mini`")
        return found[0]

    def state_dict(self, what: str, weights_dir=None, data_root: str = "data") -> dict[str, torch.Tensor]:
        model = mini_hub.MINI_HUB.get(self.model)
        net = mini_hub.load_hub_backbone(self.model, model.backbone, data_root)
        return _resnet_keys(net.state_dict())
