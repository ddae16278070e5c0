"""Zoo-Tuning: Adaptive Transfer from a Zoo of Models (Shu, Kou, Cao, Wang, Long; ICML 2021).

https://proceedings.mlr.press/v139/shu21b.html — official code: thuml/Zoo-Tuning (classification only).

Tables (no paper cell could be transcribed; every published cell is reported as "not transcribed"):

- ``classification`` — CIFAR-100, COCO-70, FGVC Aircraft, Stanford Cars, MIT Indoor 67, DMLab, EuroSAT × {each hub
  model fine-tuned alone (the best one by validation is derived in the report), ensemble, feature
  concatenation, distillation, Zoo-Tuning, lite Zoo-Tuning} (the baselines: ``methods/hub_ensemble.py``, ``hub_distill.py``). Hub: 5 ResNet-50s — supervised ImageNet, MoCo v1 (200 epochs, as the official code loads),
  Mask R-CNN, DeepLabV3, Keypoint R-CNN (COCO).
- ``rl`` — Atari transfer from a hub of two source policies (Seaquest, Riverraid) to Alien, Gopher, James Bond:
  scratch, fine-tuning each source, the ensemble of the fine-tuned policies, Zoo-Tuning and lite Zoo-Tuning on the
  policy CNN (``rl/methods/``); settings and unknowns in ``papers/rl_common.py``. Not part of ``make demo``
  (``demo=False``): ``make reproduce-rl``.
- The facial-landmark experiments are not implemented (no official code was released).

Schedule (``main.py``/``train.sh``): SGD Nesterov 0.9, wd 5e-4, lr 0.01 for every group (``--ratio`` 1), batch 48,
15,050 iterations, ×0.1 at 6,000 and 12,000 (18,000 is never reached), validation every 1,000, ten-crop test. The
official code validates on the test split; we validate on 20 % of train (Co-Tuning's rule) and report test at the
best-validation step and at the last step.
"""

from __future__ import annotations

from transferlab.papers.finetune import MINI_COMMON
from transferlab.papers.rl_common import rl_table
from transferlab.papers.spec import Paper, Table, register

DATASETS = ["cifar100", "coco70", "fgvc_aircraft", "stanford_cars", "mit_indoor67", "dmlab", "eurosat"]
HUB = ["IMAGENET1K_V1", "moco_v1_200ep", "maskrcnn_coco_v1", "deeplabv3_coco_v1", "keypointrcnn_coco_v1"]
MINI_HUB = ["mini:fmnist_full", "mini:fmnist_coarse", "mini:fmnist_a", "mini:fmnist_rot", "mini:digits"]
RL_METHODS = ["rl_ensemble", "rl_zoo_tuning", "rl_zoo_tuning_lite"]
HUB_METHODS = ["ensemble", "feature_concat", "distill", "zoo_tuning", "zoo_tuning_lite"]
SCHEDULE = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
            "head_lr_mult": 1.0, "schedule": "multistep", "milestones": [6000, 12000, 18000], "gamma": 0.1,
            "iterations": 15050, "eval_every": 1000, "batch_size": 48}  # fmt: skip

PAPER = register(
    Paper(
        name="zoo_tuning",
        title="Zoo-Tuning: Adaptive Transfer from a Zoo of Models (ICML 2021)",
        link="https://proceedings.mlr.press/v139/shu21b.html",
        notebook="zoo_tuning",
        tables={
            ("classification", "paper"): Table(
                name="classification",
                title="Classification with a zoo of 5 ResNet-50s",
                protocol="paper",
                base={
                    **SCHEDULE,
                    "backbone": "resnet50",
                    "preset": "imagenet224",
                    "ten_crop": True,
                    "val_fraction": 0.2,
                    "num_workers": 8,
                },
                grid=[
                    {"dataset": DATASETS, "method": ["finetune"], "pretrained": HUB},
                    {"dataset": DATASETS, "method": HUB_METHODS, "pretrained": ["hub:paper"]},
                ],
                provenance="thuml/Zoo-Tuning main.py and train.sh defaults; datasets from the paper's summary",
            ),  # fmt: skip
            ("classification", "mini"): Table(
                name="classification",
                title="Mini: a zoo of 5 mini-hub models on Fashion-MNIST and digits targets",
                protocol="mini",
                base={**MINI_COMMON, "lr": 0.01, "head_lr_mult": 10.0},
                grid=[
                    {
                        "dataset": ["mini_fmnist", "mini_digits"],
                        "method": ["finetune"],
                        "pretrained": MINI_HUB,
                        "sample_rate": [0.15],
                    },
                    {
                        "dataset": ["mini_fmnist", "mini_digits"],
                        "method": HUB_METHODS,
                        "pretrained": ["hub:mini"],
                        "sample_rate": [0.15],
                    },
                ],
                provenance="transferlab mini protocol",
            ),  # fmt: skip
            ("rl", "paper"): rl_table(
                "paper", RL_METHODS, "Atari transfer from Seaquest and Riverraid policies"
            ),
            ("rl", "mini"): rl_table(
                "mini", RL_METHODS, "Mini: Atari transfer (42×42) from two source policies"
            ),
        },
        not_implemented={"landmarks": "300W/WFLW/COFW (no official code)"},
        claims={
            "rl": "Zoo-Tuning transfers better than fine-tuning the best single source policy and than the "
            "ensemble of the fine-tuned policies (the paper's direction; its RL numbers are not transcribed)"
        },
    )
)
