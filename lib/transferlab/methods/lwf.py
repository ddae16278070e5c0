"""LwF, Learning without Forgetting (Li & Hoiem; ECCV 2016 / TPAMI 2017): keep the source head's answers.

https://arxiv.org/abs/1606.09282

The kept source head h_s (the old task's classifier) is trained jointly with the new head h_t, and its outputs on
the target images are distilled from those of the original network (f⁰, h_s⁰), frozen:

    L = CE(h_t(f(x)), y) + λ · KD_T(h_s(f(x)), h_s⁰(f⁰(x)))

KD_T is :func:`transferlab.methods.regularizers.kd_loss`: KL(softmax(z⁰/T) ‖ softmax(z/T)), batch mean, × T².

Defaults and how they relate to the peer implementation (TLlib ``examples/task_adaptation/image_classification/
lwf.py``, the numbers beside ours in the report):

- T = 3 and λ = 4: TLlib's defaults (the LwF paper uses T = 2, λ = 1 for its own experiments).
- ``t_squared=True``: Hinton et al.'s T² factor, the intent of distillation; TLlib's loss omits it (``False``).
- ``train_source_head=True``: the paper optimises the old-task head θ_o jointly; TLlib's ``get_parameters`` leaves
  it out of the optimiser, so it never changes (``False`` reproduces that).
- The teacher is a frozen copy of the original network run on the same augmented batch, i.e. the "recorded responses
  y_o" of the paper for exactly the images the student sees. TLlib records them once before training on one
  augmentation of each image and pairs them with later, differently augmented views.
- Not implemented: the paper's optional warm-up (training the new head alone first); TLlib has none either.

Shapes: x [B, C, H, W] → features [B, D] → target logits [B, N_t], source logits [B, N_p].
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from transferlab.config import ConfigError, OptimConfig
from transferlab.methods.base import METHODS, Method
from transferlab.methods.regularizers import kd_loss
from transferlab.models import Backbone
from transferlab.tasks import Task


@METHODS.register("lwf")
class LwF(Method):
    name = "lwf"
    paper = "Learning without Forgetting (ECCV 2016, TPAMI 2017)"
    uses_source_head = True

    @dataclass(frozen=True)
    class Config:
        temperature: float = 3.0  # T: TLlib lwf.py -T default (LwF paper: 2)
        trade_off: float = 4.0  # λ: TLlib lwf.py --trade-off default (LwF paper: 1)
        t_squared: bool = True  # Hinton's T² scaling; False = TLlib's loss
        train_source_head: bool = True  # the paper trains θ_o; False = TLlib (never updated)

        def __post_init__(self) -> None:
            if self.temperature <= 0:
                raise ConfigError(f"temperature={self.temperature} must be > 0")
            if self.trade_off < 0:
                raise ConfigError(f"trade_off={self.trade_off} must be >= 0")

    def __init__(self, backbone: Backbone, task: Task, cfg: LwF.Config):
        super().__init__(backbone, task, cfg)
        teacher = copy.deepcopy(backbone)
        teacher.head = teacher.source_head  # the original network: pre-trained body and source classifier
        teacher.source_head = None
        self.teacher = teacher.requires_grad_(False).eval()
        backbone.source_head.requires_grad_(cfg.train_source_head)

    def train(self, mode: bool = True) -> LwF:
        super().train(mode)
        self.teacher.eval()  # frozen, BN in inference mode, whatever the student does
        return self

    def param_groups(self, optim: OptimConfig) -> list[dict]:
        frozen = {id(p) for p in self.teacher.parameters()}
        groups = super().param_groups(optim)
        return [g for g in ({**g, "params": [p for p in g["params"] if id(p) not in frozen]} for g in groups)
                if g["params"]]  # fmt: skip

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.backbone.features(x)
        logits = self.backbone.head(f)
        ce = F.cross_entropy(logits, y)
        with torch.no_grad():
            teacher = self.teacher(x)
        c = self.cfg
        kd = kd_loss(self.backbone.source_head(f).float(), teacher.float(), c.temperature, c.t_squared)
        return {"loss": ce + c.trade_off * kd, "ce": ce, "kd": kd, "logits": logits}
