"""L2T-ww and its feature-transfer baselines: L2T-w, FM, AT (Jang, Lee, Hwang, Shin; ICML 2019).

http://proceedings.mlr.press/v97/jang19b.html — official code alinlab/L2T-ww (MIT), ``train_l2t_ww.py``.

A frozen source network (eval mode) and a target network trained **from scratch**; per candidate pair (m, n) a 1×1
conv r^{m,n} maps target map T^n to the source map S^m's channels (:mod:`transferlab.methods.matching`). Target loss

    L_total(θ | x, y, φ) = CE(T_θ(x), y) + L_wfm(θ | x, φ),   L_wfm = β Σ_{(m,n)} mean_b λ^{m,n}_b Σ_c w^{m,n}_{b,c} d^{m,n}_{b,c}

with θ = target network + the convs r, φ = the "what" (w, :class:`ChannelWeights`) and "where" (λ,
:class:`PairWeights`) meta-networks. Rows: ``l2t_ww`` (w and λ), ``l2t_w`` (w only), ``fm`` (neither: mean over
channels, no meta-learning), ``at`` (attention transfer on equal-size pairs, no convs, no meta-learning).

Per batch (the official ``main``, meta methods; :meth:`L2TWW.train_step`):

1. a real SGD step on L_total with φ's outputs as constants (fit's optimizer; the official code discards this
   step's φ gradients with ``source_optimizer.zero_grad()``);
2. look-ahead from (θ_0, v_0) = the state after step 1, held constant: T steps on L_wfm alone, then one on CE
   alone — SGD with the optimizer's lr / momentum / weight decay (:mod:`transferlab.methods.meta_grad`);
3. ∇_φ CE(θ_{T+1}(φ)) through the T + 1 look-ahead steps; one Adam step on φ (lr 1e-4, L2 weight decay 1e-4);
4. rollback: θ and the momentum buffers stay at their post-step-1 values (the look-ahead is functional and never
   writes them). BN running statistics: ``bn_stats="official"`` keeps the one extra update the official
   ``meta_backward`` re-run makes at θ_0 (``num_batches_tracked`` +2 per batch); ``"clean"`` restores them.

The target thus takes T + 2 SGD steps per batch, one of them real. φ's Adam state is kept as buffers
(:class:`~transferlab.methods.meta_grad.MetaAdam`), so fit()'s checkpoint holds it and a resumed run is exact.
Differences from the official code: the ImageNet ResNet's feature 0 here is after the max-pool (56², not 112²) —
unused by the default pairs 1..4. Settings (source, target, pairs), including the mini one (mini hub ResNet-8 →
``mini_vgg``): :mod:`transferlab.methods.l2t_ww_setup`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from transferlab.config import ConfigError, OptimConfig, RunConfig
from transferlab.methods.base import METHODS, Method, method_config
from transferlab.methods.l2t_ww_setup import FrozenSource, Setting, load_source, resolve, source_assets
from transferlab.methods.matching import (
    ChannelWeights,
    FeatureMatching,
    Pair,
    PairWeights,
    attention_transfer_loss,
    parse_pairs,
)
from transferlab.methods.meta_grad import MetaAdam, hypers_from_optimizer, unrolled_meta_gradient
from transferlab.models import Backbone, build_backbone
from transferlab.refs import WeightsRef
from transferlab.tasks import Task


@METHODS.register("l2t_ww")
class L2TWW(Method):
    name = "l2t_ww"
    weights = "forbidden"  # the target trains from scratch; the source is the method's own (Config.source)
    paper = "Learning What and Where to Transfer (ICML 2019), http://proceedings.mlr.press/v97/jang19b.html"
    channel_weights, pair_weights, meta, uses_convs = True, True, True, True  # what the row uses

    @dataclass(frozen=True)
    class Config:
        source: str = (
            "auto"  # l2t_resnet32 | resnet34 | mini:<hub model> | auto: by target (methods/l2t_ww_setup.py)
        )
        source_checkpoint: str = (
            ""  # l2t_resnet32 file; empty: $TRANSFERLAB_WEIGHTS_DIR/l2t_ww_tinyimagenet_resnet32.pth.tar
        )
        pairs: str = "auto"  # "m-n,…" or auto: the setting's pairs (15 CIFAR, 16 ImageNet, 12 mini)
        beta: float = 0.5  # β: train_l2t_ww.py --beta
        T: int = 2  # matching-only look-ahead steps: --T
        meta_lr: float = 1e-4  # Adam lr of φ: --meta-lr (1e-3 for Stanford 40, authors in issue #4)
        meta_wd: float = 1e-4  # Adam (L2) weight decay of φ: --meta-wd
        pair_weight_type: str = "relu6"  # --loss-weight-type: relu6 | relu | relu-avg | const
        pair_weight_init: float = 1.0  # bias of the pair-weight linears: --loss-weight-init
        bn_stats: str = "official"  # official: keep the meta re-run's BN update (MetaSGD) | clean: restore

        def __post_init__(self) -> None:
            if self.T < 0 or self.beta < 0 or self.meta_lr < 0:
                raise ConfigError(f"T={self.T}, beta={self.beta}, meta_lr={self.meta_lr} must be >= 0")
            if self.bn_stats not in ("official", "clean"):
                raise ConfigError(f"bn_stats={self.bn_stats!r} is not valid; choose official or clean")

    def __init__(
        self,
        backbone: Backbone,
        task: Task,
        cfg: L2TWW.Config,
        source: nn.Module,
        pairs: tuple[Pair, ...],
        source_widths: tuple[int, ...],
        target_widths: tuple[int, ...],
    ):
        super().__init__(backbone, task, cfg)
        self.source, self.pairs = source, tuple(pairs)
        self.matching = FeatureMatching(pairs, source_widths, target_widths) if self.uses_convs else None
        self.wnet = ChannelWeights(pairs, source_widths) if self.channel_weights else None
        kind, init = cfg.pair_weight_type, cfg.pair_weight_init
        self.lwnet = PairWeights(pairs, source_widths, kind, init) if self.pair_weights else None
        self.source_name = ""  # set by build(); recorded in the run's metrics.json (artifacts)
        if self.meta:  # Adam on φ with its state as buffers, so fit()'s checkpoint holds it (resume is exact)
            self.meta_optimizer = MetaAdam(self.meta_parameters(), lr=cfg.meta_lr, weight_decay=cfg.meta_wd)

    @classmethod
    def default_pairs(cls, setting: Setting) -> tuple[Pair, ...]:
        return setting.pairs

    @classmethod
    def check(cls, run: RunConfig) -> None:
        super().check(run)
        cfg = method_config(run.method, run.method_params)
        _, setting = resolve(cfg.source, run.backbone)  # ConfigError listing the supported settings
        if cfg.pairs != "auto":
            parse_pairs(cfg.pairs)
        if cls.meta and (run.optim.optimizer != "sgd" or run.optim.nesterov):
            raise ConfigError(f"{cls.name}'s look-ahead steps replay plain momentum SGD (as train_l2t_ww.py): set "
                              f"optimizer=sgd and nesterov=false (got {run.optim.optimizer}, nesterov="
                              f"{run.optim.nesterov})")  # fmt: skip

    @classmethod
    def assets(cls, run: RunConfig) -> list[WeightsRef]:
        cfg = method_config(run.method, run.method_params)
        return source_assets(cfg.source, run.backbone)

    @classmethod
    def build(cls, run: RunConfig, task: Task) -> Method:
        """Target ``run.backbone`` from scratch, the setting's frozen source (methods/l2t_ww_setup.py), pairs."""
        cfg = method_config(run.method, run.method_params)
        source, setting = resolve(cfg.source, run.backbone)
        pairs = cls.default_pairs(setting) if cfg.pairs == "auto" else parse_pairs(cfg.pairs)
        target = build_backbone(run.backbone, run.weights, data_root=run.data.data_root)
        target.reset_head(task.outputs, keep_source=False)
        net = load_source(source, cfg.source_checkpoint, run.data.data_root)
        method = cls(target, task, cfg, net, pairs, setting.source_widths, setting.target_widths)
        method.source_name = source
        return method

    def artifacts(self) -> dict:
        """What fit() adds to the result's ``extra``: the source used and its checksum, the pairs."""
        net = self.source.net
        return {
            "l2t_source": self.source_name,
            "l2t_source_sha256": net.weights_sha256 if isinstance(net, Backbone) else None,
            "l2t_pairs": ",".join(f"{m}-{n}" for m, n in self.pairs),
        }

    # ------------------------------------------------------------------------------------------------ parameters
    def meta_parameters(self) -> list[nn.Parameter]:
        return [p for m in (self.wnet, self.lwnet) if m is not None for p in m.parameters()]

    def target_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """θ: the target network and the 1×1 convs (everything fit()'s optimizer trains)."""
        skip = ("source.", "wnet.", "lwnet.")
        return [(k, p) for k, p in self.named_parameters() if p.requires_grad and not k.startswith(skip)]

    def new_parameters(self) -> list[nn.Parameter]:
        return []  # the whole target is new (trained from scratch): one group at the base lr

    def param_groups(self, optim: OptimConfig) -> list[dict]:
        return [{"params": [p for _, p in self.target_named_parameters()], "lr_mult": 1.0, "name": "target"}]

    # ------------------------------------------------------------------------------------------------ losses
    def forward(self, x, source_feats=None, weights=None, pair_weights=None):
        """(target logits, transfer loss or None): the function of θ that the look-ahead steps differentiate."""
        maps = self.backbone.feature_maps(x)
        logits = self.backbone.head(self.backbone.pool(maps[-1]))
        if source_feats is None:
            return logits, None
        return logits, self.transfer_loss(source_feats, maps, weights, pair_weights)

    def transfer_loss(self, source_feats, target_feats, weights, pair_weights) -> torch.Tensor:
        return self.matching(source_feats, target_feats, weights, pair_weights, beta=self.cfg.beta)

    def meta_weights(self, source_feats):
        w = self.wnet(source_feats) if self.wnet is not None else None
        return w, (self.lwnet(source_feats) if self.lwnet is not None else None)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        src = self.source(x)
        with torch.no_grad():
            w, lam = self.meta_weights(src)
        logits, transfer = self(x, src, w, lam)
        ce = F.cross_entropy(logits, y)
        return {"loss": ce + transfer, "ce": ce, "transfer": transfer, "logits": logits}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)[0]

    # ------------------------------------------------------------------------------------------------ the step
    def train_step(self, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> dict:
        out = super().train_step(x, y, optimizer)  # 1. the real step on CE + L_wfm (φ's outputs constant)
        if self.meta:
            out["meta_outer_ce"] = self.meta_step(x, y, optimizer)
        return out

    def meta_step(self, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """2–4: the look-ahead from the post-step-1 state, ∇_φ, one Adam step on φ; θ and momentum untouched."""
        names, params = zip(*self.target_named_parameters())
        hypers, bufs = hypers_from_optimizer(optimizer, params)
        bn_before = self._bn_state()
        bn_after_first: list = []
        with self.autocast():
            src = self.source(x)
            w, lam = self.meta_weights(src)  # φ's outputs, with gradient to φ

        def run(theta, with_transfer: bool):
            with self.autocast():
                logits, transfer = functional_call(
                    self, dict(zip(names, theta)), (x, src if with_transfer else None, w, lam)
                )
            if not bn_after_first:  # the forward at θ_0: the official meta_backward's last re-run
                bn_after_first.append(self._bn_state())
            if with_transfer:
                return transfer
            # upcast only half precision (as matching_distance does): a float64 run keeps float64 meta-gradients
            low = logits.dtype in (torch.float16, torch.bfloat16)
            return F.cross_entropy(logits.float() if low else logits, y)

        steps = [lambda th: run(th, True)] * self.cfg.T + [lambda th: run(th, False)]
        res = unrolled_meta_gradient(
            params, bufs, hypers, steps, lambda th: run(th, False), self.meta_parameters()
        )
        self._load_bn_state(bn_after_first[0] if self.cfg.bn_stats == "official" else bn_before)
        self.meta_optimizer.step([g.detach() for g in res.meta_grads])
        self.last_meta_grads = [g.detach() for g in res.meta_grads]  # for tests and diagnostics
        return res.outer_loss

    def _bn_state(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.backbone.named_buffers()}

    @torch.no_grad()
    def _load_bn_state(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in self.backbone.named_buffers():
            v.copy_(state[k])


@METHODS.register("l2t_w")
class L2TW(L2TWW):
    """L2T-w: "what" only — channel weights w learned by the same meta-step, no pair weights (λ ≡ 1)."""

    name = "l2t_w"
    pair_weights = False


@METHODS.register("fm")
class FM(L2TWW):
    """FM: unweighted feature matching over the same pairs (mean over channels), no meta-learning."""

    name = "fm"
    channel_weights, pair_weights, meta = False, False, False


@METHODS.register("at")
class AT(L2TWW):
    """AT: attention transfer on the pairs of equal spatial size (no 1×1 convs, no meta-learning).

    ``pairs="auto"`` keeps, of the setting's candidate pairs, one per target resolution where the source map has the
    same size: CIFAR (4,0), (9,1), (14,2); ImageNet (1,1), (2,2), (3,3), (4,4); mini (1,1), (2,2), (3,3) — transferlab's choice, the paper's AT
    pairs are not known. β is AT's own (1e3, Zagoruyko & Komodakis 2017), not L2T-ww's 0.5.
    """

    name = "at"
    channel_weights, pair_weights, meta, uses_convs = False, False, False, False

    @dataclass(frozen=True)
    class Config(L2TWW.Config):
        beta: float = 1e3  # AT's β (szagoruyko/attention-transfer), applied as β/2 · Σ pairs
        pairs: str = "auto"  # auto: the equal-size pairs listed in the class docstring

    @classmethod
    def default_pairs(cls, setting: Setting) -> tuple[Pair, ...]:
        return setting.at_pairs

    def transfer_loss(self, source_feats, target_feats, weights, pair_weights) -> torch.Tensor:
        return attention_transfer_loss(source_feats, target_feats, self.pairs, beta=self.cfg.beta)


__all__ = ["AT", "FM", "L2TW", "L2TWW", "FrozenSource"]  # FrozenSource: re-exported from l2t_ww_setup
