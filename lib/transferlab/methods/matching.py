"""Feature matching between a frozen source network and a target network, with learned weights (L2T-ww).

Jang, Lee, Hwang, Shin. *Learning What and Where to Transfer.* ICML 2019.
http://proceedings.mlr.press/v97/jang19b.html — official code alinlab/L2T-ww (MIT), ``train_l2t_ww.py``.

The pieces shared by L2T-ww, L2T-w, FM (unweighted feature matching) and AT (attention transfer). A candidate *pair*
(m, n) matches source feature map S^m [B, C_m, H_m, W_m] with target feature map T^n [B, C_n, H_n, W_n]:

- :class:`FeatureMatching` — per pair a 1×1 conv r^{m,n}: C_n → C_m (with bias, part of the target parameters θ),
  S^m bilinearly resized to T^n's size, and the per-sample, per-channel distance

      d^{m,n}_{b,c} = (1 / (H_n W_n)) Σ_{h,w} ( S^m_{b,c,h,w} − r^{m,n}(T^n)_{b,c,h,w} )²              [B, C_m]

  combined as the official code does, with channel weights w^{m,n} [B, C_m] and pair weights λ^{m,n} [B, 1]:

      none:         ℓ = mean_{b,c} d                   weight:  ℓ = mean_b Σ_c w_{b,c} d_{b,c}
      loss_weight:  ℓ = mean_b λ_b Σ_c d_{b,c}         both:    ℓ = mean_b λ_b Σ_c w_{b,c} d_{b,c}
      L_wfm = Σ_{(m,n)} β · ℓ^{m,n}                     (β = 0.5, the script's ``--beta``)

- :class:`ChannelWeights` — the "what" meta-network: w^{m,n}(x) = softmax_c(A · GAP(S^m(x)) + a), one
  ``Linear(C_m, C_m)`` per pair, zero-initialised so that the weights start uniform at 1/C_m.
- :class:`PairWeights` — the "where" meta-network: λ^{m,n}(x) = ReLU6(b · GAP(S^m(x)) + β₀), one ``Linear(C_m, 1)``
  per pair with its bias initialised to 1 (``--loss-weight-init 1.0``), weight at PyTorch's default init. The
  official alternatives ``relu``, ``relu-avg`` (input divided by C_m) and ``const`` (softplus(10 v_i), one learnable
  scalar per pair, not input-dependent) are options.
- :func:`attention_transfer_loss` — AT (Zagoruyko & Komodakis, ICLR 2017, https://arxiv.org/abs/1612.03928) over
  the same pairs: the L2-normalised spatial map Q = mean_c A_c² of each side, mean squared difference.

Meta-networks read the global-average-pooled source map (GAP: mean over H, W → [B, C_m]). In training the source
maps are computed without gradient; these modules do not detach them, so that their gradients can be checked.
Feature lists are indexed by layer index: a list, or a dict ``{m: tensor}`` holding at least the paired indices.
Golden tests against the official code: ``tests/test_l2t_parts.py`` (anchors README §4.1, §4.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Pair = tuple[int, int]  # (source feature index m, target feature index n)
Features = Sequence[torch.Tensor] | Mapping[int, torch.Tensor]

# Channel widths by feature index, as the official ``_get_num_features`` lists them.
# ImageNet ResNet-18/34: [relu(bn1(conv1)) 64@112², layer1 64@56², layer2 128@28², layer3 256@14², layer4 512@7²].
RESNET_IMAGENET_WIDTHS = (64, 64, 128, 256, 512)
# CIFAR ResNet-32: the output of each of its 15 residual blocks (5 × 16@32², 5 × 32@16², 5 × 64@8²).
RESNET32_WIDTHS = (16,) * 5 + (32,) * 5 + (64,) * 5
# VGG9-BN (32×32): the activations entering each of its 5 max-pools (64@32², 128@16², 256@8², 512@4², 512@2²).
VGG9_WIDTHS = (64, 128, 256, 512, 512)
# Mini protocol (transferlab's, not the paper's): the mini hub's ResNet-8 ``Backbone.feature_maps`` on 1×28×28
# (stem 16@14², stage 1 16@14², stage 2 32@7², stage 3 64@4²) and the ``mini_vgg`` target (16@14², 32@14², 64@7², 64@4²).
MINI_RESNET_WIDTHS = (16, 16, 32, 64)
MINI_VGG_WIDTHS = (16, 32, 64, 64)

# 224×224: ResNet-34 → ResNet-18, all 16 stage pairs, in the order of the script's default ``--pairs``
# "4-4,4-3,4-2,4-1,3-4,…,1-1".
IMAGENET_PAIRS: tuple[Pair, ...] = tuple((m, n) for m in (4, 3, 2, 1) for n in (4, 3, 2, 1))
# 32×32: ResNet-32 → VGG9-BN, the last block of each source stage {4, 9, 14} × every target feature {0..4}, in the
# order of the README commands' ``--pairs 4-0,4-1,…,14-4``.
CIFAR_PAIRS: tuple[Pair, ...] = tuple((m, n) for m in (4, 9, 14) for n in range(5))
# Mini (our choice, mirroring the CIFAR lists): each mini ResNet-8 stage output {1, 2, 3} × every mini_vgg feature
# {0..3}, 12 pairs; the equal-size ones, one per target resolution (AT's pairs), are (1, 1) 14², (2, 2) 7², (3, 3) 4².
MINI_PAIRS: tuple[Pair, ...] = tuple((m, n) for m in (1, 2, 3) for n in range(4))

WEIGHT_TYPES = ("relu6", "relu", "relu-avg", "const")


def parse_pairs(text: str) -> tuple[Pair, ...]:
    """ "4-0,4-1" → ((4, 0), (4, 1)): the official ``--pairs`` syntax."""
    try:
        return tuple((int(m), int(n)) for m, n in (p.split("-") for p in text.split(",")))
    except ValueError as e:
        raise ValueError(f"pairs {text!r} must look like '4-0,9-1' (source-target indices)") from e


def gap(x: torch.Tensor) -> torch.Tensor:
    """Global average pool: [B, C, H, W] → [B, C]."""
    return x.mean(dim=(2, 3))


def resize_like(source: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of [B, C, H, W] to ``size`` (half-pixel centres, ``align_corners=False``, no antialiasing).

    The official code calls ``F.interpolate(scale_factor=W_t / W_s)`` on square maps; for the power-of-two ratios of
    both settings (e.g. 8 → 1 averages the centre 2×2 pixels) this is the same computation. Same size: unchanged.
    """
    if tuple(source.shape[-2:]) == tuple(size):
        return source
    return F.interpolate(source, size=size, mode="bilinear", align_corners=False)


def matching_distance(source: torch.Tensor, adapted: torch.Tensor) -> torch.Tensor:
    """d[b, c] = mean_{h,w} (resize(S) − r(T))²: source [B, C, H_s, W_s], adapted [B, C, H, W] → [B, C].

    Under bf16/fp16 autocast the squared differences are summed in float32.
    """
    if adapted.dtype in (torch.float16, torch.bfloat16):
        source, adapted = source.float(), adapted.float()
    return (resize_like(source, adapted.shape[-2:]) - adapted).pow(2).mean(dim=(2, 3))


def combine(
    d: torch.Tensor, weight: torch.Tensor | None = None, pair_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """One pair's term from d [B, C]: see the module docstring (none / weight / loss_weight / both).

    ``weight`` [B, C] channel weights (rows sum to 1), ``pair_weight`` [B, 1] or [1, 1] (``const``) pair weights.
    """
    if weight is None and pair_weight is None:
        return d.mean()
    per_sample = (d * weight).sum(1) if weight is not None else d.sum(1)  # [B]
    if pair_weight is not None:
        per_sample = per_sample * pair_weight.reshape(-1)  # [B] or broadcast of a [1] const weight
    return per_sample.mean()


class FeatureMatching(nn.Module):
    """The 1×1 convs r^{m,n} (target → source channels) and the matching loss L_wfm over ``pairs``.

    Args:
        pairs: (m, n) index pairs; ``convs[i]`` serves ``pairs[i]`` (the official module's ``{i}.weight``).
        source_widths, target_widths: channels of each source / target feature index.

    ``forward(source_feats, target_feats, weights=None, pair_weights=None, beta=0.5)`` → scalar L_wfm;
    ``weights`` / ``pair_weights`` are per-pair lists ([B, C_m] / [B, 1]) or None, ``beta`` a float or a per-pair
    sequence. ``per_pair(...)`` returns the unscaled terms ℓ^{m,n} [n_pairs] for logging.
    """

    def __init__(self, pairs: Sequence[Pair], source_widths: Sequence[int], target_widths: Sequence[int]):
        super().__init__()
        self.pairs = tuple((int(m), int(n)) for m, n in pairs)
        self.convs = nn.ModuleList(
            nn.Conv2d(target_widths[n], source_widths[m], kernel_size=1, bias=True) for m, n in self.pairs
        )

    def per_pair(
        self,
        source_feats: Features,
        target_feats: Features,
        weights: Sequence[torch.Tensor] | None = None,
        pair_weights: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        terms = []
        for i, ((m, n), conv) in enumerate(zip(self.pairs, self.convs)):
            d = matching_distance(source_feats[m], conv(target_feats[n]))
            w = None if weights is None else weights[i]
            lam = None if pair_weights is None else pair_weights[i]
            terms.append(combine(d, w, lam))
        return torch.stack(terms)

    def forward(
        self,
        source_feats: Features,
        target_feats: Features,
        weights: Sequence[torch.Tensor] | None = None,
        pair_weights: Sequence[torch.Tensor] | None = None,
        beta: float | Sequence[float] = 0.5,
    ) -> torch.Tensor:
        terms = self.per_pair(source_feats, target_feats, weights, pair_weights)
        if isinstance(beta, (int, float)):
            return beta * terms.sum()
        return (terms * terms.new_tensor(list(beta))).sum()


class ChannelWeights(nn.Module):
    """ "What" to transfer: w^{m,n} = softmax_c(Linear(C_m, C_m)(GAP(S^m))) per pair → list of [B, C_m].

    Zero-initialised (weight and bias), as the official ``WeightNetwork``: every channel starts at 1/C_m.
    """

    def __init__(self, pairs: Sequence[Pair], source_widths: Sequence[int]):
        super().__init__()
        self.pairs = tuple((int(m), int(n)) for m, n in pairs)
        self.linears = nn.ModuleList(nn.Linear(source_widths[m], source_widths[m]) for m, _ in self.pairs)
        for lin in self.linears:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, source_feats: Features) -> list[torch.Tensor]:
        return [F.softmax(lin(gap(source_feats[m])), dim=1) for (m, _), lin in zip(self.pairs, self.linears)]


class PairWeights(nn.Module):
    """ "Where" to transfer: λ^{m,n} = act(Linear(C_m, 1)(GAP(S^m))) per pair → list of [B, 1].

    Args:
        kind: ``relu6`` (the script's default), ``relu``, ``relu-avg`` (GAP divided by C_m before the linear), or
            ``const`` (one learnable scalar v_i per pair, initialised to 0; λ_i = softplus(10 v_i) as [1, 1],
            ≈ 0.693 at init, the same for every sample).
        init: the bias of every ``Linear`` (1.0 in the script; None keeps PyTorch's default). The weights keep
            PyTorch's default init.

    With ``relu``/``relu6``, an input that drives a pair to 0 (or 6) gives it zero gradient: ReLU6 saturation is part
    of the method.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        source_widths: Sequence[int],
        kind: str = "relu6",
        init: float | None = 1.0,
    ):
        super().__init__()
        if kind not in WEIGHT_TYPES:
            raise ValueError(f"pair-weight kind {kind!r} is not one of {WEIGHT_TYPES}")
        self.pairs = tuple((int(m), int(n)) for m, n in pairs)
        self.kind = kind
        self.linears = nn.ModuleList()
        if kind == "const":
            self.const = nn.Parameter(torch.zeros(len(self.pairs)))
            return
        for m, _ in self.pairs:
            lin = nn.Linear(source_widths[m], 1)
            if init is not None:
                nn.init.constant_(lin.bias, init)
            self.linears.append(lin)

    def forward(self, source_feats: Features) -> list[torch.Tensor]:
        if self.kind == "const":
            return [v.reshape(1, 1) for v in F.softplus(10.0 * self.const)]
        out = []
        for (m, _), lin in zip(self.pairs, self.linears):
            g = gap(source_feats[m])
            if self.kind == "relu-avg":
                g = g / g.shape[1]
            z = lin(g)
            out.append(F.relu6(z) if self.kind == "relu6" else F.relu(z))
        return out


def attention_map(x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """AT's spatial attention: mean_c x² ([B, H, W]), optionally resized to ``size``, flattened and L2-normalised
    → [B, H·W]."""
    a = x.pow(2).mean(1, keepdim=True)
    if size is not None:
        a = resize_like(a, size)
    return F.normalize(a.flatten(1), dim=1)


def attention_transfer_loss(
    source_feats: Features, target_feats: Features, pairs: Sequence[Pair], beta: float = 1e3
) -> torch.Tensor:
    """AT over ``pairs``: β/2 · Σ_{(m,n)} mean_{b,j} (Q_S − Q_T)², Q from :func:`attention_map`.

    β = 1e3 and the mean over the batch and positions follow the AT reference implementation
    (szagoruyko/attention-transfer, ``at_loss``). When sizes differ the source attention map is resized
    bilinearly to the target's size before normalisation (transferlab's choice: AT itself pairs equal-size maps).
    """
    total = 0.0
    for m, n in pairs:
        t = target_feats[n]
        qs = attention_map(source_feats[m], tuple(t.shape[-2:]))
        total = total + (qs - attention_map(t)).pow(2).mean()
    return beta / 2 * total


__all__ = [
    "CIFAR_PAIRS",
    "IMAGENET_PAIRS",
    "MINI_PAIRS",
    "MINI_RESNET_WIDTHS",
    "MINI_VGG_WIDTHS",
    "RESNET32_WIDTHS",
    "RESNET_IMAGENET_WIDTHS",
    "VGG9_WIDTHS",
    "WEIGHT_TYPES",
    "ChannelWeights",
    "FeatureMatching",
    "PairWeights",
    "attention_map",
    "attention_transfer_loss",
    "combine",
    "gap",
    "matching_distance",
    "parse_pairs",
    "resize_like",
]
