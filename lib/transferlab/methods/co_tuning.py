"""Co-Tuning (You, Kou, Jiang, Wang, Long; NeurIPS 2020): keep the source head and learn p(y_s | y_t).

https://proceedings.neurips.cc/paper/2020/hash/c8067ad1937f728f51288b3eb986afaa-Abstract.html

Fine-tuning discards the pre-trained classifier; Co-Tuning keeps it (the *source head* h_s, N_p source classes)
and gives it soft labels on the target data: for a target label y, the row R[y] of the relationship
R = p(y_s | y_t) ∈ [N_t, N_p]. Loss, for a batch of B images with features f = F(x):

    L = CE(h_t(f), y) + λ · (1/B) Σ_b Σ_s −R[y_b, s] · log softmax(h_s(f_b))_s          (λ = 2.3)

Both heads and the backbone are trained; the new target head h_t at ``head_lr_mult`` × lr (10× in the official code),
the backbone and the source head at the base lr. R is computed once, in ``prepare()``, from the source head's logits
on the target train images (test-time transform) and validation images, by one of two approaches:

- ``reverse`` (the paper's main approach and the official default, thuml/CoTuning
  ``module/relationship_learning.py``): source probabilities P = softmax(T·z) with T = 0.8840456604957581; a
  multinomial logistic regression without intercept from P to y, its C chosen on validation accuracy from a
  17-value grid (ties → the first); its validation logits calibrated by one temperature s (LBFGS); p(y_t | y_s) for
  each one-hot source class = softmax(s · Wᵀ); p(y_s) = mean of P over train + val; Bayes' rule normalised over
  source classes gives R.
- ``direct`` (the paper's baseline approach; TLlib's only one): R[c] = mean of the source probabilities of the
  images of class c. ``direct_variant="official"``: softmax(T·z) over train + val; ``"tllib"``: plain softmax over
  train only.

On a token-classification task (NER) the source head is BERT's masked-LM head and the target categories are the
entity types: relationship and loss are in :mod:`transferlab.methods.co_tuning_tokens`.

The pieces are public functions in :mod:`transferlab.methods.relationship` so a notebook can study them:
``soft_label_loss``, ``direct_relationship``, ``calibrate``, ``reverse_relationship``. Golden tests compare them with the
official code's outputs (``tests/test_co_tuning.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.config import ConfigError
from transferlab.methods import co_tuning_tokens, prepared
from transferlab.methods.base import METHODS, Method
from transferlab.methods.relationship import (
    T_CAL,
    check_relationship,
    check_validation,
    direct_relationship,
    reverse_relationship,
    soft_label_loss,
)
from transferlab.models import Backbone
from transferlab.tasks import Task

# ------------------------------------------------------------------------------------------------------ method
RELATIONSHIP_FILE = "relationship.npz"


@METHODS.register("co_tuning")
class CoTuning(Method):
    name = "co_tuning"
    paper = "Co-Tuning for Transfer Learning (NeurIPS 2020)"
    # token_classification: NER with BERT's masked-LM head as the source head (methods/co_tuning_tokens.py)
    tasks = ("classification", "token_classification")
    uses_source_head = True

    @dataclass(frozen=True)
    class Config:
        trade_off: float = 2.3  # λ: thuml/CoTuning train.py --trade_off default (also TLlib's)
        relationship: str = "reverse"  # reverse (the paper's main approach, official default) | direct | file
        direct_variant: str = (
            "official"  # direct only: official (T_cal, train+val) | tllib (plain softmax, train)
        )
        temperature: float = T_CAL  # source-logit temperature of the official code (reverse, direct/official)
        relationship_file: str = ""  # relationship=file: a .npy [N_t, N_p] of your own (e.g. from a notebook)

        def __post_init__(self) -> None:
            if self.relationship not in ("reverse", "direct", "file"):
                raise ConfigError(
                    f"relationship={self.relationship!r} is not valid; choose reverse, direct or file"
                )
            if self.direct_variant not in ("official", "tllib"):
                raise ConfigError(
                    f"direct_variant={self.direct_variant!r} is not valid; choose official or tllib"
                )
            if (self.relationship == "file") != bool(self.relationship_file):
                raise ConfigError("relationship_file is set exactly when relationship='file'")
            if self.trade_off < 0:
                raise ConfigError(f"trade_off={self.trade_off} must be >= 0")

    def __init__(self, backbone: Backbone, task: Task, cfg: CoTuning.Config):
        super().__init__(backbone, task, cfg)
        self.tokens = task.name == "token_classification"  # target categories: entity types, not the labels
        rows = len(task.entity_types) if self.tokens else task.outputs  # type: ignore[attr-defined]
        self.register_buffer("relationship", torch.zeros(rows, backbone.source_head.out_features))
        self.info: dict = {}

    def prepare(self, data) -> None:
        """R = p(y_s | y_t) from the source head on train (and val) images; cached in the run directory."""
        shape = tuple(self.relationship.shape)
        if self.cfg.relationship == "file":
            r = check_relationship(np.load(self.cfg.relationship_file, allow_pickle=False), *shape)
            self.relationship.copy_(torch.from_numpy(r))
            self.info = {"relationship": f"file {self.cfg.relationship_file}"}
            return
        key = prepared.fingerprint(
            self.backbone, self.cfg, data, skip=("head.",)
        )  # the new head plays no part
        saved = prepared.load(data, RELATIONSHIP_FILE, key)
        if saved is not None:
            self.relationship.copy_(torch.from_numpy(check_relationship(saved["R"], *shape)))
            self.info = json.loads(str(saved["info"]))
            return
        if self.tokens:
            r, self.info = co_tuning_tokens.relationship(self, data)
            self.relationship.copy_(torch.from_numpy(check_relationship(r, *shape)))
            prepared.save(data, RELATIONSHIP_FILE, key, R=r, info=json.dumps(self.info))
            return
        train_z, train_y = self._source_logits(data.train())
        val_z, val_y = self._source_logits(data.val())
        for labels in (train_y, val_y):
            if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(
                    f"target labels span {labels.min()}..{labels.max()}, outside the {self.num_classes}-way head"
                )
        c = self.cfg
        if c.relationship == "reverse":
            check_validation(val_y, self.num_classes)
            out = reverse_relationship(train_z, train_y, val_z, val_y, temperature=c.temperature)
            r = out["R"]
            self.info = {"relationship": "reverse", "chosen_C": out["chosen_C"], "calibration_scale": out["scale"],
                         "val_acc_by_C": out["val_acc"].tolist()}  # fmt: skip
        elif c.direct_variant == "official":
            r = direct_relationship(
                np.concatenate([train_z, val_z]), np.concatenate([train_y, val_y]), c.temperature
            )
            self.info = {"relationship": "direct (official: temperature, train+val)"}
        else:
            r = direct_relationship(train_z, train_y, 1.0)
            self.info = {"relationship": "direct (TLlib: plain softmax, train only)"}
        if r.shape[0] < self.num_classes:  # classes above the largest label seen have no row at all
            r = np.vstack([r, np.full((self.num_classes - r.shape[0], r.shape[1]), np.nan)])
        self.relationship.copy_(torch.from_numpy(check_relationship(r, *shape)))
        prepared.save(data, RELATIONSHIP_FILE, key, R=r, info=json.dumps(self.info))

    @torch.no_grad()
    def _source_logits(self, batches) -> tuple[np.ndarray, np.ndarray]:
        zs, ys = [], []
        for x, y in batches:
            zs.append(self.backbone.source_head(self.backbone.features(x)))
            ys.append(y)
        return prepared.to_numpy(zs), torch.cat(ys).cpu().numpy()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.tokens:
            return co_tuning_tokens.loss(self, x, y)
        f = self.backbone.features(x)
        target_logits = self.backbone.head(f)
        ce = F.cross_entropy(target_logits, y)
        co = soft_label_loss(self.backbone.source_head(f).float(), self.relationship[y])
        return {"loss": ce + self.cfg.trade_off * co, "ce": ce, "co_tuning": co, "logits": target_logits}

    def artifacts(self) -> dict:
        return {**super().artifacts(), "co_tuning": self.info}
