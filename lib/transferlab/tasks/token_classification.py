"""Token classification (named-entity recognition): per-token labels, entity-level F1 (↑) with seqeval.

As HuggingFace's ``run_ner.py`` (the script thuml/CoTuning's NER code patches): each word's tag sits on its **first
sub-token**; the other sub-tokens, [CLS], [SEP] and padding carry −100 and are ignored by the loss and the metric.
Sentences longer than ``max_length`` sub-tokens are truncated and their cut-off words are left out of the metric, as
there (their count goes into the source's ``info["truncated_words"]``). The metric is seqeval's entity-level F1 in its default mode
(the one ``run_ner.py`` calls: ``f1_score(gold, predicted)``), times 100; precision and recall are extras.

Encoding: building the task encodes the dataset's sentences (a :class:`~transferlab.data.text.TokenSequences`) once
with the tokenizer its ``task_params["tokenizer"]`` names (the vocabulary of the weights it pairs with); the head
carries that name, so a backbone of another vocabulary refuses it. Split: the training sentences (the official
train file) sampled at ``sample_rate`` (or ``shots`` sentences), validation = the official dev file (all of it);
without a dev file, ``val_fraction`` of the sampled sentences. Shapes: x [B, 2, T] → outputs [B, T, L], y [B, T].
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferlab.data.splits import SplitIndices
from transferlab.data.text import DEV, IGNORE, TRAIN, TokenSequences
from transferlab.models.text import TokenHead
from transferlab.seeds import Stream, rng
from transferlab.tasks.base import TASKS, Metric, Predict, Task


def encode(data: TokenSequences, name: str, tok: Any, max_length: int) -> None:
    """Encode ``data``'s sentences with ``tok`` (a fast BERT tokenizer): ids and mask [N, 2, T], first-sub-token
    labels [N, T] (T = the longest encoded sentence, at most ``max_length``)."""
    if data.encoding == name:
        return
    enc = tok(data.words, is_split_into_words=True, truncation=True, max_length=max_length)
    width = max(len(ids) for ids in enc["input_ids"])
    inputs = torch.zeros(len(data), 2, width, dtype=torch.int64)
    labels = torch.full((len(data), width), IGNORE, dtype=torch.int64)
    kept = np.zeros(len(data), np.int64)
    inputs[:, 0] = tok.pad_token_id
    for i, ids in enumerate(enc["input_ids"]):
        inputs[i, 0, : len(ids)] = torch.tensor(ids)
        inputs[i, 1, : len(ids)] = 1
        seen = -1
        for j, w in enumerate(enc.word_ids(i)):
            if w is not None and w != seen:  # the first sub-token of word w
                labels[i, j] = data.tags[i][w]
                seen = w
        kept[i] = seen + 1
    data.set_encoding(name, inputs, labels, kept)


@TASKS.register("token_classification")
class TokenClassification(Task):
    name = "token_classification"
    metric = Metric("f1", "entity F1 (%)", "max")

    def __init__(self, outputs: int, labels: list[str] | None = None, **params: Any):
        super().__init__(outputs, labels, **params)
        # entity types in the order of first appearance in the label set (CoNLL: MISC, PER, ORG, LOC, the order of
        # the official token_prob_of_entity.npy rows) and each label's type index (−1 for O)
        self.entity_types: list[str] = []
        for lab in self.labels:
            if lab != "O" and lab[2:] not in self.entity_types:
                self.entity_types.append(lab[2:])
        self.label_type = torch.tensor(
            [-1 if lab == "O" else self.entity_types.index(lab[2:]) for lab in self.labels]
        )

    @classmethod
    def from_source(cls, source: Any) -> Task:
        from transferlab.models.text import tokenizer

        p = source.task_params
        tok = tokenizer(p["tokenizer"])
        for key, part in (("train+dev", source.train), ("test", source.test)):
            data = part.dataset
            encode(data, p["tokenizer"], tok, p["max_length"])
            cut = sum(len(w) for w in data.words) - int(data.kept_words.sum())
            source.info.setdefault("truncated_words", {})[key] = cut
        return cls(len(source.classes), source.classes, **p)

    def split(self, source: Any, data: Any, seed: int) -> SplitIndices:
        origin = np.asarray(source.train.targets)
        pool, dev = np.flatnonzero(origin == TRAIN), np.flatnonzero(origin == DEV)
        n = (
            min(data.shots, len(pool))
            if data.shots
            else max(1, math.ceil(data.sample_rate * len(pool) - 1e-9))
        )
        train = np.sort(rng(seed, Stream.SAMPLING).permutation(pool)[:n])
        if len(dev) == 0 and data.val_fraction > 0:  # no official dev file: carve sentences from the sample
            carved = rng(seed, Stream.CARVE).permutation(train)
            k = min(max(1, round(data.val_fraction * len(train))), len(train) - 1)
            train, dev = np.sort(carved[k:]), np.sort(carved[:k])
        return SplitIndices(train=train, val=dev, test=np.arange(len(source.test)))

    def head(self, in_features: int) -> nn.Module:
        return TokenHead(in_features, self.outputs, self.params["tokenizer"])

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs.flatten(0, -2).float(), targets.flatten(), ignore_index=IGNORE)

    def combine(self, outputs: list[torch.Tensor], how: str = "prob") -> torch.Tensor:
        z = torch.stack([F.log_softmax(t.float(), dim=-1) for t in outputs])  # [K, B, T, L]
        return torch.logsumexp(z, dim=0) - math.log(len(outputs))

    def tags(self, ids: list[int]) -> list[str]:
        return [self.labels[i] for i in ids]

    @torch.no_grad()
    def evaluate(self, predict: Predict, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                 amp: torch.dtype | None = None) -> dict:  # fmt: skip
        """Entity F1 (%) of ``predict`` over sentence batches (seqeval, default mode), precision, recall, mean CE per
        labelled token."""
        from seqeval.metrics import f1_score, precision_score, recall_score

        gold, pred = [], []
        loss_sum, n_tokens, n = 0.0, 0, 0
        for x, y in batches:
            with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
                logits = predict(x).float()
            loss_sum += F.cross_entropy(
                logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="sum"
            ).item()
            keep = y != IGNORE
            n_tokens += int(keep.sum())
            best = logits.argmax(-1).cpu().numpy()
            for row, mask, target in zip(best, keep.cpu().numpy(), y.cpu().numpy()):
                gold.append(self.tags(target[mask].tolist()))
                pred.append(self.tags(row[mask].tolist()))
            n += len(y)
        if n == 0:
            raise ValueError("evaluation set is empty")
        return {
            "value": float(100.0 * f1_score(gold, pred, zero_division=0)),
            "loss": loss_sum / max(n_tokens, 1),
            "n": n,
            "extras": {
                "precision": float(100.0 * precision_score(gold, pred, zero_division=0)),
                "recall": float(100.0 * recall_score(gold, pred, zero_division=0)),
                "tokens": n_tokens,
            },  # fmt: skip
        }


__all__ = ["TokenClassification", "encode"]
