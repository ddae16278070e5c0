"""The mini protocol (v2): the settings every paper's mini tables share, each with the reason it has.

The mini protocol is an experiment design, built like the papers' setting at CPU scale (README, "The mini
protocol"): a hub that descends from one broad ancestor (``models/mini_hub.py``), sources whose label spaces are not
a target's, targets whose images no source has seen (``data/mini.py``). Its settings were chosen on **validation**
with the design tables (``kind="design"``: their own seeds, :data:`DESIGN_SEEDS`, never the reported seeds 0–4;
reports show them on validation only) before any test number of the results tables was looked at:

- ``finetune/sampling_design`` chose the fine-tuning and scratch learning rates (:data:`FINETUNE`, :data:`SCRATCH`);
- ``l2t_ww/limited_design`` chose L2T-ww's meta learning rate and the target lr (``papers/l2t_ww.py``);
- ``zoo_tuning/classification_design`` chose the hub tables' schedule length (``papers/zoo_tuning.py``).

Validation: a fixed 100 images per class held out of the Fashion-MNIST target pool (1,000 images) whatever the
sampling rate — ours, because the papers' rule (20 % of the sampled images, 6 per class at 15 %) made best-validation
and last-step test accuracy differ by 4–5 points (mini protocol v1, measured); the training images are sampled from
the remaining 200 per class (5 % = 10, 15 % = 30, 50 % = 100 per class). ``mini_digits`` has 54 training images per
class in its pool: 15 per class are held out for validation and all the rest train.
"""

from __future__ import annotations

DESIGN_SEEDS = (100, 101, 102)  # design tables: settings are chosen on these seeds' validation numbers only
ANCESTOR = "mini:clusters"  # the mini hub's broad ancestor (the "ImageNet" of the mini protocol)

MINI_COMMON = {
    "backbone": "mini_resnet",
    "dataset": "mini_fmnist",
    "batch_size": 32,
    "eval_batch_size": 1024,
    "iterations": 300,
    "eval_every": 50,
    "schedule": "cosine",
    "weight_decay": 5e-4,
    "val_per_class": 100,
}
DIGITS = {"dataset": "mini_digits", "sample_rate": 1.0, "val_per_class": 15}

# chosen by finetune/sampling_design (best mean validation accuracy at 15 %, design seeds 100-102, measured
# 2026-12-04): fine-tuning lr 0.03 77.57 ± 0.92 (0.003 74.47, 0.01 76.03, 0.1 71.80); scratch lr 0.3 75.63 ± 1.07
# (0.03 72.13, 0.1 74.27, 1.0 52.23 ± 18.52, diverging at some seeds). Both optima are inside the grid.
# The Co-Tuning baselines share the fine-tuning lr (our reading: the papers tune per method; the mini protocol
# tunes the shared baseline once and keeps every method on it, so a method's gain is not a tuning gain).
FINETUNE = {"pretrained": ANCESTOR, "lr": 0.03, "head_lr_mult": 10.0}
SCRATCH = {"pretrained": "none", "lr": 0.3, "head_lr_mult": 1.0}
FINETUNE_LRS, SCRATCH_LRS = (
    [0.003, 0.01, 0.03, 0.1],
    [0.03, 0.1, 0.3, 1.0],
)  # the design grid (extended where the best was at an edge)

__all__ = [
    "ANCESTOR",
    "DESIGN_SEEDS",
    "DIGITS",
    "FINETUNE",
    "FINETUNE_LRS",
    "MINI_COMMON",
    "SCRATCH",
    "SCRATCH_LRS",
]
