"""CIFAR-style ResNets (He et al. 2016, §4.2): a 3×3 stem without max-pool and three stages of BasicBlocks.

depth = 6n + 2 (8, 14, 20, 32, ...). With widths (16, 32, 64) and n = 5 this is the ResNet-32 that L2T-ww uses as
its 32×32 source network; with n = 1 and small widths it is the mini hub's backbone. Attribute names follow
torchvision's ResNet (``conv1``, ``bn1``, ``relu``, ``maxpool``, ``layer1..3``, ``avgpool``, ``fc``) so that
:class:`transferlab.models.backbones.Backbone` wraps both families the same way.

Shapes: input [B, in_channels, H, W] → layer1 [B, w0, H, W] → layer2 [B, w1, H/2, W/2] → layer3 [B, w2, H/4, W/4]
→ pooled feature [B, w2] → logits [B, num_classes].
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """He et al.'s basic residual block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), 3×3 convs without bias.

    Attribute names and creation order are torchvision's (``conv1, bn1, relu, conv2, bn2, downsample``), so state
    dicts and the initial random draws match; ours so that the mini protocol need not import torchvision (whose
    import pulls in ``torch._dynamo``: ~1.5 s per process)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class CifarResNet(nn.Module):
    def __init__(
        self,
        depth: int = 8,
        widths: tuple[int, int, int] = (16, 32, 64),
        num_classes: int = 10,
        in_channels: int = 3,
        stem_bias: bool = False,
        stem_stride: int = 1,
    ):
        super().__init__()
        if (depth - 2) % 6 or depth < 8:
            raise ValueError(f"depth={depth} must be 6n+2 with n >= 1 (8, 14, 20, 32, ...)")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=stem_stride, padding=1, bias=stem_bias)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()  # 32×32 inputs keep their resolution in the stem
        self.inplanes = widths[0]
        self.layer1 = self._stage(widths[0], blocks, stride=1)
        self.layer2 = self._stage(widths[1], blocks, stride=2)
        self.layer3 = self._stage(widths[2], blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))
