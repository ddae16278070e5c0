"""Hub-Pathway: Transfer Learning from a Hub of Pre-trained Models (Shu, Cao, Zhang, Wang, Long; NeurIPS 2022).

https://arxiv.org/abs/2206.03726 — no official code was found, and the paper body could not be read: the method is
transferlab's reading of the abstract (``../shared/docs/papers/hub_pathway.md`` §6), every choice a named option.

Tables (no published cell is transcribed):
- ``classification`` — the 7 targets of Zoo-Tuning × {best single model (derived from the single-model runs),
  ensemble, distillation, Zoo-Tuning, Hub-Pathway};
- ``ablation`` — no noise, no exploration loss, no exploitation loss, k ∈ {1, 2, 3, K};
- ``rl`` — Atari transfer (Seaquest, Riverraid → Alien, Gopher, James Bond): scratch, fine-tuning each source,
  the ensemble, Zoo-Tuning and Hub-Pathway on policies (``papers/rl_common.py``; not part of ``make demo``).
Schedule (reproducibility summary): SGD, lr 0.01, momentum 0.9, batch 48, 15k iterations, ×0.1 at 6k and 12k.
"""

from __future__ import annotations

from transferlab.papers.finetune import MINI_COMMON
from transferlab.papers.rl_common import rl_table
from transferlab.papers.spec import Paper, Table, register
from transferlab.papers.zoo_tuning import DATASETS, HUB, MINI_HUB, SCHEDULE

METHODS = ["ensemble", "distill", "zoo_tuning", "hub_pathway"]
RL_METHODS = ["rl_ensemble", "rl_zoo_tuning", "rl_hub_pathway"]
ABLATIONS = [{"noise": False}, {"explore_weight": 0.0}, {"exploit_weight": 0.0}, {"k": 1}, {"k": 3}, {"k": 5}]
PAPER_BASE = {**SCHEDULE, "iterations": 15000, "backbone": "resnet50", "preset": "imagenet224", "ten_crop": True,
              "val_fraction": 0.2, "num_workers": 8}  # fmt: skip
MINI_BASE = {**MINI_COMMON, "lr": 0.01, "head_lr_mult": 10.0, "sample_rate": 0.15}

PAPER = register(
    Paper(
        name="hub_pathway",
        title="Hub-Pathway: Transfer Learning from a Hub of Pre-trained Models (NeurIPS 2022)",
        link="https://arxiv.org/abs/2206.03726",
        notebook="hub_pathway",
        tables={
            ("classification", "paper"): Table(
                name="classification",
                title="Classification with a hub of 5 ResNet-50s",
                protocol="paper",
                base=PAPER_BASE,
                grid=[
                    {"dataset": DATASETS, "method": ["finetune"], "pretrained": HUB},
                    {"dataset": DATASETS, "method": METHODS, "pretrained": ["hub:paper"]},
                ],
                provenance="schedule from the paper's reproducibility summary; method: transferlab's reading",
            ),  # fmt: skip
            ("ablation", "paper"): Table(
                name="ablation",
                title="Hub-Pathway ablations (our switches)",
                protocol="paper",
                base={**PAPER_BASE, "method": "hub_pathway", "pretrained": "hub:paper"},
                grid={"dataset": ["fgvc_aircraft", "mit_indoor67"], "method_params": ABLATIONS},
                provenance="ablation axes from the abstract; datasets ours",
            ),
            ("classification", "mini"): Table(
                name="classification",
                title="Mini: Hub-Pathway on the mini hub",
                protocol="mini",
                base=MINI_BASE,
                grid=[
                    {
                        "dataset": ["mini_fmnist", "mini_digits"],
                        "method": ["finetune"],
                        "pretrained": MINI_HUB,
                    },
                    {
                        "dataset": ["mini_fmnist", "mini_digits"],
                        "method": METHODS,
                        "pretrained": ["hub:mini"],
                    },
                ],
                provenance="transferlab mini protocol",
            ),  # fmt: skip
            ("ablation", "mini"): Table(
                name="ablation",
                title="Mini: Hub-Pathway ablations",
                protocol="mini",
                base={
                    **MINI_BASE,
                    "method": "hub_pathway",
                    "pretrained": "hub:mini",
                    "dataset": "mini_fmnist",
                },
                grid={"method_params": ABLATIONS},
                provenance="transferlab mini protocol",
            ),
            ("rl", "paper"): rl_table(
                "paper", RL_METHODS, "Atari transfer from a hub of Seaquest and Riverraid policies"
            ),
            ("rl", "mini"): rl_table(
                "mini", RL_METHODS, "Mini: Atari transfer (42×42) from two source policies"
            ),
        },
        not_implemented={"landmarks": "300W/WFLW/COFW facial landmarks"},
        claims={
            "rl": "Hub-Pathway transfers better than the best single source policy, the ensemble and "
            "Zoo-Tuning (the paper's direction; its RL numbers are not transcribed)"
        },
    )
)
