"""Facial landmark detection tables shared by Zoo-Tuning and Hub-Pathway (both papers evaluate 300W, WFLW, COFW).

**Paper protocol.** What the sources state (``shared/docs/papers/hub_pathway.md`` §5, ``zoo_tuning.md`` §9, the
papers' reproducibility summaries): the same hub as classification (5 ResNet-50s), targets 300W, WFLW and COFW,
"the training and testing protocols" of HRNet's facial-landmark code, 60 epochs, batch 16, Adam, lr 1e-4, ×0.1 at
epochs 30 and 50, metric NME. This schedule is exactly HRNet-Facial-Landmark-Detection's experiment configs
(``experiments/{300w,wflw,cofw}/*.yaml``: Adam, LR 0.0001, WD 0.0, LR_STEP [30, 50], END_EPOCH 60, batch 16,
256 × 256 input, 64 × 64 heat maps, σ 1.0 / 1.5 / 1.5, flip, scale 0.25, rotation 30°), which also give the
augmentation (:class:`transferlab.data.keypoints.FaceCrop`) and the NME normalisers (:mod:`transferlab.data.faces`).

**Unknown, labelled as our reading** (no landmark code of either paper exists):
- the head on a ResNet-50: the Simple Baselines deconvolution head (3 × 256, 64 × 64 heat maps), our reading;
- the learning rate of new parameters (heads, gates, generator): the base lr (``head_lr_mult`` 1), our reading;
- validation: 10 % of the training images carved out for model selection (HRNet selects on the test set), ours;
- 300W's test set: the "full" 689 images (common + challenging), our reading (HRNet's ``valid`` CSV);
- every hub method's own setting for landmarks (ensemble rule, Zoo-Tuning gates, Hub-Pathway's k, λs): the
  classification defaults, our reading; distillation and feature concatenation are classification-only here.

**Mini protocol** — a PROXY, not faces: 12 geometric keypoints of Fashion-MNIST silhouettes
(``mini_fmnist_keypoints``, :mod:`transferlab.data.mini_keypoints`), NME normalised by the box diagonal, 148 training
images (5 % of the 2,950 left in the 3,000-image target pool after a fixed validation set of 50 images, as
the other mini tables hold one out: ``papers/mini.py``), 100 Adam steps at lr 1e-3 (×0.1 at 50 and 83
%, the paper schedule's milestones), the heat-map head (2 deconvolutions of 32 channels: 4 × 4 → 16 × 16). Its
numbers are not comparable to any published NME. The lr, 1e-3, was the best by validation NME of {1e-3, 3e-3, 1e-2}
at seed 0 for fine-tuning and for scratch alike, chosen on the v1 mini hub (its supervised Fashion-MNIST model) and
kept for the v2 hub without choosing again (a limitation the README states); the hub methods use it as it is.
"""

from __future__ import annotations

from transferlab.papers.spec import Table

DATASETS = ["300w", "wflw", "cofw"]
TRAIN_IMAGES = {"300w": 3148, "wflw": 7500, "cofw": 1345}  # official training sets (the facts)
VAL_FRACTION, BATCH, EPOCHS, DECAY_EPOCHS = 0.1, 16, 60, (30, 50)
SCHEDULE = {
    "optimizer": "adam",
    "lr": 1e-4,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "head_lr_mult": 1.0,
    "schedule": "multistep",
    "gamma": 0.1,
    "batch_size": BATCH,
    "val_fraction": VAL_FRACTION,
    "eval_batch_size": 64,
    "num_workers": 8,
}  # fmt: skip  (momentum: Adam's β1, torch's default)
NOT_HERE = "classification only in transferlab (its loss or head is built for class outputs)"


def epoch_steps(dataset: str) -> int:
    """Iterations per epoch: the training images left after carving validation (as ``splits.carve_validation``
    does for one group), in full batches of 16 (our loop drops the last partial batch)."""
    n = TRAIN_IMAGES[dataset]
    return (n - min(max(1, round(VAL_FRACTION * n)), n - 1)) // BATCH


def per_dataset_schedule() -> list[tuple[dict, dict]]:
    """60 epochs, ×0.1 at epochs 30 and 50, validation every epoch (HRNet validates every epoch), in iterations."""
    out = []
    for d in DATASETS:
        e = epoch_steps(d)
        out.append(({"dataset": d}, {"iterations": EPOCHS * e, "milestones": [k * e for k in DECAY_EPOCHS],
                                     "eval_every": e}))  # fmt: skip
    return out


PROXY = "mini_fmnist_keypoints"
MINI_BASE = {"backbone": "mini_resnet", "dataset": PROXY, "sample_rate": 0.05, "val_per_class": 50, "batch_size": 32,
             "eval_batch_size": 500, "optimizer": "adam", "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0,
             "head_lr_mult": 1.0, "schedule": "multistep", "milestones": [50, 83], "gamma": 0.1, "iterations": 100,
             "eval_every": 25}  # fmt: skip
PROXY_NOTE = ("PROXY task, not faces: geometric keypoints of Fashion-MNIST silhouettes; NME normalised by the box "
              "diagonal; not comparable to any published NME")  # fmt: skip


def paper_table(hub: list[str], methods: list[str], missing: dict[str, str], provenance: str) -> Table:
    return Table(
        name="landmarks",
        title="Facial landmarks (300W, WFLW, COFW) with a hub of 5 ResNet-50s: NME (%), lower is better",
        protocol="paper",
        base={**SCHEDULE, "backbone": "resnet50", "preset": "auto", "ten_crop": False},
        grid=[
            {"dataset": DATASETS, "method": ["finetune"], "pretrained": hub},
            {"dataset": DATASETS, "method": methods, "pretrained": ["hub:paper"]},
        ],
        overrides=per_dataset_schedule(),
        provenance=provenance,
        notes="unknown, our reading (transferlab/papers/landmark_tables.py): the head on ResNet-50, the lr of new "
        "parameters, the validation split, 300W's test set (full), the hub methods' landmark settings",
        missing=missing,
    )


def mini_table(hub: list[str], methods: list[str]) -> Table:
    return Table(
        name="landmarks",
        title="Mini landmark PROXY (keypoints of Fashion-MNIST silhouettes, not faces): NME (%), lower is better",
        protocol="mini",
        base=MINI_BASE,
        grid=[
            {"method": ["finetune"], "pretrained": hub},
            {"method": methods, "pretrained": ["hub:mini"]},
            {"method": ["scratch"], "pretrained": ["none"]},
        ],
        provenance="transferlab mini protocol; " + PROXY_NOTE,
        notes=PROXY_NOTE,
    )


__all__ = [
    "DATASETS",
    "MINI_BASE",
    "NOT_HERE",
    "PROXY",
    "SCHEDULE",
    "epoch_steps",
    "mini_table",
    "paper_table",
]
