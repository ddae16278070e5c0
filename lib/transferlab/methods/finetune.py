"""Fine-tuning (the baseline of every paper here): start from pre-trained weights, replace the head, train all.

Loss: cross-entropy of the new target head, L = CE(h_t(f(x)), y), with f initialised from the source model. The new
head is trained at ``head_lr_mult`` × the base lr (10× in the official Co-Tuning code, 1× in Zoo-Tuning and TLlib:
each paper module sets it). TLlib calls this baseline "ERM"; Co-Tuning's paper calls it "fine-tuning".
Shapes: x [B, C, H, W] → features [B, D] → logits [B, num_classes].
"""

from __future__ import annotations

from transferlab.config import RunConfig
from transferlab.methods.base import METHODS, Method


@METHODS.register("finetune")
class FineTune(Method):
    name = "finetune"
    paper = "standard fine-tuning (e.g. Yosinski et al. 2014, https://arxiv.org/abs/1411.1792)"

    @classmethod
    def build(cls, run: RunConfig, num_classes: int) -> Method:
        if run.pretrained == "none":
            raise ValueError(
                "method 'finetune' needs pre-trained weights (pretrained='none' is method 'scratch')"
            )
        return super().build(run, num_classes)
