"""Zoo-Tuning's adaptive aggregation convolution, per-sample and "lite".

Paper: Yang Shu, Zhi Kou, Zhangjie Cao, Jianmin Wang, Mingsheng Long. *Zoo-Tuning: Adaptive Transfer from a Zoo of
Models.* ICML 2021, PMLR 139. http://proceedings.mlr.press/v139/shu21b.html (arXiv 2106.15434). The semantics follow
the official code (thuml/Zoo-Tuning @ c5975f6, ``module/ada_agg.py``) as described in
``shared/docs/official_code_notes.md`` §6 and ``shared/anchors/README.md`` §3; this is an independent implementation.

K source models of one architecture are merged conv by conv. A layer holds the K source kernels W_k and builds, for
every input sample b, its own kernel from a gate computed on that layer's input:

    a_b = σ(V · relu(U · GAP(x_b)) + c)            ∈ (0, 1)^K    independent sigmoids, NOT normalised over experts
    Ŵ_b = Σ_k a_{b,k} · A_k W_k,   β_b = Σ_k a_{b,k} · β_k        (A_k W_k)[o] = Σ_o' A_k[o, o'] · W_k[o']
    y_b = conv2d(x_b, Ŵ_b, β_b)

A_k is an optional per-expert channel alignment (it re-mixes the output filters of source k; identity at init).
Shapes: x [B, I, H, W]; W [K, O, I/g, kh, kw]; β [K, O]; A [K, O, O]; U [h, I] with h = ⌊I/4⌋ + 1; V [K, h]; c [K];
a [B, K]; Ŵ [B, O, I/g, kh, kw]; y [B, O, H', W']. The B convolutions run as ONE grouped convolution with the batch
folded into the channel axis (groups = B·g): one convolution plus a K-way sum of kernels per sample, not K convs.

Lite Zoo-Tuning (the paper's "temporal ensemble of batch average gating values"): in training every sample uses the
batch-mean gate ā = mean_b a_b, and a buffer keeps ē ← (1 − m)·ē + m·ā (m = 0.1, ē₀ = 0, no bias correction, as the
official code); in eval ē is the gate of every input, so the kernel is fixed and :meth:`collapse` turns the layer into
one ordinary ``nn.Conv2d`` (:func:`collapse_lite` does it for a whole model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

# How a gate's output layer starts (transferlab's option; the official code has only the first):
# official — Kaiming-normal weights, zero bias: per-sample gates scattered around 0.5 from the first step;
# uniform  — zero weights and bias: every gate exactly 0.5 for every input (Σ_k a_k = K/2);
# biased   — zero weights, bias logit(1/K): every gate 1/K, so the aggregated kernel starts as the sources' mean.
GATE_INITS = ("official", "uniform", "biased")


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class AdaptiveAggregationConv(nn.Module):
    """A conv over K experts' kernels aggregated per sample by an input-dependent sigmoid gate (see module doc).

    Args mirror ``nn.Conv2d`` (``padding`` may also be "same"/"valid") plus:
        experts: K, the number of source kernels.
        align: request per-expert channel alignment; like the official layer it is effective only when the kernel
            is larger than 1×1 (``self.align`` is then a [K, O, O] parameter initialised to identity, else None).
        lite: batch-mean gates in training with an EMA buffer ``ema_gate`` [K] used as the gate in eval.
        ema_momentum: m of the EMA (0.1 officially).
        gate_init: official (Kaiming, the official layer), uniform (every gate 0.5) or biased (every gate 1/K);
            see ``GATE_INITS``.
        detach_ema: default True: the buffer is updated without autograd history. The official code does not detach
            it (``detach_ema=False`` reproduces that: the buffer then requires grad and chains every step's graph,
            which only costs memory and breaks ``copy.deepcopy``). Buffer values, outputs and gradients are identical
            either way, because in training the output uses the current batch mean, never the buffer.

    Initialisation as the official layer: kernels kaiming-uniform per expert (a = √5, ``nn.Conv2d``'s default), gate
    convs kaiming-normal (fan_out, relu) with zero bias. The official bias is left uninitialised; ours uses
    ``nn.Conv2d``'s default. The builder overwrites the kernels with the sources' anyway.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = False,
        experts: int = 5,
        align: bool = False,
        lite: bool = False,
        ema_momentum: float = 0.1,
        detach_ema: bool = True,
        gate_init: str = "official",
    ):
        super().__init__()
        if gate_init not in GATE_INITS:
            raise ValueError(f"gate_init={gate_init!r}; choose one of {', '.join(GATE_INITS)}")
        self.gate_init = gate_init
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels={in_channels} and out_channels={out_channels} must divide groups={groups}"
            )
        if experts < 1:
            raise ValueError(f"experts={experts} must be >= 1")
        self.in_channels, self.out_channels, self.groups, self.experts = (
            in_channels,
            out_channels,
            groups,
            experts,
        )
        self.kernel_size, self.stride, self.dilation = _pair(kernel_size), _pair(stride), _pair(dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.lite, self.ema_momentum, self.detach_ema = lite, ema_momentum, detach_ema

        self.weight = nn.Parameter(
            torch.empty(experts, out_channels, in_channels // groups, *self.kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(experts, out_channels)) if bias else None
        # Alignment only for kernels larger than 1×1 (as the official layer, silently off otherwise).
        aligned = align and self.kernel_size != (1, 1)
        self.align = nn.Parameter(torch.eye(out_channels).repeat(experts, 1, 1)) if aligned else None
        hidden = in_channels // 4 + 1
        self.gate = nn.Sequential(  # indices 1 and 3 hold the parameters, as the official `attention`
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, experts, 1),
            nn.Flatten(1),
            nn.Sigmoid(),
        )
        if lite:
            self.register_buffer("ema_gate", torch.zeros(experts))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for w in self.weight:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0, 0].numel()
            nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        for m in (self.gate[1], self.gate[3]):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.gate[3].bias)
        if self.gate_init != "official":  # the output layer starts at zero: every input gets the same gate
            nn.init.zeros_(self.gate[3].weight)
            if self.gate_init == "biased":  # σ(b) = 1/K: the aggregated kernel starts as the sources' mean
                nn.init.constant_(
                    self.gate[3].bias, math.log(1.0 / (self.experts - 1)) if self.experts > 1 else 0.0
                )

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample gate a [B, K] ∈ (0, 1), from this layer's input x [B, I, H, W]."""
        return self.gate(x)

    def expert_kernels(self) -> torch.Tensor:
        """The aligned source kernels A_k W_k, [K, O, I/g, kh, kw]."""
        if self.align is None:
            return self.weight
        return torch.einsum("kop,kpihw->koihw", self.align, self.weight)

    def aggregate(self, gates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Kernel and bias for gates [..., K]: ([..., O, I/g, kh, kw], [..., O] or None)."""
        kernel = torch.einsum("...k,koihw->...oihw", gates, self.expert_kernels())
        return kernel, None if self.bias is None else gates @ self.bias

    def _conv(
        self, x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None, groups: int
    ) -> torch.Tensor:
        return F.conv2d(x, kernel, bias, self.stride, self.padding, self.dilation, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lite:  # one kernel for the whole batch: an ordinary convolution
            if self.training:
                g = self.gates(x).mean(0)
                self._update_ema(g)
            else:
                g = self.ema_gate
            return self._conv(x, *self.aggregate(g), self.groups)
        n = x.shape[0]
        kernel, bias = self.aggregate(self.gates(x))  # [B, O, I/g, kh, kw], [B, O]
        # Sample b's channels form groups b·g … b·g+g−1 of one grouped conv over a batch of one.
        y = self._conv(
            x.reshape(1, n * self.in_channels, *x.shape[2:]),
            kernel.flatten(0, 1),
            None if bias is None else bias.flatten(),
            n * self.groups,
        )
        return y.view(n, self.out_channels, *y.shape[2:])

    def _update_ema(self, batch_gate: torch.Tensor) -> None:
        m = self.ema_momentum
        if self.detach_ema:
            with torch.no_grad():
                self.ema_gate.mul_(1 - m).add_(m * batch_gate)
        else:  # official: the buffer keeps the autograd history of every batch gate
            self.ema_gate = (1 - m) * self.ema_gate + m * batch_gate

    @torch.no_grad()
    def collapse(self) -> nn.Conv2d:
        """The ordinary conv that this lite layer computes in eval mode (kernel Σ_k ē_k A_k W_k)."""
        if not self.lite:
            raise ValueError(
                "only a lite layer has an input-independent kernel; this one aggregates per sample"
            )
        kernel, bias = self.aggregate(self.ema_gate.detach())
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            bias=bias is not None,
            device=kernel.device,
            dtype=kernel.dtype,
        )
        conv.weight.copy_(kernel)
        if bias is not None:
            conv.bias.copy_(bias)
        return conv

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, bias={self.bias is not None}, "
            f"experts={self.experts}, align={self.align is not None}, lite={self.lite}, gate_init={self.gate_init}"
        )


def collapse_lite(model: nn.Module) -> nn.Module:
    """Replace, in place, every lite :class:`AdaptiveAggregationConv` of ``model`` by its collapsed ``nn.Conv2d``.

    The eval-mode output is unchanged (within float rounding). Non-lite layers stay: in the official lite ResNet the
    downsample convs are not lite and keep their per-sample gates. Returns ``model``.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, AdaptiveAggregationConv) and module.lite:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.collapse())
    return model


def from_official_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official ``AdaAggLayer`` (or zoo ResNet) state dict to this module's names and shapes.

    ``attention.*`` → ``gate.*``; ``align_conv`` [K·O, O, 1, 1] → ``align`` [K, O, O]; ``lite_attention`` →
    ``ema_gate``; everything else is kept. Works on gradients stored under the same names too.
    """
    out = {}
    for key, value in state.items():
        head, _, leaf = key.rpartition(".")
        prefix = head + "." if head else ""
        if leaf == "align_conv":
            o = value.shape[1]
            out[prefix + "align"] = value.reshape(value.shape[0] // o, o, o)
        elif leaf == "lite_attention":
            out[prefix + "ema_gate"] = value
        else:
            out[key.replace("attention.", "gate.") if "attention." in key else key] = value
    return out
