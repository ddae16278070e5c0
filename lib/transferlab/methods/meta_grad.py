"""Meta-gradients through a few look-ahead SGD steps (L2T-ww's bilevel update), on plain torch autograd.

Jang et al., *Learning What and Where to Transfer*, ICML 2019, http://proceedings.mlr.press/v97/jang19b.html; the
official ``train/meta_optimizers.py`` (``MetaSGD``) follows ReverseHG (Franceschi et al., ICML 2017,
https://arxiv.org/abs/1703.01785, Alg. 1 / Eq. 11) per the authors (alinlab/L2T-ww issue #8).

The problem. Target parameters θ with SGD momentum buffers v take K recorded steps on inner losses L_k(θ, φ) that
depend on meta-parameters φ; an outer loss L_out(θ_K) is then differentiated w.r.t. φ. One step is torch's SGD
(momentum μ, weight decay wd, no dampening, never Nesterov — the official optimizer ignores ``nesterov``):

    d_k     = ∇_θ L_k(θ_k, φ) + wd · θ_k
    v_{k+1} = d_k                 on a parameter's first update,  μ · v_k + d_k  otherwise
    θ_{k+1} = θ_k − lr · v_{k+1}

    ∂L_out(θ_K(φ)) / ∂φ          with (θ_0, v_0) treated as constants.

How. The official code snapshots the modules before each step and, in ``meta_backward``, walks the steps backwards
with adjoint variables (recomputing each step's loss). Here the K steps are written as a differentiable function
(``torch.autograd.grad(..., create_graph=True)``) of φ and one reverse pass gives ∂L_out/∂φ: the same derivative,
with no reliance on torch-1.x ``zero_grad`` behaviour (``.grad`` filled with zeros) and nothing written into the
modules. *Rollback* is therefore free: θ and v are never modified; :func:`write_back` commits the look-ahead state
where a caller wants the official ``rollback=False`` behaviour. Memory holds the K double-backward graphs at once
(the official recomputation holds one), which for K = T + 1 = 3 is the price of simplicity.

A parameter that takes part in a step: one with a momentum buffer (it was updated before) or a gradient. A parameter
with neither is left alone, as torch's SGD skips parameters whose ``.grad`` is None. A parameter an inner loss does
not reach (the classifier under the matching loss) still decays and moves with its momentum — as in the official
code, where zero-filled grads count.

Golden test: the official built-in toy problem (anchors README §4.3), ``tests/test_l2t_parts.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

Loss = Callable[[list[torch.Tensor]], torch.Tensor]  # θ (a list in parameter order) → scalar


@dataclass(frozen=True)
class SGDHyper:
    """One parameter's SGD hyper-parameters (a parameter group's ``lr``, ``momentum``, ``weight_decay``)."""

    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass
class MetaGradResult:
    """``meta_grads``: ∂L_out/∂φ per meta-parameter (zeros where L_out does not reach it); ``outer_loss``: L_out at
    θ_K (detached); ``params`` / ``buffers``: θ_K and v_K (detached); ``trajectory``: θ after each step (detached)."""

    meta_grads: list[torch.Tensor]
    outer_loss: torch.Tensor
    params: list[torch.Tensor]
    buffers: list[torch.Tensor | None]
    trajectory: list[list[torch.Tensor]] = field(default_factory=list)


def sgd_step(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor | None],
    buffers: Sequence[torch.Tensor | None],
    hypers: Sequence[SGDHyper],
) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """One differentiable SGD step (torch semantics, see the module docstring); returns new (θ, v) lists."""
    new_params, new_bufs = [], []
    for p, g, v, h in zip(params, grads, buffers, hypers, strict=True):
        if g is None and v is None:  # never updated and no gradient: torch's SGD skips it
            new_params.append(p)
            new_bufs.append(None)
            continue
        d = torch.zeros_like(p) if g is None else g
        if h.weight_decay:
            d = d + h.weight_decay * p
        if h.momentum:
            v = d if v is None else h.momentum * v + d
            d = v
        new_params.append(p - h.lr * d)
        new_bufs.append(v)
    return new_params, new_bufs


def unrolled_meta_gradient(
    params: Sequence[torch.Tensor],
    buffers: Sequence[torch.Tensor | None],
    hypers: Sequence[SGDHyper],
    inner_losses: Sequence[Loss],
    outer_loss: Loss,
    meta_params: Sequence[torch.Tensor],
    keep_trajectory: bool = False,
) -> MetaGradResult:
    """∂ outer_loss(θ_K) / ∂ meta_params through the K = ``len(inner_losses)`` recorded SGD steps.

    Args:
        params: θ_0, e.g. a module's parameters (read, never modified; treated as constants).
        buffers: v_0, the momentum buffers (None where a parameter has none yet); treated as constants.
        hypers: one :class:`SGDHyper` per parameter (see :func:`hypers_from_optimizer`).
        inner_losses: K callables θ → scalar, evaluated in order; they may depend on ``meta_params``.
        outer_loss: θ_K → scalar.
        meta_params: φ, the tensors to differentiate w.r.t. (``requires_grad=True``).
    """
    theta = [p.detach().requires_grad_(p.requires_grad) for p in params]
    bufs = [None if v is None else v.detach() for v in buffers]
    trajectory = []
    for loss_fn in inner_losses:
        loss = loss_fn(theta)
        wrt = [i for i, p in enumerate(theta) if p.requires_grad]
        found = torch.autograd.grad(loss, [theta[i] for i in wrt], create_graph=True, allow_unused=True)
        grads: list[torch.Tensor | None] = [None] * len(theta)
        for i, g in zip(wrt, found):
            grads[i] = g  # None where the loss does not reach θ_i: sgd_step zero-fills it if θ_i has momentum
        theta, bufs = sgd_step(theta, grads, bufs, hypers)
        if keep_trajectory:
            trajectory.append([p.detach().clone() for p in theta])
    out = outer_loss(theta)
    found = torch.autograd.grad(out, list(meta_params), allow_unused=True)
    meta_grads = [torch.zeros_like(p) if g is None else g for p, g in zip(meta_params, found)]
    return MetaGradResult(
        meta_grads=meta_grads,
        outer_loss=out.detach(),
        params=[p.detach() for p in theta],
        buffers=[None if v is None else v.detach() for v in bufs],
        trajectory=trajectory,
    )


def hypers_from_optimizer(
    optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor]
) -> tuple[list[SGDHyper], list[torch.Tensor | None]]:
    """Per-parameter :class:`SGDHyper` (current group lr, momentum, weight decay) and momentum buffers of ``params``
    in a ``torch.optim.SGD``. Raises if a parameter is not in it, or if the optimizer uses dampening or Nesterov
    (the official look-ahead steps have neither; training with them would differentiate a different update)."""
    if not isinstance(optimizer, torch.optim.SGD):
        raise TypeError(f"the look-ahead steps replay torch.optim.SGD; got {type(optimizer).__name__}")
    group_of = {}
    for group in optimizer.param_groups:
        if group.get("nesterov") or group.get("dampening", 0):
            raise ValueError(
                "L2T-ww's look-ahead steps are plain momentum SGD: set nesterov=False, dampening=0"
            )
        for p in group["params"]:
            group_of[id(p)] = group
    hypers, bufs = [], []
    for p in params:
        if id(p) not in group_of:
            raise ValueError(f"a parameter of shape {tuple(p.shape)} is not in the optimizer")
        g = group_of[id(p)]
        hypers.append(SGDHyper(lr=float(g["lr"]), momentum=g["momentum"], weight_decay=g["weight_decay"]))
        bufs.append(optimizer.state.get(p, {}).get("momentum_buffer"))
    return hypers, bufs


@torch.no_grad()
def write_back(
    params: Sequence[torch.nn.Parameter],
    result: MetaGradResult,
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Commit the look-ahead state θ_K (and v_K into ``optimizer``): the official ``rollback=False`` behaviour."""
    for p, new, v in zip(params, result.params, result.buffers, strict=True):
        p.copy_(new)
        if optimizer is not None and v is not None:
            optimizer.state[p]["momentum_buffer"] = v.clone()


class MetaAdam(nn.Module):
    """``torch.optim.Adam`` (L2 weight decay added to the gradient, no AMSGrad) whose state lives in buffers.

    The official code updates φ with ``optim.Adam(lr=meta_lr, weight_decay=meta_wd)``. Keeping the moments and the
    step count as buffers of a sub-module of the method puts them in the method's ``state_dict``, so ``fit()``'s
    checkpoint (and its best-validation snapshot) holds them and an interrupted run resumes exactly. The update is
    torch's single-tensor Adam, operation for operation (``tests/test_l2t_parts.py`` checks it bit for bit):

        g ← g + wd·p;  m ← lerp(m, g, 1 − β₁);  v ← β₂ v + (1 − β₂) g²;  t ← t + 1
        p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    ``params`` are held by reference, not registered (they belong to the meta-networks).
    """

    def __init__(
        self,
        params: Sequence[nn.Parameter],
        lr: float,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        super().__init__()
        self.params = list(params)  # a plain list: not registered twice
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self._t: int | None = (
            None  # host copy of ``steps``: read from the device once after a load, not per step
        )
        for i, p in enumerate(self.params):
            self.register_buffer(f"exp_avg_{i}", torch.zeros_like(p, memory_format=torch.preserve_format))
            self.register_buffer(f"exp_avg_sq_{i}", torch.zeros_like(p, memory_format=torch.preserve_format))

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._t = None  # ``steps`` may have changed (a resumed checkpoint, the best-validation weights)

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor]) -> None:
        """One Adam step of every parameter with the given gradients (one per parameter, in order)."""
        if self._t is None:
            self._t = int(self.steps.item())  # one host sync after construction or a load_state_dict
        self._t += 1
        self.steps += 1
        t = float(self._t)
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**t)
        bias_correction2_sqrt = (1 - beta2**t) ** 0.5
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            m, v = getattr(self, f"exp_avg_{i}"), getattr(self, f"exp_avg_sq_{i}")
            if self.weight_decay:
                g = g.add(p, alpha=self.weight_decay)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.addcdiv_(m, (v.sqrt() / bias_correction2_sqrt).add_(self.eps), value=-step_size)


__all__ = [
    "MetaAdam",
    "MetaGradResult",
    "SGDHyper",
    "hypers_from_optimizer",
    "sgd_step",
    "unrolled_meta_gradient",
    "write_back",
]
