"""DELTA (Li, Xiong, Wang, Huan, Liu, Xu, Chen, Dou; ICLR 2019): keep the useful feature maps close to the source's.

https://arxiv.org/abs/1901.09229

L2-SP constrains weights; DELTA constrains behaviour: the outer feature maps of the fine-tuned network F_t should
stay close to those of the frozen pre-trained network F_s, weighted per channel by how much the target task needs
that channel (its attention a). For tapped layers with maps [B, C, H, W]:

    L = CE(h_t(f(x)), y) + α · Σ_layers ½ Σ_{b,c} C·a_c·‖F_t − F_s‖²_{b,c} / (H·W) + β · Σ_{p ∈ head} ½‖p‖²

(:func:`transferlab.methods.regularizers.attention_behavioral_penalty`; ``regularizer="feature_map"`` drops the
attention: ½‖F_t − F_s‖² summed over everything.) The tapped layers are the last convolution of each stage's last
block, before its BatchNorm: ``layer1.2.conv3`` … ``layer4.2.conv3`` on ResNet-50, as TLlib's example.

The channel attention is computed once, in ``prepare()``, on the training split (TLlib
``examples/task_adaptation/image_classification/delta.py``, ``calculate_channel_attention``):

1. a copy of the pre-trained network with a new head is trained on the target for ``attention_epochs`` (10) epochs
   of batch ``attention_batch_size`` (32), SGD at the run's lr, momentum and weight decay, the lr decaying
   exponentially by ×0.1 every ``attention_lr_decay_epochs`` (6) epochs;
2. on ``attention_batches`` (10) training batches, each output channel of each tapped conv is zeroed in turn and the
   increase of the cross-entropy is averaged;
3. per layer the increases are standardised (z-scores) and a = softmax(z / ``attention_temperature``) (5).

Step 1 trains only the new head by default (``attention_train="head"``): TLlib's line meant to freeze the backbone
(``classifier.backbone.requires_grad = False``) sets an attribute and freezes nothing, so TLlib trains everything
(``attention_train="all"``). A layer whose increases are all equal gets uniform attention (TLlib divides by a zero
standard deviation). Our step 2 zeroes a chunk of channels at once, one per copy of the batch, and runs only the
layers after the tapped one: the same numbers as zeroing weights one by one (the convs have no bias), many times
faster. The attention is saved with the run (``channel_attention.npz``, keyed by what produced it).

Defaults (TLlib delta.py): α = β = 0.01, weight decay 0 (the penalties replace it).
Shapes: x [B, C, H, W] → tapped maps [B, C_l, H_l, W_l] per stage → logits [B, N_t].
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferlab.config import ConfigError, OptimConfig
from transferlab.methods import prepared
from transferlab.methods.base import METHODS, Method
from transferlab.methods.l2sp import check_trade_offs, without_weight_decay
from transferlab.methods.regularizers import attention_behavioral_penalty, behavioral_penalty, l2_penalty
from transferlab.models import Backbone, init_head
from transferlab.tasks import Task

ATTENTION_FILE = "channel_attention.npz"


def tapped_convs(backbone: Backbone) -> list[nn.Conv2d]:
    """The last convolution (outside the shortcut) of each stage's last block."""
    taps = []
    for stage in backbone.stages:
        convs = [
            m for n, m in stage[-1].named_modules() if isinstance(m, nn.Conv2d) and "downsample" not in n
        ]
        taps.append(convs[-1])
    return taps


@contextlib.contextmanager
def capture(modules: list[nn.Module]):
    """Collect the outputs of ``modules`` (in call order) during the forward passes inside the block."""
    outputs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for m in modules]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


def standardised_softmax(increases: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(z / temperature) of the z-scores of ``increases``; uniform if they are all equal."""
    std = increases.std()
    z = (increases - increases.mean()) / std if std > 0 else np.zeros_like(increases)
    e = np.exp((z - z.max()) / temperature)
    return e / e.sum()


@METHODS.register("delta")
class Delta(Method):
    name = "delta"
    paper = "DELTA: Deep Learning Transfer using Feature Map with Attention for CNNs (ICLR 2019)"

    @dataclass(frozen=True)
    class Config:
        trade_off_backbone: float = 0.01  # α: TLlib delta.py --trade-off-backbone default
        trade_off_head: float = 0.01  # β: TLlib delta.py --trade-off-head default
        regularizer: str = "attention"  # attention (DELTA; TLlib attention_feature_map) | feature_map
        attention_train: str = "head"  # head (TLlib's intent) | all (what TLlib's code does)
        attention_epochs: int = 10  # TLlib delta.py --attention-epochs
        attention_lr_decay_epochs: int = 6  # TLlib --attention-lr-decay-epochs (×0.1 over this many epochs)
        attention_batch_size: int = 32  # TLlib --attention-batch-size
        attention_batches: int = 10  # TLlib --attention-iteration-limit
        attention_temperature: float = 5.0  # softmax(z / 5) in TLlib's calculate_channel_attention

        def __post_init__(self) -> None:
            check_trade_offs(self)
            if self.regularizer not in ("attention", "feature_map"):
                raise ConfigError(
                    f"regularizer={self.regularizer!r} is not valid; choose attention or feature_map"
                )
            if self.attention_train not in ("head", "all"):
                raise ConfigError(
                    f"attention_train={self.attention_train!r} is not valid; choose head or all"
                )
            for name in (
                "attention_epochs",
                "attention_lr_decay_epochs",
                "attention_batch_size",
                "attention_batches",
            ):
                if getattr(self, name) < 1:
                    raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")

    def __init__(self, backbone: Backbone, task: Task, cfg: Delta.Config):
        super().__init__(backbone, task, cfg)
        source = copy.deepcopy(backbone)
        source.source_head = None
        self.source = source.requires_grad_(False).eval()  # F_s: the frozen pre-trained network
        self.target_taps, self.source_taps = tapped_convs(backbone), tapped_convs(self.source)
        for i, conv in enumerate(self.target_taps):
            self.register_buffer(f"attention_{i}", torch.full((conv.out_channels,), 1.0 / conv.out_channels))

    def attention(self) -> list[torch.Tensor]:
        return [getattr(self, f"attention_{i}") for i in range(len(self.target_taps))]

    def train(self, mode: bool = True) -> Delta:
        super().train(mode)
        self.source.eval()
        return self

    def param_groups(self, optim: OptimConfig) -> list[dict]:
        return without_weight_decay(super().param_groups(optim))

    # ------------------------------------------------------------------------------------------- channel attention
    def prepare(self, data) -> None:
        if self.cfg.regularizer != "attention":
            return
        o = data.cfg.optim  # the attention classifier trains with the run's optimiser settings
        extra = {"lr": o.lr, "momentum": o.momentum, "nesterov": o.nesterov, "wd": o.weight_decay,
                 "preset": data.preset.name, "seed": data.cfg.seed}  # fmt: skip
        key = prepared.fingerprint(self.source, self.cfg, data, extra)
        saved = prepared.load(data, ATTENTION_FILE, key)
        if saved is None:
            scores = self.channel_importance(data)
            weights = [standardised_softmax(s, self.cfg.attention_temperature) for s in scores]
            saved = {f"layer{i}": w for i, w in enumerate(weights)} | {
                f"increase{i}": s for i, s in enumerate(scores)
            }
            prepared.save(data, ATTENTION_FILE, key, **saved)
        for i, a in enumerate(self.attention()):
            a.copy_(torch.from_numpy(saved[f"layer{i}"]))

    def channel_importance(self, data) -> list[np.ndarray]:
        """Mean increase of the target cross-entropy when each tapped channel is zeroed (steps 1 and 2 above)."""
        c, o = self.cfg, data.cfg.optim
        clf = copy.deepcopy(self.source).requires_grad_(c.attention_train == "all")
        clf.head = init_head(nn.Linear(clf.feature_dim, self.num_classes)).to(self.attention_0.device)
        opt = torch.optim.SGD(
            [p for p in clf.parameters() if p.requires_grad],
            lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay,
        )  # fmt: skip
        stream = data.train_stream(c.attention_batch_size, key=31)
        batches = stream.batches()
        gamma = math.exp(math.log(0.1) / c.attention_lr_decay_epochs)
        clf.train()
        with torch.enable_grad():
            for epoch in range(c.attention_epochs):
                for g in opt.param_groups:
                    g["lr"] = o.lr * gamma**epoch
                for _ in range(stream.steps_per_epoch):
                    x, y = next(batches)
                    opt.zero_grad(set_to_none=True)
                    F.cross_entropy(clf(x), y).backward()
                    opt.step()
        clf.eval()
        taps = tapped_convs(clf)
        totals = [np.zeros(t.out_channels) for t in taps]
        n = min(c.attention_batches, stream.steps_per_epoch)
        with torch.no_grad():
            for _ in range(n):
                x, y = next(batches)
                base = F.cross_entropy(clf(x), y).item()
                for s, tap in enumerate(taps):
                    totals[s] += _ablation_losses(clf, s, tap, x, y) - base
        return [t / n for t in totals]

    # ------------------------------------------------------------------------------------------------ training
    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        with capture(self.target_taps) as ft:
            logits = self.backbone(x)
        with torch.no_grad(), capture(self.source_taps) as fs:
            self.source.features(x)
        ce = F.cross_entropy(logits, y)
        fs, ft = [f.float() for f in fs], [f.float() for f in ft]
        if self.cfg.regularizer == "attention":
            reg = attention_behavioral_penalty(fs, ft, self.attention())
        else:
            reg = behavioral_penalty(fs, ft)
        head = l2_penalty(self.backbone.head.parameters())
        loss = ce + self.cfg.trade_off_backbone * reg + self.cfg.trade_off_head * head
        return {"loss": loss, "ce": ce, "delta": reg, "l2_head": head, "logits": logits}


def _ablation_losses(
    net: Backbone, stage: int, tap: nn.Conv2d, x: torch.Tensor, y: torch.Tensor
) -> np.ndarray:
    """CE of ``net`` on (x, y) with each output channel of ``tap`` (in the last block of ``stage``) zeroed in turn.

    The input of that block is computed once; each chunk of G channels runs G copies of the batch through the rest,
    copy g with channel j_g zeroed.
    """
    h = net.stem(x)
    for st in net.stages[:stage]:
        h = st(h)
    for block in net.stages[stage][:-1]:
        h = block(h)
    b, channels = x.shape[0], tap.out_channels
    chunk = max(1, 256 // b)
    losses = np.empty(channels)
    for start in range(0, channels, chunk):
        idx = torch.arange(start, min(start + chunk, channels), device=x.device)
        g = len(idx)

        def zero(_m, _i, out, idx=idx, g=g):
            out = out.view(g, b, *out.shape[1:]).clone()
            out[torch.arange(g, device=out.device), :, idx] = 0.0
            return out.flatten(0, 1)

        handle = tap.register_forward_hook(zero)
        try:
            z = net.stages[stage][-1](h.repeat(g, *([1] * (h.dim() - 1))))
        finally:
            handle.remove()
        for st in net.stages[stage + 1 :]:
            z = st(z)
        logits = net.head(net.pool(z))
        ce = F.cross_entropy(logits, y.repeat(g), reduction="none").view(g, b).mean(1)
        losses[start : start + g] = ce.double().cpu().numpy()
    return losses
