"""Actor-critic policy networks on stacked Atari frames: a feature extractor, a policy head and a value head.

``nature_cnn`` is the DQN network of Mnih et al. 2015 (Nature, "Human-level control through deep reinforcement
learning"), also PPO's Atari network (Schulman et al. 2017, https://arxiv.org/abs/1707.06347): on x [B, 4, 84, 84]
uint8, x/255 → conv 32 8×8/4 → ReLU → conv 64 4×4/2 → ReLU → conv 64 3×3/1 → ReLU → [B, 64, 7, 7] → fc 512 → ReLU;
then the policy head Linear(512, A) (action logits) and the value head Linear(512, 1). ``mini_cnn`` (ours, for the
mini protocol on 2 CPU cores) is the same design at 42×42: conv 16 8×8/4 → conv 32 4×4/2 → [B, 32, 3, 3] → fc 256
(91k parameters with 18 actions).

The fully connected layer is held as a convolution whose kernel covers the whole last map (a Linear(C·h·w, D) on
the flattened map is exactly a Conv2d(C, D, (h, w)) on the map): every layer of the extractor is then a
convolution, which is what Zoo-Tuning's adaptive aggregation (``models/zoo.py``) replaces layer by layer.
Initialisation (PPO's Atari setting as CleanRL publishes it, facts only): orthogonal, gain √2 for the extractor,
0.01 for the policy head, 1 for the value head, zero biases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from transferlab.registry import Registry


@dataclass(frozen=True)
class PolicyArch:
    name: str
    frame: int  # input side (pixels)
    stack: int  # input channels (stacked frames)
    convs: tuple[tuple[int, int, int], ...]  # (out channels, kernel, stride) per conv
    hidden: int  # width of the fully connected feature layer

    def maps(self) -> list[int]:
        """The side of each conv's output map."""
        side, out = self.frame, []
        for _, k, s in self.convs:
            side = (side - k) // s + 1
            out.append(side)
        return out

    def layers(self) -> list[tuple[str, int, int, int, int]]:
        """(name, in, out, kernel, stride) of every layer of the extractor, the fc (a whole-map conv) last."""
        specs, channels = [], self.stack
        for i, (out, k, s) in enumerate(self.convs):
            specs.append((f"conv{i}", channels, out, k, s))
            channels = out
        specs.append(("fc", channels, self.hidden, self.maps()[-1], 1))
        return specs


POLICY_ARCHS: Registry[PolicyArch] = Registry("policy network")
POLICY_ARCHS.register("nature_cnn")(
    PolicyArch("nature_cnn", 84, 4, ((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512)
)
POLICY_ARCHS.register("mini_cnn")(PolicyArch("mini_cnn", 42, 4, ((16, 8, 4), (32, 4, 2)), 256))

Conv = Callable[[str, int, int, int, int], nn.Module]  # (name, in, out, kernel, stride) → a conv layer


def plain_conv(name: str, cin: int, cout: int, k: int, s: int) -> nn.Module:
    conv = nn.Conv2d(cin, cout, k, s)
    nn.init.orthogonal_(conv.weight, math.sqrt(2))
    nn.init.zeros_(conv.bias)
    return conv


class PolicyNet(nn.Module):
    """x [B, stack, frame, frame] (uint8 or float in [0, 255]) → (logits [B, A], value [B]).

    ``features(x)`` → [B, hidden]; ``extractor`` is a ModuleDict of the layers in ``arch.layers()`` order, built
    by ``conv`` (plain convolutions by default; Zoo-Tuning passes its aggregation layers)."""

    def __init__(
        self, arch: PolicyArch, policy_head: nn.Module, value_head: nn.Module, conv: Conv = plain_conv
    ):
        super().__init__()
        self.arch = arch
        self.extractor = nn.ModuleDict({name: conv(name, *rest) for name, *rest in arch.layers()})
        self.policy = policy_head
        self.value = value_head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float() / 255.0
        for layer in self.extractor.values():
            h = torch.relu(layer(h))
        return h.flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.policy(f), self.value(f).squeeze(-1)

    def body_parameters(self) -> list[nn.Parameter]:
        return list(self.extractor.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        return [*self.policy.parameters(), *self.value.parameters()]


def build_policy(arch: str | PolicyArch, actions: int, conv: Conv = plain_conv) -> PolicyNet:
    """A freshly initialised policy network for ``actions`` actions."""
    a = POLICY_ARCHS.get(arch) if isinstance(arch, str) else arch
    head = nn.Linear(a.hidden, actions)
    value = nn.Linear(a.hidden, 1)
    nn.init.orthogonal_(head.weight, 0.01)
    nn.init.zeros_(head.bias)
    nn.init.orthogonal_(value.weight, 1.0)
    nn.init.zeros_(value.bias)
    return PolicyNet(a, head, value, conv)


__all__ = ["POLICY_ARCHS", "PolicyArch", "PolicyNet", "build_policy", "plain_conv"]
