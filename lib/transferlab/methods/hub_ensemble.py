"""Two multi-model baselines of a model hub: the ensemble of the fine-tuned hub models, and one linear head on their
concatenated frozen features.

Context: these are the hub baselines of Zoo-Tuning (Shu et al., ICML 2021,
http://proceedings.mlr.press/v139/shu21b.html) and Hub-Pathway (Shu et al., NeurIPS 2022). Their exact baseline
settings were **not verified** (``shared/docs/papers/zoo_tuning.md`` §6, ``hub_pathway.md`` §3): every default below
is ours or the cited classic paper's, never a setting read from those papers.

The hub is named by ``pretrained = "hub:<name>"``; its K models f_i (in hub order, architectures may differ) are
loaded by :func:`hub_members`, each with a new head h_i: Linear(D_i, N) initialised N(0, 0.01), bias 0
(:func:`~transferlab.models.init_head`, the new-head initialisation of the official Zoo-Tuning code). The run's
``backbone`` must be one of the hub's architectures: it labels the results.

``ensemble`` (:class:`HubEnsemble`) — K fine-tunings sharing one data stream. For a batch x [B, C, H, W], y [B]:

    z_i = h_i(f_i(x)) ∈ [B, N],        L = Σ_i CE(z_i, y)

L couples nothing: ∂L/∂θ_i = ∂CE(z_i, y)/∂θ_i, and SGD / Adam update every parameter from its own gradient only, so
one optimiser over all members is exactly K separate fine-tunings with the run's optimisation config (bodies at the
base lr, heads at ``head_lr_mult`` ×). Each CE is logged as ``ce_<i>`` (hub order). Prediction:

    combine="prob"   (default):  log (1/K) Σ_i softmax(z_i)     averaged probabilities, the deep-ensemble rule
                                                                 (Lakshminarayanan et al. 2017, arXiv 1612.01474)
    combine="logits":            (1/K) Σ_i z_i                   averaged logits

The log keeps the arg-max of the averaged probabilities and makes ``evaluate``'s cross-entropy the ensemble's
negative log-likelihood. Model selection (``fit``'s best validation step) is on the ensemble's prediction: one step
for all members, not each member at its own best step (ours; the papers' rule was not read).

``feature_concat`` (:class:`FeatureConcat`) — a linear probe on the whole hub. Every body is frozen (no gradient,
BatchNorm always in inference mode, so its running statistics never move); only one new head is trained:

    φ(x) = [n(f_1(x)); …; n(f_K(x))] ∈ [B, Σ_i D_i],      logits = W φ(x) + b,  W ∈ [N, Σ_i D_i]

with n(f) = √D_i · f / ‖f‖₂ (``normalize=True``, the default, ours) or n(f) = f. Why: hub models trained for
different objectives (supervised, MoCo, detection with frozen BN) need not give pooled features of one scale, and
without it the largest-scale member dominates the logits and the head's effective learning rate; the √D_i factor gives every member unit root-mean-square per coordinate, about the scale a trained model's
pooled features already have (0.88 for the v1 mini hub's supervised Fashion-MNIST model), so the run's head lr acts
as in single-model fine-tuning. Unit norm instead would shrink each coordinate by √D_i (~45× at D = 2048) and slow
SGD on a N(0, 0.01) head by as much. It is stateless and per sample: nothing is estimated from the training set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.config import ConfigError, RunConfig
from transferlab.methods.base import METHODS, VISION, Method, method_config
from transferlab.methods.hubs import check_hub_backbone, hub_artifacts, hub_members
from transferlab.tasks import Task
from transferlab.tasks.classification import COMBINE

if TYPE_CHECKING:
    pass

PAPERS = (
    "hub baseline of Zoo-Tuning (ICML 2021, http://proceedings.mlr.press/v139/shu21b.html) and Hub-Pathway "
    "(NeurIPS 2022); settings ours (not verified against either paper)"
)


@METHODS.register("ensemble")
class HubEnsemble(Method):
    name = "ensemble"
    paper = PAPERS
    tasks = VISION
    weights = "hub"
    saves_weights = True  # its selected weights are distillation's teacher (methods/hub_distill.py)

    @dataclass(frozen=True)
    class Config:
        # "prob": log of the mean softmax (deep ensembles, ours); "logits": mean logits (classification; other
        # tasks average their outputs)
        combine: str = "prob"

        def __post_init__(self) -> None:
            if self.combine not in COMBINE:
                raise ConfigError(
                    f"combine={self.combine!r} is not valid; choose one of: {', '.join(COMBINE)}"
                )

    def __init__(self, members: nn.ModuleList, task: Task, cfg: HubEnsemble.Config, hub_name: str = ""):
        super().__init__(members, task, cfg)  # self.backbone[i]: member i, a Backbone
        self.hub_name = hub_name

    @classmethod
    def check(cls, run: RunConfig) -> None:
        super().check(run)
        check_hub_backbone(run, cls.name)

    @classmethod
    def build(cls, run: RunConfig, task: Task) -> Method:
        cfg = method_config(run.method, run.method_params)
        hub, members = hub_members(run, task)
        return cls(members, task, cfg, hub.name)

    def new_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.backbone for p in m.head.parameters()]

    def member_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """z_i = h_i(f_i(x)), each [B, N], in hub order."""
        return [m(x) for m in self.backbone]

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.member_logits(x)
        ces = [self.task.loss(z, y) for z in logits]
        out = {f"ce_{i}": ce for i, ce in enumerate(ces)}
        combined = self.task.combine([z.detach() for z in logits], self.cfg.combine)
        return {"loss": torch.stack(ces).sum(), **out, "logits": combined}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.task.combine(self.member_logits(x), self.cfg.combine)

    @torch.no_grad()
    def member_accuracies(self, batches) -> list[float]:
        """Top-1 (%) of each member alone over ``batches`` of (x [B, C, H, W], y [B]), in hub order."""
        correct, n = torch.zeros(len(self.backbone)), 0
        for x, y in batches:
            for i, z in enumerate(self.member_logits(x)):
                correct[i] += (z.argmax(1) == y).sum().item()
            n += len(y)
        return (100.0 * correct / max(n, 1)).tolist()

    def artifacts(self) -> dict:
        return {**hub_artifacts(self.hub_name, self.backbone), "combine": self.cfg.combine}


@METHODS.register("feature_concat")
class FeatureConcat(Method):
    name = "feature_concat"
    paper = PAPERS
    weights = "hub"

    @dataclass(frozen=True)
    class Config:
        normalize: bool = (
            True  # each member's feature to unit RMS per coordinate, √D·f/‖f‖ (ours; module docstring)
        )

    def __init__(self, members: nn.ModuleList, task: Task, cfg: FeatureConcat.Config, hub_name: str = ""):
        super().__init__(members, task, cfg)
        self.hub_name = hub_name
        self.dims = [m.feature_dim for m in members]
        for m in members:
            m.head = nn.Identity()  # only the pooled features are used: m(x) = f_m(x) [B, D_m]
        members.requires_grad_(False).eval()
        self.head = task.head(sum(self.dims))

    @classmethod
    def check(cls, run: RunConfig) -> None:
        super().check(run)
        check_hub_backbone(run, cls.name)

    @classmethod
    def build(cls, run: RunConfig, task: Task) -> Method:
        cfg = method_config(run.method, run.method_params)
        hub, members = hub_members(run, task)
        return cls(members, task, cfg, hub.name)

    def train(self, mode: bool = True) -> FeatureConcat:
        super().train(mode)
        self.backbone.eval()  # frozen bodies: BatchNorm in inference mode whatever the head does
        return self

    def new_parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x) [B, Σ_i D_i]: the members' pooled features (each rescaled to unit RMS if ``normalize``), concatenated."""
        feats = [m(x) for m in self.backbone]
        if self.cfg.normalize:
            feats = [F.normalize(f.float(), dim=1) * math.sqrt(f.shape[1]) for f in feats]
        return torch.cat(feats, dim=1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.predict(x)
        return {"loss": self.task.loss(logits, y), "logits": logits}

    def artifacts(self) -> dict:
        return {
            **hub_artifacts(self.hub_name, self.backbone),
            "feature_dims": self.dims,
            "normalize": self.cfg.normalize,
        }
