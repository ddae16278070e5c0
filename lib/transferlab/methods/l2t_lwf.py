"""LwF as the baseline of L2T-ww's tables: a target of another architecture, trained from scratch, that keeps the
source's answers (Li & Hoiem, ECCV 2016, https://arxiv.org/abs/1606.09282; the row of Jang et al., ICML 2019,
http://proceedings.mlr.press/v97/jang19b.html).

L2T-ww's targets (VGG9-BN, ResNet-18) do not start from the source network (ResNet-32, ResNet-34), so LwF's usual
form — fine-tune the source and keep its old head (``methods/lwf.py``) — does not apply. What carries over is LwF's
loss: the target network g gets, besides its new head h_t, an "old-task" head h_o with the source's label space, and
h_o ∘ g is trained to reproduce the frozen source network's outputs f_s on the target images:

    L = CE(h_t(g(x)), y) + λ · KD_T(h_o(g(x)), f_s(x))

KD_T is :func:`transferlab.methods.regularizers.kd_loss` (KL of the softened distributions, batch mean, × T² when
``t_squared``). Shapes: x [B, C, H, W] → g(x) [B, D] → target logits [B, N_t], old-task logits [B, N_s] (N_s = 200 for
the TinyImageNet ResNet-32, 1000 for ImageNet ResNet-34, the mini hub model's head otherwise).

How the L2T-ww paper configured its LwF row is not known (no code for it in alinlab/L2T-ww, table not read:
``shared/docs/papers/l2t_ww.md`` §7). Defaults are the LwF paper's: T = 2 and λ = 1 (λ_o), with Hinton's T² factor.
h_o is new (N(0, 0.01), bias 0) and, like the rest of the target, trained at the base lr; the source, the setting and
its checkpoint are chosen as for L2T-ww (:mod:`transferlab.methods.l2t_ww_setup`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.config import ConfigError, RunConfig
from transferlab.methods.base import METHODS, Method, method_config
from transferlab.methods.l2t_ww_setup import FrozenSource, load_source, resolve, source_assets
from transferlab.methods.regularizers import kd_loss
from transferlab.models import Backbone, build_backbone, init_head
from transferlab.refs import WeightsRef
from transferlab.tasks import Task


@METHODS.register("l2t_lwf")
class L2TLwF(Method):
    name = "l2t_lwf"
    paper = "Learning without Forgetting (ECCV 2016), as a baseline of L2T-ww (ICML 2019)"
    weights = "forbidden"  # the target trains from scratch; the source is Config.source

    @dataclass(frozen=True)
    class Config:
        source: str = "auto"  # as l2t_ww: l2t_resnet32 | resnet34 | mini:<hub model> | auto (by target)
        source_checkpoint: str = ""  # l2t_resnet32 file (as l2t_ww)
        temperature: float = 2.0  # T: the LwF paper
        trade_off: float = 1.0  # λ_o: the LwF paper
        t_squared: bool = True  # Hinton's T² scaling

        def __post_init__(self) -> None:
            if self.temperature <= 0 or self.trade_off < 0:
                raise ConfigError(
                    f"temperature={self.temperature} must be > 0 and trade_off={self.trade_off} >= 0"
                )

    def __init__(self, backbone: Backbone, task: Task, cfg: L2TLwF.Config, source: FrozenSource):
        super().__init__(backbone, task, cfg)
        self.source = source
        self.old_head = init_head(nn.Linear(backbone.feature_dim, source.num_classes))
        self.source_name = ""

    @classmethod
    def check(cls, run: RunConfig) -> None:
        super().check(run)
        resolve(
            method_config(run.method, run.method_params).source, run.backbone
        )  # ConfigError listing settings

    @classmethod
    def assets(cls, run: RunConfig) -> list[WeightsRef]:
        return source_assets(method_config(run.method, run.method_params).source, run.backbone)

    @classmethod
    def build(cls, run: RunConfig, task: Task) -> Method:
        cfg = method_config(run.method, run.method_params)
        source, _ = resolve(cfg.source, run.backbone)
        target = build_backbone(run.backbone, run.weights, data_root=run.data.data_root)
        target.reset_head(task.outputs, keep_source=False)
        method = cls(target, task, cfg, load_source(source, cfg.source_checkpoint, run.data.data_root))
        method.source_name = source
        return method

    def artifacts(self) -> dict:
        return {"l2t_source": self.source_name, "old_task_classes": self.source.num_classes}

    def new_parameters(self) -> list[nn.Parameter]:
        return []  # the whole target is new (from scratch): one group at the base lr, as in L2T-ww's rows

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.backbone.features(x)
        logits = self.backbone.head(f)
        ce = F.cross_entropy(logits, y)
        teacher = self.source.logits(x)  # no_grad, eval mode
        c = self.cfg
        kd = kd_loss(self.old_head(f).float(), teacher.float(), c.temperature, c.t_squared)
        return {"loss": ce + c.trade_off * kd, "ce": ce, "kd": kd, "logits": logits}
