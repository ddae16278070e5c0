"""Co-Tuning's relationship p(y_s | y_t) between source and target categories, and its soft-label loss.

The pieces of :mod:`transferlab.methods.co_tuning` (see its docstring for the equations and sources) that the image
method and the token method (:mod:`transferlab.methods.co_tuning_tokens`) share; public so a notebook can study them
(golden-checked against the official code in ``tests/test_co_tuning.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

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


__all__ = [
    "T_CAL",
    "C_GRID",
    "soft_label_loss",
    "direct_relationship",
    "calibrate",
    "reverse_relationship",
    "check_relationship",
    "check_validation",
]
