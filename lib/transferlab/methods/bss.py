"""BSS, Batch Spectral Shrinkage (Chen, Wang, Fu, Long, Wang; NeurIPS 2019): shrink the smallest singular values.

https://papers.nips.cc/paper/2019/hash/c6bff625bdb0393992c9d4db0c6bbe45-Abstract.html

The paper finds that the spectral components of the features with small singular values are the ones that are not
transferable (negative transfer), and penalises them on each batch of pooled features F [B, D]:

    L = CE(h_t(F), y) + η · Σ_{i=1..k} σ_{m+1−i}(F)²,   σ_1 ≥ … ≥ σ_m the singular values, m = min(B, D)

Defaults (the paper's, also TLlib ``examples/task_adaptation/image_classification/bss.py``): k = 1, η = 0.001.
The SVD of a [48, 2048] batch is cheap next to the network. Shapes: x [B, C, H, W] → F [B, D] → logits [B, N_t].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from transferlab.config import ConfigError
from transferlab.methods.base import METHODS, Method
from transferlab.methods.regularizers import bss_penalty


@METHODS.register("bss")
class BSS(Method):
    name = "bss"
    paper = "Catastrophic Forgetting Meets Negative Transfer: Batch Spectral Shrinkage (NeurIPS 2019)"

    @dataclass(frozen=True)
    class Config:
        k: int = 1  # number of smallest singular values shrunk: paper / TLlib bss.py -k default
        trade_off: float = 0.001  # η: paper / TLlib bss.py --trade-off default

        def __post_init__(self) -> None:
            if self.k < 1:
                raise ConfigError(f"k={self.k} must be >= 1")
            if self.trade_off < 0:
                raise ConfigError(f"trade_off={self.trade_off} must be >= 0")

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.backbone.features(x)
        logits = self.backbone.head(f)
        ce = F.cross_entropy(logits, y)
        k = min(self.cfg.k, *f.shape)  # a batch smaller than k (the last k-shot batch) shrinks what it has
        bss = bss_penalty(f.float(), k)
        return {"loss": ce + self.cfg.trade_off * bss, "ce": ce, "bss": bss, "logits": logits}
