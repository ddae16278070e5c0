"""L2-SP (Li, Grandvalet, Davoine; ICML 2018): pull the weights towards the pre-trained starting point.

https://arxiv.org/abs/1802.01483

Plain weight decay pulls every weight towards 0, which forgets the source; L2-SP pulls the pre-trained part towards
its starting point w⁰ instead and keeps ordinary L2 for the new head:

    L = CE(h_t(f(x)), y) + α · Σ_{p ∈ body} ½‖p − p⁰‖² + β · Σ_{p ∈ new head} ½‖p‖²

with f's parameters paired with their starting values by name (stem and stages: convolutions and BatchNorm affine
parameters; BN running statistics are buffers and do not enter). Weight decay is switched off for this method (its
penalty replaces it), as in TLlib's example (``--wd`` 0).

Defaults (TLlib ``examples/task_adaptation/image_classification/delta.py --regularization-type l2_sp``, the peer
implementation of the authors' group): α = ``trade_off_backbone`` = 0.01, β = ``trade_off_head`` = 0.01. The
L2-SP paper chooses α and β per target by cross-validation (its values are not transcribed here).
Shapes: x [B, C, H, W] → features [B, D] → logits [B, N_t].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from transferlab.config import ConfigError, OptimConfig
from transferlab.methods.base import METHODS, Method
from transferlab.methods.regularizers import l2_penalty, sp_penalty
from transferlab.models import Backbone
from transferlab.tasks import Task


def check_trade_offs(cfg) -> None:
    for name in ("trade_off_backbone", "trade_off_head"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name}={getattr(cfg, name)} must be >= 0")


def without_weight_decay(groups: list[dict]) -> list[dict]:
    """The same groups with weight decay 0 (the method's own penalty replaces it)."""
    return [{**g, "weight_decay": 0.0} for g in groups]


@METHODS.register("l2sp")
class L2SP(Method):
    name = "l2sp"
    paper = "Explicit Inductive Bias for Transfer Learning with Convolutional Networks (ICML 2018)"

    @dataclass(frozen=True)
    class Config:
        trade_off_backbone: float = 0.01  # α: TLlib delta.py --trade-off-backbone default
        trade_off_head: float = 0.01  # β: TLlib delta.py --trade-off-head default

        def __post_init__(self) -> None:
            check_trade_offs(self)

    def __init__(self, backbone: Backbone, task: Task, cfg: L2SP.Config):
        super().__init__(backbone, task, cfg)
        # w⁰, recomputed from the same weights at every build, so not saved in checkpoints
        for i, p in enumerate(backbone.body_parameters()):
            self.register_buffer(f"start_{i}", p.detach().clone(), persistent=False)

    def starting_point(self) -> list[torch.Tensor]:
        return [getattr(self, f"start_{i}") for i in range(len(self.backbone.body_parameters()))]

    def param_groups(self, optim: OptimConfig) -> list[dict]:
        return without_weight_decay(super().param_groups(optim))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.backbone(x)
        ce = F.cross_entropy(logits, y)
        sp = sp_penalty(self.backbone.body_parameters(), self.starting_point())
        head = l2_penalty(self.backbone.head.parameters())
        loss = ce + self.cfg.trade_off_backbone * sp + self.cfg.trade_off_head * head
        return {"loss": loss, "ce": ce, "l2_sp": sp, "l2_head": head, "logits": logits}
