"""Build one Zoo-Tuning ResNet from a zoo of K source ResNets of the same architecture.

Zoo-Tuning (Shu et al., ICML 2021, http://proceedings.mlr.press/v139/shu21b.html) merges the zoo into a single
network whose every convolution is an :class:`~transferlab.models.zoo.AdaptiveAggregationConv` holding the K source
kernels (stacked in the order of ``sources``). What the official ``module/backbone.py::build_model`` does
(thuml/Zoo-Tuning @ c5975f6, described in ``shared/anchors/README.md`` §3.4), and what :func:`build_zoo_resnet`
reproduces by default:

- conv weights [O, I/g, kh, kw] of the K sources → one layer's ``weight`` [K, O, I/g, kh, kw] (bias likewise);
- channel alignment requested for the stem ``conv1`` and every conv of ``layer3`` and ``layer4``; effective only
  for kernels larger than 1×1, so in a ResNet-50 exactly on the stem and the 3×3 convs of layer3/4 (10 layers);
- BatchNorm is not aggregated: one BN per position, affine weight and bias = the element-wise mean of the sources
  ((w₁ + … + w_K)/K, summed left to right), running mean reset to 0 and running var to 1;
- lite mode on every conv but the downsample 1×1s, which keep per-sample gates (an official quirk);
- a new head Linear(D, C) with weights N(0, 0.01) and bias 0; the sources' ``fc`` is dropped.

The result is a torchvision-style ResNet (``conv1, bn1, relu, maxpool, layer1.., avgpool, fc``), so
``Backbone(net, name)`` wraps it and ``features()`` / ``feature_maps()`` work as for any backbone.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Collection, Mapping, Sequence
from typing import Literal

import torch
from torch import nn

from transferlab.models.backbones import BACKBONES, init_head
from transferlab.models.zoo import AdaptiveAggregationConv

OFFICIAL_ALIGN = (
    "conv1",
    "layer3",
    "layer4",
)  # module-name prefixes where the official ResNet requests alignment


def _body(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict without the classifier (``fc.*``) and BN counters (absent from old and FrozenBN checkpoints)."""
    return {
        k: v for k, v in state.items() if not k.startswith("fc.") and not k.endswith("num_batches_tracked")
    }


def _mismatch(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], a_name: str, b_name: str) -> str:
    """ "" if a and b have the same keys and shapes, else a message naming (up to 5 of) the differences."""
    problems = [f"{k!r} is missing from {b_name}" for k in a if k not in b]
    problems += [f"{k!r} is missing from {a_name}" for k in b if k not in a]
    problems += [
        f"{k!r} has shape {list(a[k].shape)} in {a_name} but {list(b[k].shape)} in {b_name}"
        for k in a
        if k in b and a[k].shape != b[k].shape
    ]
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return "; ".join(problems[:5]) + more


def _stack(bodies: Sequence[Mapping[str, torch.Tensor]], key: str) -> torch.Tensor:
    return torch.stack([b[key] for b in bodies])


def _mean(bodies: Sequence[Mapping[str, torch.Tensor]], key: str) -> torch.Tensor:
    """(t₁ + … + t_K)/K summed left to right, as the official loader (so float32 results match it bit for bit)."""
    return functools.reduce(operator.add, [b[key] for b in bodies]) / len(bodies)


def build_zoo_resnet(
    sources: Sequence[Mapping[str, torch.Tensor]],
    arch: str | nn.Module = "resnet50",
    num_classes: int = 1000,
    *,
    align_in: Collection[str] = OFFICIAL_ALIGN,
    lite: bool = False,
    lite_downsample: bool = False,
    ema_momentum: float = 0.1,
    detach_ema: bool = True,
    bn_stats: Literal["reset", "average"] = "reset",
    gate_init: str = "official",
) -> nn.Module:
    """One zoo ResNet from K source state dicts of identical architecture (module doc for what is done).

    Args:
        sources: K torchvision-style state dicts (``fc.*`` and ``num_batches_tracked`` are ignored; strip any
            checkpoint prefix such as ``module.encoder_q.`` or ``backbone.body.`` first). Their order is the
            expert order.
        arch: a registered backbone name (``BACKBONES``) or an untrained torchvision-style ResNet instance, which is
            converted in place.
        num_classes: classes of the new head.
        align_in: module-name prefixes whose convs request alignment (official: stem, layer3, layer4).
        lite: lite Zoo-Tuning; ``lite_downsample`` also makes the downsample convs lite (default False, as the
            official code, where they stay per-sample; True makes the whole model collapsible).
        ema_momentum, detach_ema: passed to every lite layer (see :class:`AdaptiveAggregationConv`).
        bn_stats: "reset" (official: running mean 0, var 1) or "average" (the sources' statistics averaged).
        gate_init: how every gate's output layer starts (``transferlab.models.zoo.GATE_INITS``).

    Raises ValueError naming the first differences when the sources' architectures differ or do not fit ``arch``.
    """
    if not sources:
        raise ValueError("need at least one source state dict")
    if bn_stats not in ("reset", "average"):
        raise ValueError(f"bn_stats={bn_stats!r} must be 'reset' or 'average'")
    bodies = [_body(s) for s in sources]
    for i, body in enumerate(bodies[1:], start=1):
        if problem := _mismatch(bodies[0], body, "source 0", f"source {i}"):
            raise ValueError(f"the source models do not share one architecture: {problem}")
    net = BACKBONES.get(arch)(num_classes) if isinstance(arch, str) else arch
    arch_name = arch if isinstance(arch, str) else type(arch).__name__
    if problem := _mismatch(
        _body(net.state_dict()), bodies[0], f"the {arch_name} architecture", "the sources"
    ):
        raise ValueError(f"the sources do not fit {arch_name}: {problem}")

    k, done = len(bodies), set()
    with torch.no_grad():
        for name, module in list(net.named_modules()):
            if name == "fc" or not any(True for _ in module.parameters(recurse=False)):
                continue
            if type(module) is nn.Conv2d:
                if module.padding_mode != "zeros":
                    raise ValueError(f"{name}: padding_mode={module.padding_mode!r} is not supported")
                is_downsample = "downsample" in name.split(".")
                layer = AdaptiveAggregationConv(
                    module.in_channels,
                    module.out_channels,
                    module.kernel_size,
                    module.stride,
                    module.padding,
                    module.dilation,
                    module.groups,
                    bias=module.bias is not None,
                    experts=k,
                    align=any(name == p or name.startswith(p + ".") for p in align_in),
                    lite=lite and (lite_downsample or not is_downsample),
                    ema_momentum=ema_momentum,
                    detach_ema=detach_ema,
                    gate_init=gate_init,
                ).to(module.weight.device, module.weight.dtype)
                layer.weight.copy_(_stack(bodies, f"{name}.weight"))
                leaves = ["weight"]
                if layer.bias is not None:
                    layer.bias.copy_(_stack(bodies, f"{name}.bias"))
                    leaves.append("bias")
                parent, _, child = name.rpartition(".")
                setattr(net.get_submodule(parent), child, layer)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(_mean(bodies, f"{name}.weight"))
                module.bias.copy_(_mean(bodies, f"{name}.bias"))
                leaves = ["weight", "bias", "running_mean", "running_var"]
                if bn_stats == "average":
                    module.running_mean.copy_(_mean(bodies, f"{name}.running_mean"))
                    module.running_var.copy_(_mean(bodies, f"{name}.running_var"))
                else:
                    module.running_mean.zero_()
                    module.running_var.fill_(1.0)
                if module.num_batches_tracked is not None:
                    module.num_batches_tracked.zero_()
            else:
                raise ValueError(f"{name}: {type(module).__name__} is not supported in a zoo ResNet")
            done.update(f"{name}.{leaf}" for leaf in leaves)
    if left := sorted(set(bodies[0]) - done):
        raise ValueError(f"source tensors not used by any conv or BN layer: {left[:5]}")
    net.fc = init_head(nn.Linear(net.fc.in_features, num_classes)).to(net.fc.weight.device)
    return net
