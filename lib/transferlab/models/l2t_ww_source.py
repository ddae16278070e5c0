"""L2T-ww's 32×32 source network: the authors' TinyImageNet-200 ResNet-32, loaded into :class:`CifarResNet`.

Jang et al., *Learning What and Where to Transfer*, ICML 2019, http://proceedings.mlr.press/v97/jang19b.html. The
official repository (alinlab/L2T-ww, MIT) ships ``logs/tinyimagenet-200-resnet32/0/model_best.pth.tar`` (epoch 104,
best validation 49.27 %, test 49.15 %, 200 classes); the README commands use it as the source for CIFAR-100 and
STL-10. A byte-identical copy lives in the anchors folder as ``l2t_ww_tinyimagenet_resnet32.pth.tar``.

Its architecture is exactly ``CifarResNet(32, (16, 32, 64), 200, stem_bias=True)`` (registered as
``cifar_resnet32``): a 3×3 stem conv with bias, BN, ReLU, no max-pool; three stages of five torchvision-style
BasicBlocks, the first block of stages 2 and 3 with a 1×1 stride-2 conv + BN shortcut; a global average pool (the
official 8×8 pool, the same on 32² inputs) and ``Linear(64, 200)``. Only the block names differ:

    official   block1 | blocks2.0-3 | block3 | blocks4.0-3 | block5 | blocks6.0-3
    ours       layer1.0 | layer1.1-4 | layer2.0 | layer2.1-4 | layer3.0 | layer3.1-4

(the official class's three ``alphas.*`` parameters are unused by its forward and absent from the file).

L2T-ww's source features are the outputs of the 15 blocks (:func:`block_feature_maps`): 5 × 16@32², 5 × 32@16²,
5 × 64@8². Golden test: the stored float64 forward of the official model (anchors README §4.4).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from transferlab.models.cifar_resnet import CifarResNet
from transferlab.models.weights import WeightsError, load_tensors

CHECKPOINT_NAME = "l2t_ww_tinyimagenet_resnet32.pth.tar"
CHECKPOINT_SHA256 = "049f81f8bea8504e90818d6c614f15c485ac2d891348330b433110e161f66d68"

# official block prefix → (our stage, index offset inside the stage)
_BLOCKS = {
    "block1": ("layer1", 0),
    "blocks2": ("layer1", 1),
    "block3": ("layer2", 0),
    "blocks4": ("layer2", 1),
    "block5": ("layer3", 0),
    "blocks6": ("layer3", 1),
}
_KEY = re.compile(r"^(block[135]|blocks[246])\.(?:(\d+)\.)?(.+)$")


def remap_key(key: str) -> str:
    """An official state-dict key → ours (``blocks4.2.bn1.weight`` → ``layer2.3.bn1.weight``); others unchanged."""
    m = _KEY.match(key)
    if m is None:
        return key  # conv1.*, bn1.*, fc.*
    stage, offset = _BLOCKS[m.group(1)]
    single = m.group(1) in ("block1", "block3", "block5")
    if single == (m.group(2) is not None):  # block1 takes no index, blocks2 needs one
        return key
    index = offset + (0 if single else int(m.group(2)))
    return f"{stage}.{index}.{m.group(3)}"


def load_l2t_resnet32(path: str | Path, check_sha256: bool = True) -> tuple[CifarResNet, dict]:
    """Build ``CifarResNet(32, ...)`` and load the shipped checkpoint into it (``weights_only=True``, strict).

    Returns (network in eval mode, metadata ``{'epoch', 'best', 'test_prec', 'num_classes'}``). Raises
    :class:`WeightsError` naming the file on a checksum mismatch, and naming the missing / unexpected keys
    (after remapping) if the file does not fit the architecture.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(
            f"{path} does not exist: L2T-ww's source checkpoint is logs/tinyimagenet-200-resnet32/0/model_best.pth.tar "
            "in github.com/alinlab/L2T-ww (MIT)"
        )
    if check_sha256:
        from transferlab.models.weights import sha256_file

        digest = sha256_file(path)
        if digest != CHECKPOINT_SHA256:
            raise WeightsError(
                f"{path}: sha256 {digest[:12]}… is not the shipped L2T-ww ResNet-32 checkpoint"
            )
    # Legacy (non-zip) serialisation with CUDA storages: map to CPU.
    ckpt = load_tensors(path, "get the shipped checkpoint again (github.com/alinlab/L2T-ww)")
    state = {remap_key(k): v for k, v in ckpt["state_dict"].items()}
    num_classes = int(ckpt.get("num_classes", state["fc.weight"].shape[0]))
    net = CifarResNet(32, (16, 32, 64), num_classes, in_channels=3, stem_bias=True)
    ours = net.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    wrong = sorted(k for k in set(ours) & set(state) if ours[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise WeightsError(
            f"{path} does not fit CifarResNet(32): missing keys {missing}, unexpected keys {unexpected}, "
            f"shape mismatches {wrong}"
        )
    net.load_state_dict(state, strict=True)
    meta = {k: ckpt[k] for k in ("epoch", "best", "test_prec", "num_classes") if k in ckpt}
    return net.eval(), meta


def residual_blocks(net: CifarResNet) -> list[nn.Module]:
    """The residual blocks of a CifarResNet in forward order (15 for ResNet-32)."""
    return [block for stage in (net.layer1, net.layer2, net.layer3) for block in stage]


def block_feature_maps(net: CifarResNet, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(logits, the output of every residual block) — the official ``forward_with_features`` of the source.

    x [B, 3, 32, 32] → logits [B, num_classes], features 5 × [B, 16, 32, 32], 5 × [B, 32, 16, 16],
    5 × [B, 64, 8, 8] (ResNet-32).
    """
    h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    feats = []
    for block in residual_blocks(net):
        h = block(h)
        feats.append(h)
    return net.fc(torch.flatten(net.avgpool(h), 1)), feats


__all__ = [
    "CHECKPOINT_NAME",
    "CHECKPOINT_SHA256",
    "block_feature_maps",
    "load_l2t_resnet32",
    "remap_key",
    "residual_blocks",
]
