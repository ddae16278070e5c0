"""Fine-tuning versus training from scratch: the baseline every paper in the suite starts from.

Not a paper of its own: the vertical slice through the suite (notebook → runner → results → report), and the
"fine-tuning" rows the four papers compare against.

**paper protocol** — CUB-200-2011 at the Co-Tuning / TLlib sampling rates (15/30/50/100 %), ImageNet ResNet-50
(``IMAGENET1K_V1``, the 2021-era weights). Fine-tuning uses the official Co-Tuning recipe (thuml/CoTuning
``train.py``: SGD Nesterov, momentum 0.9, wd 5e-4, lr 1e-3 with 10× for the new head, batch 48, 9,050 iterations,
×0.1 at 6,000, ten-crop test). Training from scratch has no published recipe in these papers: ours is the same
schedule at lr 0.1 with cosine decay — **our choice, not a paper's**.

**mini protocol** — the embedded Fashion-MNIST target (``mini_fmnist``, 200 images per class in its pool) at 5 %,
15 % and 50 %, fine-tuning the mini hub's ``fmnist_full`` model (supervised on the 58,000 hub-pool images, none of
which is in the target pool) against the same ResNet-8 from scratch. 300 iterations of batch 32, validation every 50.
Learning rates were chosen once on the validation split (finetune 0.01 with a 10× head; scratch 0.05 of {0.05, 0.1}).
"""

from __future__ import annotations

from transferlab.papers.spec import Paper, Table, register

PAPER_FINETUNE = {  # thuml/CoTuning train.py defaults (batch 48, 9,050 iterations, lr 1e-3, 10× head, ×0.1 at 6k)
    "optimizer": "sgd",
    "lr": 1e-3,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "head_lr_mult": 10.0,
    "schedule": "multistep",
    "milestones": [6000],
    "gamma": 0.1,
    "iterations": 9050,
    "eval_every": 1000,
    "batch_size": 48,
}

MINI_COMMON = {
    "backbone": "mini_resnet",
    "dataset": "mini_fmnist",
    "batch_size": 32,
    "eval_batch_size": 1024,
    "iterations": 300,
    "eval_every": 50,
    "schedule": "cosine",
    "weight_decay": 5e-4,
    "val_fraction": 0.1,
}

PAPER = register(
    Paper(
        name="finetune",
        title="Fine-tuning vs. training from scratch",
        link="https://arxiv.org/abs/1411.1792",
        notebook="finetune",
        tables={
            ("sampling", "mini"): Table(
                name="sampling",
                title="Mini: fine-tuning a mini-hub model vs. scratch on Fashion-MNIST at low sampling rates",
                protocol="mini",
                base=MINI_COMMON,
                grid={"method": ["finetune", "scratch"], "sample_rate": [0.05, 0.15, 0.5]},
                method_overrides={
                    "finetune": {"pretrained": "mini:fmnist_full", "lr": 0.01, "head_lr_mult": 10.0},
                    "scratch": {"pretrained": "none", "lr": 0.05, "head_lr_mult": 1.0},
                },
                provenance="transferlab mini protocol (lrs chosen on validation); mirrors Co-Tuning's sampling-rate table",
            ),
            ("sampling", "paper"): Table(
                name="sampling",
                title="CUB-200-2011, ResNet-50 (ImageNet), sampling rates 15/30/50/100 %",
                protocol="paper",
                base={
                    **PAPER_FINETUNE,
                    "backbone": "resnet50",
                    "dataset": "cub200",
                    "preset": "imagenet224",
                    "ten_crop": True,
                    "num_workers": 8,
                },
                grid={"method": ["finetune", "scratch"], "sample_rate": [0.15, 0.3, 0.5, 1.0]},
                method_overrides={
                    "finetune": {"pretrained": "IMAGENET1K_V1"},
                    "scratch": {"pretrained": "none", "lr": 0.1, "head_lr_mult": 1.0, "schedule": "cosine"},
                },
                provenance="fine-tuning: thuml/CoTuning train.py defaults; scratch: transferlab's choice (no paper recipe)",
            ),
        },
    )
)
