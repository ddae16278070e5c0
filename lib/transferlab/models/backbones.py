"""Backbones: torchvision-style ResNets wrapped once with the interface every method uses.

``Backbone`` splits a ResNet into ``stem`` → ``stages`` → ``pool`` → ``head``:

- ``features(x)`` → pooled feature [B, D] (D = 2048 for ResNet-50, 512 for ResNet-18/34, 64 for the mini ResNet);
- ``feature_maps(x)`` → ``[stem output, stage 1, ..., stage S]`` (what DELTA and L2T-ww hook into; L2T-ww's ImageNet
  feature list is exactly this for ResNet-18/34);
- ``head`` → the classifier on the pooled feature; ``reset_head(C)`` swaps in a new C-way head initialised like the
  official Co-Tuning / Zoo-Tuning code (weights N(0, 0.01), bias 0) and keeps the pre-trained one as
  ``source_head`` (Co-Tuning's kept source classifier, LwF's teacher).

Registered backbones build an *untrained* network; pre-trained weights are loaded by
:func:`transferlab.models.build_backbone` (torchvision enums, the mini hub).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from transferlab.models.cifar_resnet import CifarResNet
from transferlab.registry import Registry

# name → factory(num_classes) returning a torchvision-style ResNet (conv1, bn1, relu, maxpool, layer1.., fc)
BACKBONES: Registry[Callable[[int], nn.Module]] = Registry("backbone")


def _torchvision_resnet(arch: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        import torchvision  # imported where used: its import pulls in torch._dynamo (~1.5 s per process)

        return getattr(torchvision.models, arch)(num_classes=num_classes)

    return build


for _arch in ("resnet18", "resnet34", "resnet50"):
    BACKBONES.register(_arch)(_torchvision_resnet(_arch))
# The mini protocol's backbone: ResNet-8 with widths 16/32/64 on 1-channel 28×28 images (~78k parameters). Its
# stride-2 stem (28 → 14 → 7 → 4) makes it ~3× faster than a stride-1 stem on two CPU cores, at little accuracy cost.
BACKBONES.register("mini_resnet")(
    lambda num_classes: CifarResNet(8, (16, 32, 64), num_classes, in_channels=1, stem_stride=2)
)
# L2T-ww's 32×32 source architecture (ResNet-32, widths 16/32/64, a stem conv with bias).
BACKBONES.register("cifar_resnet32")(
    lambda num_classes: CifarResNet(32, (16, 32, 64), num_classes, in_channels=3, stem_bias=True)
)


def init_head(head: nn.Linear) -> nn.Linear:
    """N(0, 0.01) weights and zero bias: the new-head initialisation of the official Co-Tuning and Zoo-Tuning code."""
    nn.init.normal_(head.weight, 0.0, 0.01)
    nn.init.zeros_(head.bias)
    return head


class Backbone(nn.Module):
    def __init__(self, net: nn.Module, name: str):
        super().__init__()
        self.name = name
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.ModuleList(
            [
                getattr(net, f"layer{i}")
                for i in range(1, 5)
                if isinstance(getattr(net, f"layer{i}", None), nn.Module)
            ]
        )
        self.pool = nn.Sequential(net.avgpool, nn.Flatten(1))
        self._feature_dim = net.fc.in_features
        self.head: nn.Module = net.fc
        self.source_head: nn.Linear | None = None
        self.spatial_head = (
            False  # the head reads the last feature map [B, C, h, w] instead of the pooled feature
        )
        self.weights_sha256: str | None = (
            None  # checksum of the pre-trained weights (mini hub), for provenance
        )
        self.hub_model: str = ""  # "<hub>:<model>" when loaded from a model hub

    @property
    def feature_dim(self) -> int:
        """Channels of the last feature map = dimension of the pooled feature (what a head reads)."""
        return self._feature_dim

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map [B, C, h, w]."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = [self.stem(x)]
        for stage in self.stages:
            maps.append(stage(maps[-1]))
        return maps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled feature [B, D]."""
        return self.pool(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x) if self.spatial_head else self.features(x))

    def reset_head(self, head: nn.Module | int, keep_source: bool = True, spatial: bool = False) -> None:
        """Replace the head by ``head`` (a task's head module, or an int: a new N(0, 0.01) ``Linear(D, N)``); the old
        one becomes ``source_head`` if kept. ``spatial``: the new head reads the last feature map."""
        old = self.head
        if isinstance(head, int):
            head = init_head(nn.Linear(self.feature_dim, head))
        self.source_head = old if keep_source else None
        self.head = head.to(old.weight.device)
        self.spatial_head = spatial

    def body_parameters(self) -> list[nn.Parameter]:
        """Everything but the heads: the pre-trained feature extractor."""
        return [p for m in (self.stem, self.stages) for p in m.parameters()]
