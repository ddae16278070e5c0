"""Reinforcement learning: the episode return (↑) of a policy on an Atari game (``data/atari.py``).

The outputs are the 18 actions of ALE's full action set; the head is the policy's action-logit layer. Unlike the
supervised tasks, an RL run is not trained by ``train.fit()`` but by ``transferlab.rl.loop.fit_rl`` (interaction,
PPO), and it is evaluated on a fixed number of episodes, not on batches: :meth:`evaluate` refuses batches. The
result keeps the supervised record's shape (``test_at_best_val`` is the evaluation return of the final policy; see
``rl/loop.py``), so the runner, reports and paired gaps read it with this task's metric and direction.

An ensemble of policies acts with the mixture of their action distributions: ``combine("prob")`` is the log of the
members' mean probabilities, the same rule as the classification ensemble.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.tasks.base import TASKS, Metric, Task


def orthogonal(layer: nn.Module, gain: float) -> nn.Module:
    """Orthogonal weights with ``gain`` and zero bias (PPO's initialisation: Engstrom et al. 2020 and CleanRL use
    √2 for hidden layers, 0.01 for the policy head, 1 for the value head)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


@TASKS.register("rl")
class Returns(Task):
    name = "rl"
    metric = Metric("return", "episode return", "max")

    @property
    def spec(self):
        from transferlab.data.atari import EnvSpec

        return EnvSpec(**self.params)

    def head(self, in_features: int) -> nn.Module:
        """The policy head: action logits, orthogonal with gain 0.01 (near-uniform initial policy)."""
        return orthogonal(nn.Linear(in_features, self.outputs), 0.01)

    def value_head(self, in_features: int) -> nn.Module:
        return orthogonal(nn.Linear(in_features, 1), 1.0)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(
            "an RL policy's loss is PPO's objective (transferlab.rl.ppo), not a target loss"
        )

    def combine(self, outputs: list[torch.Tensor], how: str = "prob") -> torch.Tensor:
        z = torch.stack([t.float() for t in outputs])  # [K, B, A]
        if how == "prob":
            return torch.logsumexp(F.log_softmax(z, dim=2), dim=0) - math.log(len(outputs))
        if how in ("logits", "mean"):
            return z.mean(0)
        raise ValueError(f"combine={how!r}; choose one of: prob, logits")

    def evaluate(self, predict, batches, amp=None) -> dict:
        raise NotImplementedError("an RL policy is evaluated on episodes: transferlab.rl.loop.evaluate")


__all__ = ["Returns", "orthogonal"]
