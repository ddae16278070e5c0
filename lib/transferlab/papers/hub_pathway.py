"""Hub-Pathway: Transfer Learning from a Hub of Pre-trained Models (Shu, Cao, Zhang, Wang, Long; NeurIPS 2022).

https://arxiv.org/abs/2206.03726 — no official code was found, and the paper body could not be read: the method is
transferlab's reading of the abstract (``../shared/docs/papers/hub_pathway.md`` §6), every choice a named option.

Tables (no published cell is transcribed):
- ``classification`` — the 7 targets of Zoo-Tuning × {best single model (derived from the single-model runs),
  ensemble, distillation, Zoo-Tuning, Hub-Pathway};
- ``ablation`` — no noise, no exploration loss, no exploitation loss, k ∈ {1, 2, 3, K};
- ``landmarks`` — 300W, WFLW, COFW × {best single model, ensemble, Zoo-Tuning, Hub-Pathway} (the summary: "the same
  model hub", HRNet's protocols, 60 epochs, batch 16, Adam 1e-4, ×0.1 at 30 and 50); unknowns labelled in
  :mod:`transferlab.papers.landmark_tables`; the mini table is a keypoint PROXY (not faces);
- ``rl`` — Atari transfer (Seaquest, Riverraid → Alien, Gopher, James Bond): scratch, fine-tuning each source,
  the ensemble, Zoo-Tuning and Hub-Pathway on policies (``papers/rl_common.py``; not part of ``make demo``).
Schedule (reproducibility summary): SGD, lr 0.01, momentum 0.9, batch 48, 15k iterations, ×0.1 at 6k and 12k.
"""

from __future__ import annotations

from transferlab.papers import landmark_tables as lt
from transferlab.papers.rl_common import rl_tables
from transferlab.papers.spec import Claim, Paper, Table, register
from transferlab.papers.zoo_tuning import (
    DATASETS,
    HUB,
    MINI_DATASETS,
    MINI_DIGITS,
    MINI_HUB,
    MINI_HUB_BASE,
    SCHEDULE,
)

METHODS = ["ensemble", "distill", "zoo_tuning", "hub_pathway"]
RL_METHODS = ["rl_ensemble", "rl_zoo_tuning", "rl_hub_pathway"]
MINI_METHODS = ["ensemble", "feature_concat", "distill", "zoo_tuning", "hub_pathway"]
ABLATIONS = [{"noise": False}, {"explore_weight": 0.0}, {"exploit_weight": 0.0}, {"k": 1}, {"k": 3}, {"k": 5}]
PAPER_BASE = {**SCHEDULE, "iterations": 15000, "backbone": "resnet50", "preset": "imagenet224", "ten_crop": True,
              "val_fraction": 0.2, "num_workers": 8}  # fmt: skip
MINI_BASE = MINI_HUB_BASE  # the Zoo-Tuning mini table's settings: their shared cells run once

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
                    {"dataset": MINI_DATASETS, "method": ["finetune"], "pretrained": MINI_HUB},
                    {"dataset": MINI_DATASETS, "method": MINI_METHODS, "pretrained": ["hub:mini"]},
                ],
                overrides=MINI_DIGITS,
                provenance="transferlab mini protocol (papers/mini.py)",
            ),  # fmt: skip
            ("landmarks", "paper"): lt.paper_table(
                HUB,
                METHODS,
                {"distill": lt.NOT_HERE},
                "schedule: the reproducibility summary = HRNet-Facial-Landmark-Detection experiments/*.yaml; the "
                "method and the rest labelled as our reading",
            ),
            ("landmarks", "mini"): lt.mini_table(MINI_HUB, ["ensemble", "zoo_tuning", "hub_pathway"]),
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
            **rl_tables(RL_METHODS, "Atari transfer from a hub of Seaquest and Riverraid policies"),
        },
        claims=tuple(
            Claim(
                "classification",
                "hub_pathway",
                ("best_single", "ensemble", "distill", "feature_concat", "zoo_tuning"),
                "Hub-Pathway beats the best single model, the ensemble, distillation, feature concatenation and "
                f"Zoo-Tuning (paper, abstract: state of the art for model-hub transfer) — on {d}",
                where={"dataset": d},
            )
            for d in MINI_DATASETS
        ),  # fmt: skip
    )
)
