"""Fine-tuning versus training from scratch: the baseline every paper in the suite starts from.

Not a paper of its own: the vertical slice through the suite (notebook → runner → results → report), and the
"fine-tuning" rows the four papers compare against.

**paper protocol** — CUB-200-2011 at the Co-Tuning / TLlib sampling rates (15/30/50/100 %), ImageNet ResNet-50
(``IMAGENET1K_V1``, the 2021-era weights). Fine-tuning uses the official Co-Tuning recipe (thuml/CoTuning
``train.py``: SGD Nesterov, momentum 0.9, wd 5e-4, lr 1e-3 with 10× for the new head, batch 48, 9,050 iterations,
×0.1 at 6,000, ten-crop test). Training from scratch has no published recipe in these papers: ours is the same
schedule at lr 0.1 with cosine decay — **our choice, not a paper's**.

**mini protocol** (``papers/mini.py``) — the embedded Fashion-MNIST target (``mini_fmnist``) at 5 %, 15 % and 50 %
of its 200 training images per class (a fixed 100 per class validate), fine-tuning the mini hub's ancestor
``clusters`` (pre-trained on 64 pixel clusters of the hub images: no target image, no target label) against the
same ResNet-8 from scratch; 300 iterations of batch 32, cosine, validation every 50. The learning rates were chosen
on validation by the ``sampling_design`` table (design seeds 100–102, 15 %).
"""

from __future__ import annotations

from transferlab.papers.mini import DESIGN_SEEDS, FINETUNE, FINETUNE_LRS, MINI_COMMON, SCRATCH, SCRATCH_LRS
from transferlab.papers.spec import Claim, Paper, Table, register

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
                method_overrides={"finetune": FINETUNE, "scratch": SCRATCH},
                provenance="transferlab mini protocol (papers/mini.py; lrs chosen on validation by sampling_design); "
                "mirrors Co-Tuning's sampling-rate table",
            ),
            ("sampling_design", "mini"): Table(
                name="sampling_design",
                title="Mini design: the fine-tuning and scratch learning rates, chosen on validation",
                protocol="mini",
                base={**MINI_COMMON, "sample_rate": 0.15},
                grid=[
                    {
                        "method": ["finetune"],
                        "lr": FINETUNE_LRS,
                        "pretrained": [FINETUNE["pretrained"]],
                        "head_lr_mult": [FINETUNE["head_lr_mult"]],
                    },
                    {"method": ["scratch"], "lr": SCRATCH_LRS, "pretrained": ["none"], "head_lr_mult": [1.0]},
                ],  # fmt: skip
                seeds=DESIGN_SEEDS,
                kind="design",
                provenance="transferlab mini protocol design",
                notes="the best mean validation accuracy per method sets papers/mini.py FINETUNE and SCRATCH",
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
        claims=(
            Claim(
                "sampling",
                "finetune",
                ("scratch",),
                "fine-tuning a pre-trained model beats training from "
                "scratch when the target has little data (the premise of all four papers)",
            ),
        ),  # fmt: skip
    )
)
