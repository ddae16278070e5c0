"""Training from scratch: the same network and loop as fine-tuning, randomly initialised.

The lower bound every transfer method is measured against (L2T-ww's "Scratch" row). Pre-trained weights are refused
(``Method.check``) so that a "scratch" result can never silently start from a source model; all parameters share
one lr.
"""

from __future__ import annotations

from torch import nn

from transferlab.methods.base import METHODS, SUPERVISED, Method


@METHODS.register("scratch")
class Scratch(Method):
    name = "scratch"
    paper = "training from random initialisation (the no-transfer baseline)"
    tasks = SUPERVISED
    weights = "forbidden"

    def new_parameters(self) -> list[nn.Parameter]:
        return []  # nothing is pre-trained, so nothing gets a separate lr
