"""Token-labelled text: the CoNLL-2003 reader, an in-memory sentence set, and the identity ``tokens`` preset.

**CoNLL-2003** (Tjong Kim Sang & De Meulder 2003; https://www.clips.uantwerpen.be/conll2003/ner/): column files, one
token per line (``word POS chunk NER``), a blank line between sentences, ``-DOCSTART-`` lines between documents. The
distributed ``eng.train`` / ``eng.testa`` / ``eng.testb`` tag entities in **IOB1** (``I-X`` starts an entity unless it
continues one of the same type; ``B-X`` only separates two adjacent entities of one type); the copies most NER code
uses (e.g. the ``train.txt`` / ``valid.txt`` / ``test.txt`` of the repository Co-Tuning's NLP readme names) are
already **IOB2**. :func:`iob1_to_iob2` turns either into IOB2 (idempotent on IOB2), so both give one label set:
``O, B-MISC, I-MISC, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC`` — the order of HuggingFace's ``run_ner.py``
``get_labels()``, which the official Co-Tuning NER code relies on (entity type = (label − 1) // 2).

**Sentences in memory** (:class:`TokenSequences`): words and word-level tag ids; a token-classification task encodes
them once with its backbone's tokenizer (``set_encoding``) into ``images`` = int64 [N, 2, T] (token ids, attention
mask) and ``targets`` = int64 [N, T] (the word's tag at its first sub-token, −100 elsewhere: the other sub-tokens,
[CLS], [SEP], padding). It is a :class:`~transferlab.data.TensorImages`, so the training loop's in-memory path
batches it; the ``tokens`` preset leaves those batches as they are (no augmentation, no normalisation). The part's
per-sentence array (``Part.targets``) says which official file a sentence comes from (0 train, 1 dev): the task's
split keeps the dev sentences as the validation set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from transferlab.data.base import DatasetNotFoundError, DatasetSource, Part, TensorImages, register_dataset
from transferlab.data.transforms import TRANSFORMS, Preset

CONLL_LABELS = ["O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
TRAIN, DEV = 0, 1  # Part.targets of a token set: the official file each sentence comes from
IGNORE = -100  # torch's cross-entropy ignore_index (HuggingFace's pad_token_label_id)

# Which file names count as which part: the CoNLL distribution's, the common copies', HuggingFace run_ner.py's.
CONLL_FILES = {
    "train": ("train.txt", "eng.train"),
    "dev": ("valid.txt", "dev.txt", "eng.testa"),
    "test": ("test.txt", "eng.testb"),
}
CONLL_LAYOUT = """\
  <data_root>/conll2003/train.txt   (or eng.train)   14,041 sentences
  <data_root>/conll2003/valid.txt   (or dev.txt, eng.testa)   3,250 sentences: the validation split
  <data_root>/conll2003/test.txt    (or eng.testb)   3,453 sentences
  one token per line, `word POS chunk NER` (the NER tag last; IOB1 or IOB2), a blank line between sentences"""
CONLL_SOURCE = (
    "https://www.clips.uantwerpen.be/conll2003/ner/ (annotations; the text needs the Reuters RCV1 corpus from NIST, "
    "https://trec.nist.gov/data/reuters/reuters.html); `transferlab data fetch conll2003` prints the steps"
)


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 (or IOB2) tags of one sentence → IOB2: an ``I-X`` that does not continue an entity of type X starts one."""
    out: list[str] = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            prev = out[i - 1] if i else "O"
            if prev == "O" or prev[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        elif tag != "O" and not tag.startswith("B-"):
            raise ValueError(f"tag {tag!r} is not O, B-X or I-X")
        out.append(tag)
    return out


def read_conll(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """(sentences of words, sentences of IOB2 tags) from a CoNLL column file; ``-DOCSTART-`` lines are skipped, as
    HuggingFace's ``read_examples_from_file`` does."""
    sentences: list[list[str]] = []
    tags: list[list[str]] = []
    words: list[str] = []
    labels: list[str] = []

    def flush() -> None:
        if words:
            sentences.append(list(words))
            tags.append(iob1_to_iob2(labels))
            words.clear()
            labels.clear()

    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                flush()
                continue
            cols = line.split()
            if len(cols) < 2:
                raise ValueError(f"{path}:{n}: expected `word ... NER-tag` columns, got {line!r}")
            words.append(cols[0])
            labels.append(cols[-1])
    flush()
    return sentences, tags


class TokenSequences(TensorImages):
    """Sentences (words, word-level tag ids) in memory; ``images`` / ``targets`` exist once a task has encoded them."""

    def __init__(self, words: list[list[str]], tags: list[list[int]], origin: np.ndarray | None = None):
        Dataset.__init__(self)  # no TensorImages.__init__: the tensors come with the encoding
        if len(words) != len(tags) or any(len(w) != len(t) for w, t in zip(words, tags)):
            raise ValueError("every sentence needs one tag per word")
        self.words, self.tags = words, tags
        self.origin = np.zeros(len(words), np.int64) if origin is None else np.asarray(origin, np.int64)
        self.encoding = ""  # the tokenizer the tensors were made with
        self.kept_words = np.zeros(len(words), np.int64)  # words inside max_length (the rest are truncated)
        self._inputs: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None

    def set_encoding(
        self, name: str, inputs: torch.Tensor, labels: torch.Tensor, kept_words: np.ndarray
    ) -> None:
        if (
            inputs.dtype != torch.int64
            or inputs.dim() != 3
            or inputs.shape[1] != 2
            or labels.shape[0] != len(self)
        ):
            raise ValueError(
                f"expected int64 [N, 2, T] inputs for {len(self)} sentences, got {tuple(inputs.shape)}"
            )
        self.encoding, self._inputs, self._labels = name, inputs, labels
        self.kept_words = np.asarray(kept_words, np.int64)

    def _need(self, t: torch.Tensor | None) -> torch.Tensor:
        if t is None:
            raise RuntimeError("token sentences are not encoded yet: the token-classification task encodes them "
                               "with its backbone's tokenizer (transferlab.tasks.task_of(source))")  # fmt: skip
        return t

    @property
    def images(self) -> torch.Tensor:  # type: ignore[override]
        return self._need(self._inputs)

    @property
    def targets(self) -> torch.Tensor:  # type: ignore[override]
        return self._need(self._labels)

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, i: int):
        return self.images[i], self.targets[i]

    def part(self) -> Part:
        return Part(self, self.origin)


@dataclass(frozen=True)
class TokenPreset(Preset):
    """Token batches pass unchanged: nothing to augment or normalise."""

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def augment_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x


TRANSFORMS.register("tokens")(TokenPreset("tokens", (), (), train=None, test=None))


def token_source(name: str, labels: list[str], parts: dict[str, tuple[list, list]], tokenizer: str,
                 max_length: int, info: dict) -> DatasetSource:  # fmt: skip
    """A token-classification :class:`DatasetSource`: ``parts`` maps train / dev / test to (words, tag strings);
    train and dev share one in-memory part (dev marked in ``Part.targets``), so validation is the official dev set."""
    index = {t: i for i, t in enumerate(labels)}

    def ids(tag_lists: list[list[str]]) -> list[list[int]]:
        unknown = sorted({t for ts in tag_lists for t in ts} - set(index))
        if unknown:
            raise ValueError(f"{name}: tags {unknown} are not in the label set {labels}")
        return [[index[t] for t in ts] for ts in tag_lists]

    words = parts["train"][0] + parts["dev"][0]
    origin = np.r_[np.full(len(parts["train"][0]), TRAIN), np.full(len(parts["dev"][0]), DEV)]
    train = TokenSequences(words, ids(parts["train"][1] + parts["dev"][1]), origin)
    test = TokenSequences(parts["test"][0], ids(parts["test"][1]))
    params = {"tokenizer": tokenizer, "max_length": max_length}
    return DatasetSource(name, list(labels), train.part(), test.part(), None, "tokens", info,
                         task="token_classification", task_params=params)  # fmt: skip


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


@register_dataset("conll2003", task="token_classification")
def conll2003(root: Path) -> DatasetSource:
    """CoNLL-2003 English NER (IOB2 after conversion), tokenised for ``bert-base-cased`` at max length 128 (the
    official Co-Tuning NER command: ``--model_name_or_path bert-base-cased --max_seq_length 128``)."""
    folder = Path(root) / "conll2003"
    found = {part: _find(folder, names) for part, names in CONLL_FILES.items()}
    missing = [" or ".join(CONLL_FILES[p]) for p, f in found.items() if f is None]
    if missing:
        raise DatasetNotFoundError(
            "conll2003", root, CONLL_LAYOUT, CONLL_SOURCE, detail="missing: " + "; ".join(missing)
        )
    parts = {p: read_conll(f) for p, f in found.items()}  # type: ignore[arg-type]
    info = {"source": CONLL_SOURCE, "files": {p: str(f) for p, f in found.items()}, "scheme": "IOB2"}
    return token_source("conll2003", CONLL_LABELS, parts, "bert-base-cased", 128, info)


__all__ = ["CONLL_LABELS", "DEV", "IGNORE", "TRAIN", "TokenPreset", "TokenSequences", "iob1_to_iob2",
           "read_conll", "token_source"]  # fmt: skip
