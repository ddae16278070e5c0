"""Evaluation: top-1 accuracy, per-class accuracy and mean loss, with optional ten-crop testing.

Ten-crop follows the official Co-Tuning and Zoo-Tuning code: the logits of the ten crops (four corners and the
centre of the 256×256 resize, each with and without a horizontal flip) are **summed**, then the arg-max is taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def evaluate(
    predict: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    autocast_dtype: torch.dtype | None = None,
) -> dict:
    """Accuracy (%) of ``predict`` over ``batches``; an x of shape [B, K, C, H, W] is a K-crop batch."""
    correct = np.zeros(num_classes, dtype=np.int64)
    count = np.zeros(num_classes, dtype=np.int64)
    loss_sum, n = 0.0, 0
    for x, y in batches:
        with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            if x.dim() == 5:  # K crops per image: sum the logits over crops
                b, k = x.shape[:2]
                logits = predict(x.flatten(0, 1)).float().view(b, k, -1).sum(1)
            else:
                logits = predict(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        pred = logits.argmax(1)
        y_np, hit = y.cpu().numpy(), (pred == y).cpu().numpy()
        np.add.at(count, y_np, 1)
        np.add.at(correct, y_np, hit.astype(np.int64))
        n += len(y)
    if n == 0:
        raise ValueError("evaluation set is empty")
    per_class = np.where(count > 0, 100.0 * correct / np.maximum(count, 1), np.nan)
    return {
        "top1": float(100.0 * correct.sum() / n),  # a Python float: checkpoints load with weights_only=True
        "per_class": [None if np.isnan(v) else round(float(v), 4) for v in per_class],
        "loss": loss_sum / n,
        "n": n,
    }
