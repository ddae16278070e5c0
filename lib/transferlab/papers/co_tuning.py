"""Co-Tuning for Transfer Learning (You, Kou, Jiang, Wang, Long; NeurIPS 2020).

https://proceedings.neurips.cc/paper/2020/hash/c8067ad1937f728f51288b3eb986afaa-Abstract.html

Tables (the paper's own tables could not be transcribed: only COCO-70 = 85.65 is known, see
``papers/published/co_tuning.csv``; TLlib's re-implementation numbers are the peer column):

Mini tables (``papers/mini.py``): the mini hub's ancestor ``clusters`` with its 64-way pseudo-class head as the
source (its relationship to the 10 target classes is informative, not the identity), fine-tuning's validated lr for
every method, each method at its own defaults, 5 seeds; a fixed 1,000-image validation set.

- ``sampling`` — CUB-200-2011 / Stanford Cars / FGVC Aircraft × 15/30/50/100 % × {fine-tuning, L2-SP, DELTA, BSS,
  LwF, Co-Tuning}, supervised ImageNet ResNet-50 and MoCo ResNet-50, as TLlib's peer table has it. Which MoCo
  checkpoint TLlib used is unverified: we name MoCo v2 800 epochs. MoCo has no classifier; Co-Tuning's source head
  and LwF's old task are then the supervised ImageNet ``fc``, which is what TLlib's code does (see
  ``transferlab.models._moco_backbone``). Baseline hyper-parameters are each method's defaults (TLlib's examples,
  with provenance in ``methods/<method>.py``); L2-SP and DELTA switch weight decay off, as TLlib does;
- ``coco70`` — COCO-70, 100 % (mini: the whole target pool, the large-data end of the sampling table);
- ``relationship`` — the ablation of how p(y_s|y_t) is obtained: the paper's calibrated reverse approach (official
  default) against the direct class-mean approach (TLlib's only variant);
- the NLP variant (CoNLL-2003 NER with a BERT masked-LM head as the source head) is **not implemented** in transferlab.

Schedule (``paper`` protocol), thuml/CoTuning ``train.py``: SGD Nesterov 0.9, wd 5e-4, lr 1e-3 for the backbone and
the kept source head, 10× for the new head, batch 48, 9,050 iterations, ×0.1 at 6,000, validation every 1,000, ten-crop
test; trade-off λ = 2.3. Validation: 20 % of the training images when a dataset has no validation split (paper text,
ri.k117.org quote) — our ``val_fraction`` = 0.2.
"""

from __future__ import annotations

from transferlab.papers.finetune import PAPER_FINETUNE
from transferlab.papers.mini import FINETUNE, MINI_COMMON
from transferlab.papers.spec import Claim, Paper, Table, register

METHODS = ["finetune", "l2sp", "delta", "bss", "lwf", "co_tuning"]
PAPER_BASE = {**PAPER_FINETUNE, "backbone": "resnet50", "preset": "imagenet224", "ten_crop": True,
              "val_fraction": 0.2, "num_workers": 8, "pretrained": "IMAGENET1K_V1"}  # fmt: skip
# the mini hub's ancestor with its 64-way pseudo-class head as the source head (a label space unlike the target's, as
# ImageNet's 1000 classes are unlike CUB's 200), fine-tuning's validated lr (papers/mini.py)
MINI_BASE = {**MINI_COMMON, **FINETUNE}

NOT_IMPLEMENTED = {
    "ner": "CoNLL-2003 English NER with bert-base-cased, the masked-LM head as source head (thuml/CoTuning nlp/): "
    "not implemented in transferlab; the README's re-run F1 (0.9116/0.9134/0.9131) is in the peer registry",
}

PAPER = register(
    Paper(
        name="co_tuning",
        title="Co-Tuning for Transfer Learning (NeurIPS 2020)",
        link="https://proceedings.neurips.cc/paper/2020/hash/c8067ad1937f728f51288b3eb986afaa-Abstract.html",
        notebook="co_tuning",
        tables={
            ("sampling", "paper"): Table(
                name="sampling",
                title="Fine-grained targets × sampling rates, ResNet-50 (supervised / MoCo pre-training)",
                protocol="paper",
                base=PAPER_BASE,
                grid={
                    "dataset": ["cub200", "stanford_cars", "fgvc_aircraft"],
                    "method": METHODS,
                    "sample_rate": [0.15, 0.3, 0.5, 1.0],
                    "pretrained": ["IMAGENET1K_V1", "moco_v2_800ep"],
                },
                provenance="thuml/CoTuning train.py defaults; datasets and rates as TLlib's peer table",
            ),  # fmt: skip
            ("coco70", "paper"): Table(
                name="coco70",
                title="COCO-70 (800 train images per class), ResNet-50 ImageNet",
                protocol="paper",
                base=PAPER_BASE,
                grid={"dataset": ["coco70"], "method": METHODS, "sample_rate": [1.0]},
                provenance="thuml/CoTuning README (COCO-70) and train.py defaults; backbone for COCO-70 unverified",
            ),
            ("relationship", "paper"): Table(
                name="relationship",
                title="Ablation: calibrated reverse relationship (paper) vs. direct class means (TLlib)",
                protocol="paper",
                base={**PAPER_BASE, "method": "co_tuning"},
                grid={
                    "dataset": ["cub200"],
                    "sample_rate": [0.15, 1.0],
                    "method_params": [{"relationship": "reverse"}, {"relationship": "direct"}],
                },
                provenance="thuml/CoTuning module/relationship_learning.py (both approaches)",
            ),  # fmt: skip
            ("sampling", "mini"): Table(
                name="sampling",
                title="Mini: Fashion-MNIST target × sampling rates, mini-hub source with its source head",
                protocol="mini",
                base=MINI_BASE,
                grid={"dataset": ["mini_fmnist"], "method": METHODS, "sample_rate": [0.05, 0.15, 0.5]},
                provenance="transferlab mini protocol (mirrors the sampling table)",
            ),
            ("coco70", "mini"): Table(
                name="coco70",
                title="Mini stand-in for COCO-70: the whole Fashion-MNIST target pool (100 %)",
                protocol="mini",
                base=MINI_BASE,
                grid={"dataset": ["mini_fmnist"], "method": METHODS, "sample_rate": [1.0]},
                provenance="transferlab mini protocol (the large-data row of the sampling table)",
            ),
            ("relationship", "mini"): Table(
                name="relationship",
                title="Mini ablation: reverse vs. direct relationship",
                protocol="mini",
                base={**MINI_BASE, "method": "co_tuning"},
                grid={
                    "dataset": ["mini_fmnist"],
                    "sample_rate": [0.05, 0.15],
                    "method_params": [{"relationship": "reverse"}, {"relationship": "direct"}],
                },
                provenance="transferlab mini protocol",
            ),  # fmt: skip
        },
        not_implemented=NOT_IMPLEMENTED,
        claims=(
            Claim(
                "sampling",
                "co_tuning",
                ("finetune", "l2sp", "delta", "bss", "lwf"),
                "Co-Tuning improves on fine-tuning and on the regularisers (L2-SP, DELTA, BSS) at every sampling "
                "rate (paper, Table 2); LwF is the paper's other kept-head baseline",
            ),
            Claim(
                "coco70",
                "co_tuning",
                ("finetune", "l2sp", "delta", "bss", "lwf"),
                "Co-Tuning also helps with all the data, where regularisers bring little (paper, abstract)",
            ),
        ),  # fmt: skip
    )
)
