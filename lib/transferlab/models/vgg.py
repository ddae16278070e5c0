"""VGG9-BN for 32×32 images: L2T-ww's target network in its 32×32 setting (Jang et al., ICML 2019).

The network of the official ``models/vgg_cifar.py`` (``vgg9_bn``, configuration "B" of its small VGGs, after
Srinivas & Fleuret 2018, https://arxiv.org/abs/1803.00443): conv widths 64-M-128-M-256-256-M-512-512-M-512-512-M,
each conv 3×3, padding 1, **with bias**, then BatchNorm and ReLU; M = 2×2 max-pool, stride 2; the 1×1 map left after
the fifth pool is average-pooled and fed to ``Linear(512, num_classes)``. Init as the official code: convs
Kaiming-normal (fan_out, ReLU) with zero bias, BN weight 1 and bias 0, Linear N(0, 0.01) with zero bias.

L2T-ww matches the activations **entering** each max-pool: 64@32², 128@16², 256@8², 512@4², 512@2². The class is
laid out with torchvision-ResNet attribute names so that :class:`transferlab.models.Backbone` wraps it unchanged and
``Backbone.feature_maps`` returns exactly those five maps:

    conv1 → bn1 → relu → maxpool (identity)                     stem      → 64@32²   (feature 0)
    layer1 = pool, conv128                                      stage 1   → 128@16²  (feature 1)
    layer2 = pool, conv256, conv256                             stage 2   → 256@8²   (feature 2)
    layer3 = pool, conv512, conv512                             stage 3   → 512@4²   (feature 3)
    layer4 = pool, conv512, conv512                             stage 4   → 512@2²   (feature 4)
    avgpool = pool, global average pool → [B, 512];  fc = Linear(512, num_classes)

(Each "conv" is Conv-BN-ReLU.) The official class also creates modules its forward never uses (``alphas``,
``new_classifier``, ``new_bn``, ``w1..w3``); they receive no gradient and change nothing, so they are left out.
Shapes: [B, 3, 32, 32] → logits [B, num_classes]. Registered as backbone ``vgg9_bn``.

:class:`MiniVGG` (backbone ``mini_vgg``) is transferlab's own VGG-BN for the mini protocol's 1×28×28 images, the
target of the mini L2T-ww setting (not a network of the paper): plain Conv-BN-ReLU stages separated by max-pools,
16(stride 2)-32-M-64-M-64 (the last pool with ``ceil_mode`` so that 7 → 4), then a global average pool and
``Linear(64, num_classes)``. Like the mini hub's ResNet-8 it opens with a stride-2 stem (speed on two CPU cores), so
its four feature maps 16@14², 32@14², 64@7², 64@4² sit exactly at the resolutions of the ResNet-8's stem and stages
(16@14², 16@14², 32@7², 64@4²; :data:`transferlab.methods.matching.MINI_PAIRS`): ~2.4 M MACs per image, as the ResNet-8
(~2.5 M), with ~65 k parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from transferlab.models.backbones import BACKBONES


def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=True), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=2, stride=2)


def _init(net: nn.Module) -> None:
    """The official VGG init: convs Kaiming-normal (fan_out, ReLU) with zero bias, BN (1, 0), Linear N(0, 0.01)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class VGG9BN(nn.Module):
    widths = (64, 128, 256, 512, 512)  # feature channels, as L2T-ww's ``_get_num_features('vgg9_bn')``

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()  # the first pool opens layer1, so that the stem output is feature 0
        self.layer1 = nn.Sequential(_pool(), *conv_bn_relu(64, 128))
        self.layer2 = nn.Sequential(_pool(), *conv_bn_relu(128, 256), *conv_bn_relu(256, 256))
        self.layer3 = nn.Sequential(_pool(), *conv_bn_relu(256, 512), *conv_bn_relu(512, 512))
        self.layer4 = nn.Sequential(_pool(), *conv_bn_relu(512, 512), *conv_bn_relu(512, 512))
        self.avgpool = nn.Sequential(_pool(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(512, num_classes)
        _init(self)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five maps entering the max-pools: [B,64,32,32], [B,128,16,16], [B,256,8,8], [B,512,4,4], [B,512,2,2]."""
        maps = [self.maxpool(self.relu(self.bn1(self.conv1(x))))]
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            maps.append(stage(maps[-1]))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.feature_maps(x)[-1]), 1))


class MiniVGG(nn.Module):
    """The mini protocol's VGG-BN (see the module docstring): [B, 1, 28, 28] → logits [B, num_classes]."""

    widths = (16, 32, 64, 64)  # feature channels (transferlab.methods.matching.MINI_VGG_WIDTHS)

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=2, padding=1, bias=True)  # 16@14²
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = nn.Sequential(*conv_bn_relu(16, 32))  # 32@14²
        self.layer2 = nn.Sequential(_pool(), *conv_bn_relu(32, 64))  # 64@7²
        self.layer3 = nn.Sequential(nn.MaxPool2d(2, 2, ceil_mode=True), *conv_bn_relu(64, 64))  # 64@4²
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        _init(self)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[B,16,14,14], [B,32,14,14], [B,64,7,7], [B,64,4,4] for 28×28 inputs."""
        maps = [self.maxpool(self.relu(self.bn1(self.conv1(x))))]
        for stage in (self.layer1, self.layer2, self.layer3):
            maps.append(stage(maps[-1]))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.feature_maps(x)[-1]), 1))


BACKBONES.register("vgg9_bn")(lambda num_classes: VGG9BN(num_classes))
BACKBONES.register("mini_vgg")(lambda num_classes: MiniVGG(num_classes))

__all__ = ["VGG9BN", "MiniVGG"]
