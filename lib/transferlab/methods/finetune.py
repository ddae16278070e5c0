"""Fine-tuning (the baseline of every paper here): start from pre-trained weights, replace the head, train all.

Loss: the task's loss on the new head, L = ℓ(h_t(f(x)), y) (cross-entropy for classification), with f initialised
from the source model. The new head is trained at ``head_lr_mult`` × the base lr (10× in the official Co-Tuning
code, 1× in Zoo-Tuning and TLlib: each paper module sets it). TLlib calls this baseline "ERM"; Co-Tuning's paper
calls it "fine-tuning". Shapes: x [B, C, H, W] → features [B, D] → outputs [B, N].
"""

from __future__ import annotations

from transferlab.methods.base import METHODS, SUPERVISED, Method


@METHODS.register("finetune")
class FineTune(Method):
    name = "finetune"
    paper = "standard fine-tuning (e.g. Yosinski et al. 2014, https://arxiv.org/abs/1411.1792)"
    tasks = SUPERVISED
    weights = "required"  # pretrained='none' is method 'scratch'
