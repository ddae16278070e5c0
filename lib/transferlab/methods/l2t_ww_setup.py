"""L2T-ww's settings: which frozen source goes with which target network, and their candidate pairs.

Jang et al., *Learning What and Where to Transfer*, ICML 2019, http://proceedings.mlr.press/v97/jang19b.html.
A setting fixes the source's and the target's feature lists (channel widths by index) and the default pairs
(:mod:`transferlab.methods.matching`). Supported (source, target) combinations:

| source                          | target     | pairs (default)                  | from                            |
|---------------------------------|------------|----------------------------------|---------------------------------|
| ``l2t_resnet32`` (TinyImageNet)  | ``vgg9_bn`` | ``CIFAR_PAIRS``, 15 (AT: 3)       | alinlab/L2T-ww README commands  |
| ``resnet34`` (ImageNet)          | ``resnet18``| ``IMAGENET_PAIRS``, 16 (AT: 4)    | ``train_l2t_ww.py`` defaults    |
| ``mini:<hub model>`` (ResNet-8)  | ``mini_vgg``| ``MINI_PAIRS``, 12 (AT: 3)        | transferlab's mini protocol     |

``source="auto"`` picks the row of the target backbone (``mini_vgg`` → ``mini:clusters``). The source is wrapped in
:class:`FrozenSource`: no gradient, always in eval mode, returning its feature list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from transferlab import env
from transferlab.config import ConfigError
from transferlab.methods.matching import (
    CIFAR_PAIRS,
    IMAGENET_PAIRS,
    MINI_PAIRS,
    MINI_RESNET_WIDTHS,
    MINI_VGG_WIDTHS,
    RESNET32_WIDTHS,
    RESNET_IMAGENET_WIDTHS,
    VGG9_WIDTHS,
    Pair,
)
from transferlab.models import build_backbone
from transferlab.refs import WeightsRef


@dataclass(frozen=True)
class Setting:
    source: str  # source family: l2t_resnet32 | resnet34 | mini (any mini hub model)
    target: str  # target backbone
    source_widths: tuple[int, ...]
    target_widths: tuple[int, ...]
    pairs: tuple[Pair, ...]  # the default candidate pairs (L2T-ww, L2T-w, FM)
    at_pairs: tuple[Pair, ...]  # the equal-size pairs, one per target resolution (AT; transferlab's choice)
    provenance: str


SETTINGS: dict[tuple[str, str], Setting] = {
    (s.source, s.target): s
    for s in (
        Setting("l2t_resnet32", "vgg9_bn", RESNET32_WIDTHS, VGG9_WIDTHS, CIFAR_PAIRS,
                ((4, 0), (9, 1), (14, 2)), "32×32: alinlab/L2T-ww README commands (--pairs 4-0,…,14-4)"),
        Setting("resnet34", "resnet18", RESNET_IMAGENET_WIDTHS, RESNET_IMAGENET_WIDTHS, IMAGENET_PAIRS,
                ((1, 1), (2, 2), (3, 3), (4, 4)), "224×224: train_l2t_ww.py defaults (resnet34 → resnet18)"),
        Setting("mini", "mini_vgg", MINI_RESNET_WIDTHS, MINI_VGG_WIDTHS, MINI_PAIRS,
                ((1, 1), (2, 2), (3, 3)), "mini: transferlab's choice (mini hub ResNet-8 → mini_vgg)"),
    )
}  # fmt: skip
AUTO_SOURCE = {"vgg9_bn": "l2t_resnet32", "resnet18": "resnet34", "mini_vgg": "mini:clusters"}


def family(source: str) -> str:
    """``mini:<hub model>`` → ``mini``; other source names are their own family."""
    return "mini" if source.startswith("mini:") else source


def supported() -> str:
    names = {"mini": "mini:<hub model>"}
    return ", ".join(f"({names.get(s, s)}, {t})" for s, t in SETTINGS)


def resolve(source: str, target: str) -> tuple[str, Setting]:
    """(source name, setting) for ``source`` ("auto" allowed) and target backbone ``target``; ConfigError otherwise."""
    if source == "auto":
        if target not in AUTO_SOURCE:
            raise ConfigError(
                f"L2T-ww has no setting with target backbone {target!r}; supported (source, target): {supported()}"
            )
        source = AUTO_SOURCE[target]
    key = (family(source), target)
    if key not in SETTINGS:
        raise ConfigError(
            f"L2T-ww: source {source!r} with target {target!r} is not a supported setting; "
            f"supported (source, target): {supported()}"
        )
    if key[0] == "mini":
        from transferlab.models.mini_hub import MINI_HUB

        name = source.removeprefix("mini:")
        if name not in MINI_HUB or MINI_HUB.get(name).backbone != "mini_resnet":
            valid = [n for n in MINI_HUB.names() if MINI_HUB.get(n).backbone == "mini_resnet"]
            raise ConfigError(f"source {source!r}: not a mini_resnet hub model; choose mini:<one of {valid}>")
    return source, SETTINGS[key]


class FrozenSource(nn.Module):
    """The source network as a feature-list function (no gradient, always eval mode)."""

    def __init__(self, net: nn.Module, kind: str):
        super().__init__()
        self.net, self.kind = net, kind  # kind: "blocks" (CIFAR ResNet-32) or "stages" (a Backbone)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> FrozenSource:
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.kind == "blocks":
            from transferlab.models.l2t_ww_source import block_feature_maps

            return block_feature_maps(self.net, x)[1]
        return self.net.feature_maps(x)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The source task's outputs [B, N_s] (TinyImageNet: 200, ImageNet: 1000, a mini hub model's head)."""
        if self.kind == "blocks":
            from transferlab.models.l2t_ww_source import block_feature_maps

            return block_feature_maps(self.net, x)[0]
        return self.net(x)

    @property
    def num_classes(self) -> int:
        return (self.net.fc if self.kind == "blocks" else self.net.head).out_features


def source_assets(source: str, target: str) -> list[WeightsRef]:
    """The pre-trained weights an L2T-ww source needs (a mini-hub model is pre-trained before the run)."""
    name, _ = resolve(source, target)
    if name.startswith("mini:"):
        return [WeightsRef.parse(name)]
    return [WeightsRef.parse("IMAGENET1K_V1")] if name == "resnet34" else []


def load_source(name: str, checkpoint: str, data_root: str) -> FrozenSource:
    """The frozen source network of a resolved source name (see :func:`resolve`)."""
    if name == "l2t_resnet32":
        from transferlab.models.l2t_ww_source import CHECKPOINT_NAME, load_l2t_resnet32

        path = checkpoint or (env.folder("TRANSFERLAB_WEIGHTS_DIR") or Path("weights")) / CHECKPOINT_NAME
        return FrozenSource(load_l2t_resnet32(path)[0], "blocks")
    if name == "resnet34":
        return FrozenSource(build_backbone("resnet34", "IMAGENET1K_V1", data_root=data_root), "stages")
    if name.startswith("mini:"):
        return FrozenSource(build_backbone("mini_resnet", name, data_root=data_root), "stages")
    raise ConfigError(f"source {name!r} is not known; supported (source, target): {supported()}")


__all__ = [
    "AUTO_SOURCE",
    "SETTINGS",
    "FrozenSource",
    "Setting",
    "family",
    "load_source",
    "resolve",
    "source_assets",
    "supported",
]
