"""The regularisers of the single-model fine-tuning baselines, as pure functions of tensors.

Each is the quantity the baseline adds to the cross-entropy; the method files (``l2sp.py``, ``delta.py``,
``bss.py``, ``lwf.py``) decide what to feed them. Golden tests compare every value and gradient with the outputs of
TLlib's ``tllib/regularization`` at commit ``c4aa59eb`` (``tests/test_baselines.py``; anchors README §2).

- :func:`l2_penalty` — Ω = Σ_p ½‖p‖² (a sum over all elements, no division by the count).
- :func:`sp_penalty` — L2-SP's starting-point penalty Ω = Σ_p ½‖p − p⁰‖² (Li, Grandvalet, Davoine, ICML 2018,
  https://arxiv.org/abs/1802.01483), parameters paired by position (the caller pairs them by name).
- :func:`behavioral_penalty` — DELTA without attention: Ω = Σ_layers ½‖F_t − F_s‖², F_s a constant.
- :func:`attention_behavioral_penalty` — DELTA (Li et al., ICLR 2019, https://arxiv.org/abs/1901.09229): for each
  layer with maps [B, C, H, W] and channel attention a [C], Ω = Σ_layers ½ Σ_{b,c} C·a_c·‖F_t − F_s‖²_{b,c} / (H·W)
  (the factor C/(H·W) is TLlib's: with a uniform attention a_c = 1/C it is the mean over positions).
- :func:`bss_penalty` — Batch Spectral Shrinkage (Chen et al., NeurIPS 2019,
  https://papers.nips.cc/paper/2019/hash/c6bff625bdb0393992c9d4db0c6bbe45-Abstract.html): for pooled features
  F [B, D] with singular values σ_1 ≥ … ≥ σ_m (m = min(B, D)), Ω = Σ_{i=1..k} σ_{m+1−i}², the k smallest.
- :func:`kd_loss` — distillation (Hinton et al. 2015, https://arxiv.org/abs/1503.02531), the batch mean of
  KL(softmax(z_teacher/T) ‖ softmax(z_student/T)). ``t_squared=True`` multiplies by T², Hinton's correction that keeps
  the soft targets' gradient scale independent of T; TLlib's ``KnowledgeDistillationLoss`` omits it (``False``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F


def l2_penalty(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """Σ_p ½‖p‖² over the given tensors (a scalar)."""
    terms = [0.5 * p.pow(2).sum() for p in params]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def sp_penalty(params: Sequence[torch.Tensor], anchors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Σ_p ½‖p − p⁰‖² with ``anchors`` p⁰ treated as constants; ``params[i]`` pairs with ``anchors[i]``."""
    if len(params) != len(anchors):
        raise ValueError(f"{len(params)} parameters but {len(anchors)} starting points")
    terms = []
    for p, p0 in zip(params, anchors):
        if p.shape != p0.shape:
            raise ValueError(
                f"parameter of shape {tuple(p.shape)} paired with a starting point {tuple(p0.shape)}"
            )
        terms.append(0.5 * (p - p0.detach()).pow(2).sum())
    return torch.stack(terms).sum() if terms else torch.zeros(())


def behavioral_penalty(
    source_maps: Sequence[torch.Tensor], target_maps: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Σ_layers ½‖F_t − F_s‖² (a sum over the batch and every element); no gradient reaches F_s."""
    _check_pairs(source_maps, target_maps)
    return torch.stack(
        [0.5 * (ft - fs.detach()).pow(2).sum() for fs, ft in zip(source_maps, target_maps)]
    ).sum()


def attention_behavioral_penalty(
    source_maps: Sequence[torch.Tensor],
    target_maps: Sequence[torch.Tensor],
    attention: Sequence[torch.Tensor],
) -> torch.Tensor:
    """Σ_layers ½ Σ_{b,c} C·a_c·d[b,c]/(H·W), d[b,c] = Σ_{h,w}(F_t − F_s)²; maps [B, C, H, W], attention [C]."""
    _check_pairs(source_maps, target_maps)
    if len(attention) != len(target_maps):
        raise ValueError(f"{len(attention)} attention vectors for {len(target_maps)} layers")
    terms = []
    for fs, ft, a in zip(source_maps, target_maps, attention):
        b, c, h, w = ft.shape
        if a.shape != (c,):
            raise ValueError(f"attention of shape {tuple(a.shape)} for a layer with {c} channels")
        d = (ft - fs.detach()).pow(2).sum(dim=(2, 3))  # [B, C]
        terms.append(0.5 * (c * a * d / (h * w)).sum())
    return torch.stack(terms).sum()


def bss_penalty(features: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Σ of the squares of the k smallest singular values of ``features`` [B, D] (k ≤ min(B, D))."""
    if features.dim() != 2:
        raise ValueError(f"BSS takes pooled features [B, D]; got shape {tuple(features.shape)}")
    m = min(features.shape)
    if not 1 <= k <= m:
        raise ValueError(f"k={k} must be between 1 and min(B, D) = {m}")
    sigma = torch.linalg.svdvals(features.float() if features.dtype == torch.bfloat16 else features)
    return sigma[-k:].pow(2).sum()  # svdvals are descending


def kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, t_squared: bool = False
) -> torch.Tensor:
    """(1/B) Σ_b KL(softmax(teacher/T) ‖ softmax(student/T)), × T² if ``t_squared``; logits [B, N]."""
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(1).mean()
    return kl * temperature**2 if t_squared else kl


def _check_pairs(source_maps: Sequence[torch.Tensor], target_maps: Sequence[torch.Tensor]) -> None:
    if len(source_maps) != len(target_maps):
        raise ValueError(f"{len(source_maps)} source feature maps for {len(target_maps)} target maps")
    for fs, ft in zip(source_maps, target_maps):
        if fs.shape != ft.shape:
            raise ValueError(f"source map {tuple(fs.shape)} and target map {tuple(ft.shape)} differ in shape")
