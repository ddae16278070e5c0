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

The pieces are public functions so a notebook can study them: :func:`soft_label_loss`,
:func:`direct_relationship`, :func:`calibrate`, :func:`reverse_relationship`. Golden tests compare them with the
official code's outputs (``tests/test_co_tuning.py``).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.config import ConfigError
from transferlab.methods import co_tuning_tokens, prepared
from transferlab.methods.base import METHODS, Method
from transferlab.models import Backbone
from transferlab.tasks import Task

T_CAL = 0.8840456604957581  # hard-coded in the official relationship_learning.py (an ImageNet ResNet-50 calibration)
C_GRID = (1e4, 3e3, 1e3, 3e2, 1e2, 3e1, 1e1, 3.0, 1.0, 3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)


def soft_label_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(1/B) Σ_b Σ_s −target[b, s] · log_softmax(logits[b])_s. logits, target: [B, N_p]; returns a scalar."""
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def direct_relationship(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """R[c] = mean over images of class c of softmax(temperature · logits); [max(label)+1, N_p]; NaN rows for
    classes without images (as the official code gives)."""
    probs = _softmax(temperature * np.asarray(logits, dtype=np.float64))
    labels = np.asarray(labels)
    rows = []
    for c in range(int(labels.max()) + 1):
        members = probs[labels == c]
        rows.append(members.mean(0) if len(members) else np.full(probs.shape[1], np.nan))
    return np.stack(rows)


def calibrate(logits: np.ndarray, labels: np.ndarray, return_log: bool = False):
    """Temperature s minimising mean CE(s · logits, labels), as the official ``calibrate``: float32, torch LBFGS at
    its defaults, up to 20 ``step`` calls, stopping after a call while the cumulative iteration count is below 20.

    Returns s (unconstrained; it may be negative), and with ``return_log`` the (n_iter, func_evals, s) after each call.
    """
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    scale = torch.ones(1, 1, requires_grad=True)
    opt = torch.optim.LBFGS([scale])

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z * scale, y)
        loss.backward()
        return loss

    log = []
    for _ in range(20):
        opt.step(closure)
        state = opt.state[scale]
        log.append((state["n_iter"], state["func_evals"], scale.item()))
        if state["n_iter"] < 20:
            break
    return (scale.item(), np.array(log, dtype=np.float64)) if return_log else scale.item()


def reverse_relationship(
    train_logits: np.ndarray,
    train_labels: np.ndarray,
    val_logits: np.ndarray,
    val_labels: np.ndarray,
    temperature: float = T_CAL,
    c_grid: tuple[float, ...] = C_GRID,
) -> dict:
    """The calibrated reverse approach. Returns R [N_t, N_p] and every intermediate (chosen C, validation accuracies,
    coefficients W [N_t, N_p], calibration scale, p(y_t|y_s) [N_p, N_t], p(y_s) [N_p])."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    p_train = _softmax(temperature * np.asarray(train_logits, dtype=np.float64))
    p_val = _softmax(temperature * np.asarray(val_logits, dtype=np.float64))
    accs, coefs = [], []
    for c in c_grid:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", ConvergenceWarning
            )  # the official code fits with the defaults too
            clf = LogisticRegression(C=c, fit_intercept=False).fit(p_train, train_labels)
        accs.append(float((clf.predict(p_val) == val_labels).mean()))
        w = clf.coef_
        if w.shape[0] == 1:  # two target classes: sigmoid(w·x) = softmax of the rows (−w/2, w/2)
            w = np.vstack([-w / 2, w / 2])
        coefs.append(w)
    best = int(np.argmax(accs))  # the first C of the grid among ties, as the official code
    coef = coefs[best]
    scale, log = calibrate((p_val @ coef.T).astype(np.float32), val_labels, return_log=True)
    p_target_given_source = _softmax(coef.T * scale)
    source_marginal = np.concatenate([p_train, p_val]).mean(0)
    joint = (p_target_given_source * source_marginal[:, None]).T
    return {
        "R": joint / joint.sum(1, keepdims=True),
        "chosen_index": best,
        "chosen_C": c_grid[best],
        "val_acc": np.array(accs),
        "coef": coef,
        "scale": scale,
        "calib_log": log,
        "p_target_given_source": p_target_given_source,
        "source_marginal": source_marginal,
    }


def check_relationship(r: np.ndarray, num_target: int, num_source: int) -> np.ndarray:
    """R must be [N_t, N_p] with finite rows that are distributions; otherwise a clear error."""
    r = np.asarray(r, dtype=np.float64)
    if r.shape != (num_target, num_source):
        raise ValueError(
            f"relationship has shape {r.shape}, but the heads need [target classes, source classes] = "
            f"[{num_target}, {num_source}]"
        )
    bad = np.flatnonzero(~np.isfinite(r).all(1) | (np.abs(r.sum(1) - 1) > 1e-6) | (r < 0).any(1))
    if len(bad):
        raise ValueError(
            f"relationship rows {bad[:10].tolist()} are not probability distributions over the source classes "
            "(a target class without training images gives a NaN row)"
        )
    return r


def check_validation(val_labels: np.ndarray, num_classes: int) -> None:
    """The reverse approach chooses C and calibrates on validation: it needs at least one image per class on
    average and two classes; fewer cannot tell the C values apart."""
    seen = len(np.unique(val_labels))
    if len(val_labels) < num_classes or seen < 2:
        raise ValueError(
            f"the validation split has {len(val_labels)} images of {seen} of the {num_classes} classes: too few to "
            "choose C and calibrate the reverse relationship; raise val_fraction (or the sample rate), or use "
            "relationship='direct'"
        )


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
