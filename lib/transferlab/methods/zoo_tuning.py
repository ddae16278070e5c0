"""Zoo-Tuning and lite Zoo-Tuning (Shu, Kou, Cao, Wang, Long; ICML 2021): one target model aggregated from a zoo.

http://proceedings.mlr.press/v139/shu21b.html (arXiv 2106.15434); semantics from the official code thuml/Zoo-Tuning
@ c5975f6 as described in ``shared/docs/papers/zoo_tuning.md`` §3–5 (this is an independent implementation).

The K source models of a hub (one architecture, expert order = hub order) become one ResNet whose every conv is an
:class:`~transferlab.models.zoo.AdaptiveAggregationConv` (built by
:func:`~transferlab.models.zoo_build.build_zoo_resnet`). For a layer with input x_b [C_in, H, W] of sample b:

    a_b = σ(V · relu(U · GAP(x_b)) + c) ∈ (0, 1)^K,    Ŵ_b = Σ_k a_{b,k} · A_k W_k,    y_b = conv2d(x_b, Ŵ_b)

W_k [C_out, C_in, k, k] are the source kernels (all fine-tuned), A_k [C_out, C_out] the channel alignment
(identity at init; official placement: stem, layer3, layer4, kernels > 1×1 only), a [B, K] independent sigmoid
gates. BatchNorm is one layer per position with the sources' averaged affine parameters. The pooled feature
[B, D] goes to a new head Linear(D, N_t) (N(0, 0.01), bias 0). Loss: plain cross-entropy (official ``main.py``; no
regulariser, distillation or balancing term).

Lite (``zoo_tuning_lite``): in training every sample uses the batch-mean gate ā and a buffer keeps the EMA
ē ← 0.9·ē + 0.1·ā (ē₀ = 0); in eval mode ē is the gate, so the kernels are fixed and :meth:`ZooTuningLite.collapse`
turns the model into ordinary convolutions (official quirk: downsample 1×1 convs stay per-sample unless
``lite_downsample``).

Learning rates (official ``main.py``): every backbone parameter — the source kernels, the gates, the alignment
matrices, BN — is trained at the base lr 0.01, only the head at 0.01 × ``--ratio`` (1.0 by default). So, although
the gates and alignment are newly initialised, :meth:`new_parameters` is the head only, as in the official code.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from transferlab.config import ConfigError, RunConfig
from transferlab.methods.base import METHODS, VISION, Method, method_config
from transferlab.methods.hubs import check_hub_backbone, hub_of
from transferlab.models import Backbone
from transferlab.models.zoo import GATE_INITS, AdaptiveAggregationConv, collapse_lite
from transferlab.models.zoo_build import OFFICIAL_ALIGN, build_zoo_resnet
from transferlab.tasks import Task

PAPER = "Zoo-Tuning: Adaptive Transfer from a Zoo of Models (ICML 2021), http://proceedings.mlr.press/v139/shu21b.html"


@METHODS.register("zoo_tuning")
class ZooTuning(Method):
    name = "zoo_tuning"
    paper = PAPER
    tasks = VISION
    weights = "hub"
    lite = False

    @dataclass(frozen=True)
    class Config:
        # module-name prefixes whose convs request channel alignment (effective for kernels > 1×1 only):
        # official module/backbone.py passes align=True to conv1, layer3, layer4 only; comma-separated ("" = off; a
        # string because the config layer coerces tuples to ints)
        align_in: str = ",".join(OFFICIAL_ALIGN)
        # BN running statistics at the start: "reset" (official loader: mean 0, var 1) or "average" (of the sources)
        bn_stats: str = "reset"
        # how each gate's output layer starts (models/zoo.py GATE_INITS): "official" (Kaiming: per-sample gates
        # scattered around 0.5), "uniform" (zeroed: every gate 0.5), "biased" (zeroed, bias logit(1/K): every gate
        # 1/K, the aggregated kernel starts as the sources' mean) — the last two are transferlab's options
        gate_init: str = "official"

        def __post_init__(self) -> None:
            if self.bn_stats not in ("reset", "average"):
                raise ConfigError(f"bn_stats={self.bn_stats!r} must be 'reset' or 'average'")
            if self.gate_init not in GATE_INITS:
                raise ConfigError(
                    f"gate_init={self.gate_init!r} is not valid; choose one of: {', '.join(GATE_INITS)}"
                )

    def __init__(self, backbone: Backbone, task: Task, cfg, hub_name: str, experts: list[str]):
        super().__init__(backbone, task, cfg)
        self.hub_name, self.experts = hub_name, list(experts)

    @classmethod
    def check(cls, run: RunConfig) -> None:
        super().check(run)
        hub = check_hub_backbone(run, cls.name)
        hub.require_identical_architectures(cls.name)

    @classmethod
    def build(cls, run: RunConfig, task: Task) -> Method:
        cfg = method_config(run.method, run.method_params)
        hub = hub_of(run)
        arch = hub.require_identical_architectures(cls.name)
        sources = list(hub.state_dicts(data_root=run.data.data_root).values())  # hub order = expert order
        net = build_zoo_resnet(
            sources,
            arch,
            task.outputs,
            align_in=[p for p in cfg.align_in.replace(" ", "").split(",") if p],
            bn_stats=cfg.bn_stats,
            lite=cls.lite,
            gate_init=cfg.gate_init,
            **cls._lite_options(cfg),
        )
        backbone = Backbone(net, arch)
        backbone.reset_head(task.head(backbone.feature_dim), keep_source=False, spatial=task.spatial)
        return cls(backbone, task, cfg, hub.name, hub.names())

    @classmethod
    def _lite_options(cls, cfg) -> dict:  # the lite variant's build_zoo_resnet options
        return {}

    def zoo_layers(self) -> list[AdaptiveAggregationConv]:
        return [m for m in self.modules() if isinstance(m, AdaptiveAggregationConv)]

    def gate_values(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every aggregation layer's gates [B, K] on the input batch x (eval mode, no gradient), in layer order."""
        found: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda m, i, o: found.append(m.gates(i[0]).detach()))
                 for m in self.zoo_layers() if not m.lite]  # fmt: skip
        try:
            with torch.no_grad():
                self.predict(x)
        finally:
            for h in hooks:
                h.remove()
        return found

    def artifacts(self) -> dict:
        return {"hub": self.hub_name, "experts": self.experts}

    # loss (the task's loss on the head's outputs), new_parameters (the head) and predict: Method's defaults


@METHODS.register("zoo_tuning_lite")
class ZooTuningLite(ZooTuning):
    name = "zoo_tuning_lite"
    paper = PAPER
    lite = True

    @dataclass(frozen=True)
    class Config(ZooTuning.Config):
        # official ada_agg.py: the downsample convs are built without lite=..., so they stay per-sample; True makes
        # every conv lite and the collapsed model fully ordinary
        lite_downsample: bool = False
        ema_momentum: float = 0.1  # official ada_agg.py: lite_attention ← 0.9·lite_attention + 0.1·batch mean
        # True: the EMA buffer is updated without autograd history (same values, outputs and gradients); False is
        # the official behaviour (the buffer chains every step's graph: memory only, and no deepcopy)
        detach_ema: bool = True

        def __post_init__(self) -> None:
            super().__post_init__()
            if not 0 < self.ema_momentum <= 1:
                raise ConfigError(f"ema_momentum={self.ema_momentum} must be in (0, 1]")

    @classmethod
    def _lite_options(cls, cfg) -> dict:
        return {
            "lite_downsample": cfg.lite_downsample,
            "ema_momentum": cfg.ema_momentum,
            "detach_ema": cfg.detach_ema,
        }

    def collapse(self) -> nn.Module:
        """An ordinary model computing what this one computes in eval mode (the EMA gates): a copy of the backbone
        (in eval mode) whose lite layers are collapsed to ``nn.Conv2d``; the downsample convs stay per-sample
        unless ``lite_downsample``. This model is left unchanged."""
        return collapse_lite(copy.deepcopy(self.backbone).eval())

    def inference_model(self) -> nn.Module:
        return self.collapse()
