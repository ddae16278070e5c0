"""Co-Tuning for token classification (NER): the masked-LM head as source head, p(vocabulary token | entity type).

Official code: thuml/CoTuning ``nlp/modifier.py`` (read, not copied). The source categories are the masked-LM
vocabulary (V = 28,996 for bert-base-cased); the target categories are the K entity types (CoNLL: MISC, PER, ORG,
LOC, the row order of the official ``token_prob_of_entity.npy`` [4, 28996]). For the M entity tokens of a batch —
first sub-tokens whose label is not O (the official mask ``attention_mask == 1 & labels > 0``) — with sequence
features f_m (after dropout) and entity types k_m:

    L = CE(token head, labels)  +  λ · (1/M) Σ_m Σ_v −R[k_m, v] · log(softmax(h_mlm(f_m))_v + 1e-10)      (λ = 0.7)

with the official ``+ 1e-10`` inside the log (not a log-softmax; :data:`EPS`); no entity token in a batch: the
second term is 0, as there. The script that produced the official R was never released. Ours (**our reading** of
"the masked-LM head's averaged output distribution per entity type"): run the pre-trained encoder and masked-LM head,
before any fine-tuning and without masking, over the training sentences; at each entity token take softmax(T · z)
of the head's logits z ∈ R^V; then either

- ``direct``: R[k] = the mean of those distributions over the tokens of type k (``direct_variant="tllib"``: T = 1,
  train split only — the default of the NER tables; ``"official"``: T = the image code's 0.884, train + dev), or
- ``reverse``: the calibrated reverse approach of the image code on the same token distributions (logistic
  regression from p_s to the type, C chosen and the temperature calibrated on the dev tokens, Bayes' rule): it
  applies, but with V-dimensional inputs it is slow and memory-hungry (M × V floats); prefer ``direct``.

Shapes: x [B, 2, T], y [B, T] (−100 ignored), R [K, V].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.data.text import IGNORE
from transferlab.methods.relationship import check_validation, reverse_relationship

EPS = 1e-10  # nlp/modifier.py: log(softmax + 1e-10)


def entity_mask(y: torch.Tensor, label_type: torch.Tensor) -> torch.Tensor:
    """bool [B, T]: labelled positions (first sub-tokens) whose label is an entity label (type ≥ 0)."""
    return (y != IGNORE) & (label_type.to(y.device)[y.clamp(min=0)] >= 0)


def entity_soft_label_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(1/M) Σ_m Σ_v −target[m, v] · log(softmax(logits[m])_v + 1e-10); logits, target [M, V]; a scalar."""
    return -(target * torch.log(F.softmax(logits, dim=-1) + EPS)).sum(-1).mean()


@torch.no_grad()
def entity_distributions(backbone, batches, label_type: torch.Tensor, temperature: float = 1.0):
    """Per batch: (softmax(T · masked-LM logits) [M, V] float64, entity types [M]) at the entity tokens."""
    for x, y in batches:
        mask = entity_mask(y, label_type)
        if mask.any():
            z = backbone.source_head(backbone.features(x)[mask]).double()
            yield F.softmax(temperature * z, dim=-1).cpu(), label_type.to(y.device)[y[mask]].cpu()


def direct(chunks, num_types: int) -> tuple[np.ndarray, np.ndarray]:
    """R[k] = mean of the distributions of type k (streamed: no M × V array is held); NaN rows for types that never
    occur (as the image code's class means). Returns (R [K, V], token counts [K])."""
    sums, counts = None, np.zeros(num_types, np.int64)
    for probs, types in chunks:
        if sums is None:
            sums = torch.zeros(num_types, probs.shape[1], dtype=torch.float64)
        sums.index_add_(0, types, probs)
        counts += np.bincount(types.numpy(), minlength=num_types)
    if sums is None:
        raise ValueError("no entity token in the split: the relationship needs entities")
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums.numpy() / counts[:, None], counts


def relationship(method, data) -> tuple[np.ndarray, dict]:
    """R [K, V] and its description, for a Co-Tuning method on a token task (``method.cfg`` says which approach)."""
    c, bb, task = method.cfg, method.backbone, method.task
    k, types = len(task.entity_types), task.label_type
    if c.relationship == "reverse":
        train = [
            (torch.log(p), t) for p, t in entity_distributions(bb, data.train(), types)
        ]  # log p = z + const
        val = [(torch.log(p), t) for p, t in entity_distributions(bb, data.val(), types)]
        (tz, ty), (vz, vy) = ([torch.cat(a).numpy() for a in zip(*s)] for s in (train, val))
        check_validation(vy, k)
        out = reverse_relationship(tz, ty, vz, vy, temperature=c.temperature)
        info = {"relationship": "reverse (entity tokens)", "chosen_C": out["chosen_C"],
                "calibration_scale": out["scale"], "tokens": [len(ty), len(vy)]}  # fmt: skip
        return out["R"], info
    if c.direct_variant == "official":
        chunks = [*entity_distributions(bb, data.train(), types, c.temperature),
                  *entity_distributions(bb, data.val(), types, c.temperature)]  # fmt: skip
        r, counts = direct(chunks, k)
        what = "direct (temperature, train+dev entity tokens)"
    else:
        r, counts = direct(entity_distributions(bb, data.train(), types), k)
        what = "direct (plain softmax, train entity tokens): the masked-LM head's mean output per entity type"
    return r, {"relationship": what, "entity_types": task.entity_types, "tokens": counts.tolist()}


def top_tokens(r: torch.Tensor, tok, entity_types: list[str], k: int = 10) -> dict[str, list[str]]:
    """Entity type → its ``k`` most probable vocabulary tokens under R, as "token (p)" strings (``tok``: the
    backbone's tokenizer)."""
    p, idx = torch.as_tensor(r).double().topk(k, dim=1)
    return {t: [f"{tok.convert_ids_to_tokens(int(i))} ({float(v):.3f})" for v, i in zip(p[row], idx[row])]
            for row, t in enumerate(entity_types)}  # fmt: skip


def loss(method, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """CE on the token head + λ · the soft-label loss of the masked-LM head at the entity tokens."""
    bb = method.backbone
    f = bb.features(x)  # [B, T, H], dropout applied (the official heads both read it)
    logits = bb.head(f)
    ce = method.task.loss(logits, y)
    mask = entity_mask(y, method.task.label_type)
    if mask.any():
        types = method.task.label_type.to(y.device)[y[mask]]
        co = entity_soft_label_loss(bb.source_head(f[mask]).float(), method.relationship[types])
    else:
        co = torch.zeros((), device=x.device)
    return {"loss": ce + method.cfg.trade_off * co, "ce": ce, "co_tuning": co, "logits": logits}


__all__ = [
    "EPS",
    "direct",
    "entity_distributions",
    "entity_mask",
    "entity_soft_label_loss",
    "loss",
    "relationship",
]
