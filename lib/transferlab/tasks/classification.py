"""Image classification: a linear head, cross-entropy, top-1 accuracy (↑), per-class accuracy, ten-crop testing.

Ten-crop follows the official Co-Tuning and Zoo-Tuning code: the logits of the ten crops (four corners and the
centre of the 256×256 resize, each with and without a horizontal flip) are **summed**, then the arg-max is taken.
The new head is ``Linear(D, N)`` with N(0, 0.01) weights and zero bias, the official Co-Tuning / Zoo-Tuning
initialisation. An ensemble's prediction is the log of its members' mean probabilities (``combine="prob"``, the
deep-ensemble rule) or their mean logits (``"logits"``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferlab.models import init_head
from transferlab.tasks.base import TASKS, Metric, Predict, Task

COMBINE = ("prob", "logits")


@TASKS.register("classification")
class Classification(Task):
    name = "classification"
    metric = Metric("top1", "accuracy (%)", "max")

    def head(self, in_features: int) -> nn.Module:
        return init_head(nn.Linear(in_features, self.outputs))

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets)

    def combine(self, outputs: list[torch.Tensor], how: str = "prob") -> torch.Tensor:
        z = torch.stack([t.float() for t in outputs])  # [K, B, N]
        if how == "prob":  # log (1/K) Σ_i softmax(z_i): keeps the arg-max, and CE is the ensemble's NLL
            return torch.logsumexp(F.log_softmax(z, dim=2), dim=0) - math.log(len(outputs))
        if how in ("logits", "mean"):
            return z.mean(0)
        raise ValueError(f"combine={how!r}; choose one of: {', '.join(COMBINE)}")

    @torch.no_grad()
    def evaluate(
        self,
        predict: Predict,
        batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
        amp: torch.dtype | None = None,
    ) -> dict:
        """Top-1 (%), per-class accuracy and mean CE of ``predict``; an x of shape [B, K, C, H, W] is a K-crop batch
        (the K crops' logits are summed)."""
        n_classes = self.outputs
        # Sums stay on the device (no host sync per batch): counts are exact integers and the loss is accumulated
        # in float64, batch by batch, as the Python float sum it replaces was (the same value, bit for bit).
        correct = count = loss_sum = None
        n = 0
        for x, y in batches:
            with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
                if x.dim() == 5:
                    b, k = x.shape[:2]
                    logits = predict(x.flatten(0, 1)).float().view(b, k, -1).sum(1)
                else:
                    logits = predict(x).float()
            if correct is None:
                correct = torch.zeros(n_classes, dtype=torch.int64, device=y.device)
                count = torch.zeros(n_classes, dtype=torch.int64, device=y.device)
                loss_sum = torch.zeros((), dtype=torch.float64, device=y.device)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
            count.index_add_(0, y, torch.ones_like(y))
            correct.index_add_(0, y, (logits.argmax(1) == y).long())
            n += len(y)
        if n == 0:
            raise ValueError("evaluation set is empty")
        correct, count, loss_sum = correct.cpu().numpy(), count.cpu().numpy(), float(loss_sum)
        per_class = np.where(count > 0, 100.0 * correct / np.maximum(count, 1), np.nan)
        return {
            "value": float(
                100.0 * correct.sum() / n
            ),  # a Python float: checkpoints load with weights_only=True
            "loss": loss_sum / n,
            "n": n,
            "extras": {"per_class": [None if np.isnan(v) else round(float(v), 4) for v in per_class]},
        }


__all__ = ["COMBINE", "Classification"]
