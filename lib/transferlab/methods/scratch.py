"""Training from scratch: the same network and loop as fine-tuning, randomly initialised.

The lower bound every transfer method is measured against (L2T-ww's "Scratch" row). Pre-trained weights are refused
so that a "scratch" result can never silently start from a source model; all parameters share one lr.
"""

from __future__ import annotations

from torch import nn

from transferlab.config import RunConfig
from transferlab.methods.base import METHODS, Method


@METHODS.register("scratch")
class Scratch(Method):
    name = "scratch"
    paper = "training from random initialisation (the no-transfer baseline)"

    @classmethod
    def build(cls, run: RunConfig, num_classes: int) -> Method:
        if run.pretrained != "none":
            raise ValueError(
                f"method 'scratch' trains from random weights; set pretrained='none' (got {run.pretrained!r})"
            )
        return super().build(run, num_classes)

    def new_parameters(self) -> list[nn.Parameter]:
        return []  # nothing is pre-trained, so nothing gets a separate lr
