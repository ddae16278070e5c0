"""``transferlab hub profile mini``: how the mini hub's models differ, and what each offers each mini target.

Two measurements, both reproducible from the cached models (the README's mini-hub table is this command's output):

- **kernel similarity**: for every pair of models, the cosine between their flattened convolution kernels, layer by
  layer — the mean over layers and the smallest. Descendants of one ancestor start at 1.0 and drift as they train
  on their own pretext; a model trained from scratch is near 0 in expectation (its initialisation is independent),
  but shared structure (oriented edges) keeps it above;
- **linear probe on each target**: a multinomial logistic regression on the frozen pooled features of the target's
  training split (standardised; L2 strength C = 0.5), scored on the target's **validation** split — a cheap,
  fine-tuning-free view of how much each source knows about each target. Test images are never used here.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from transferlab.config import RunConfig
from transferlab.data.pipeline import eval_batches
from transferlab.experiment import check, load_data
from transferlab.hubbuild import ensure_all
from transferlab.models import build_backbone
from transferlab.models.hub import HUBS, MiniHubWeights

PROBE_C = 0.5
TARGETS = {"mini_fmnist": {"sample_rate": 0.15, "val_per_class": 100},
           "mini_digits": {"sample_rate": 1.0, "val_per_class": 15}}  # fmt: skip


def kernels(name: str) -> dict[str, torch.Tensor]:
    net = build_backbone("mini_resnet", f"mini:{name}")
    return {k: v for k, v in net.state_dict().items() if v.dim() == 4}


def similarity(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(mean, min) over conv layers of the cosine between two models' flattened kernels."""
    cos = [torch.nn.functional.cosine_similarity(a[k].flatten(), b[k].flatten(), dim=0).item() for k in a]
    return float(np.mean(cos)), float(np.min(cos))


def _features(name: str, dataset: str, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    flat = {"dataset": dataset, "seed": seed, "method": "finetune", "pretrained": f"mini:{name}", "device": "cpu",
            **TARGETS[dataset]}  # fmt: skip
    source, splits, preset, _ = load_data(check(RunConfig.from_flat(flat)))
    net = build_backbone("mini_resnet", f"mini:{name}").eval()
    out = {}
    for part, idx in (("train", splits.train), ("val", splits.val)):
        fs, ys = [], []
        with torch.no_grad():
            for x, y in eval_batches(source.train, idx, preset, 1024, "cpu"):
                fs.append(net.features(x))
                ys.append(y)
        out[part] = (torch.cat(fs).numpy(), torch.cat(ys).numpy())
    return out


def linear_probe(name: str, dataset: str, seed: int = 0) -> float:
    """Validation accuracy (%) of a logistic regression on model ``name``'s frozen features of ``dataset``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    f = _features(name, dataset, seed)
    scale = StandardScaler().fit(f["train"][0])
    clf = LogisticRegression(max_iter=2000, C=PROBE_C).fit(scale.transform(f["train"][0]), f["train"][1])
    return 100.0 * clf.score(scale.transform(f["val"][0]), f["val"][1])


def profile(hub: str = "mini", seeds=(0, 1, 2)) -> dict:
    """Pretext accuracies, pairwise kernel similarity and linear probes (mean over ``seeds``' splits)."""
    names = [m.weights.model for m in HUBS.get(hub).models if isinstance(m.weights, MiniHubWeights)]
    metas = ensure_all(names)
    ks = {n: kernels(n) for n in names}
    pairs = {f"{a}|{b}": similarity(ks[a], ks[b]) for a, b in itertools.combinations(names, 2)}
    probes = {d: {n: float(np.mean([linear_probe(n, d, s) for s in seeds])) for n in names} for d in TARGETS}
    models = {n: {k: metas[n][k] for k in ("description", "kind", "image_source", "parent", "classes",
                                           "pretext_test_top1", "seconds")} for n in names}  # fmt: skip
    return {
        "hub": hub,
        "models": models,
        "similarity": pairs,
        "probe_val": probes,
        "probe_seeds": list(seeds),
    }


def format_profile(p: dict) -> str:
    names = list(p["models"])
    lines = [
        f"{'model':10s} {'parent':9s} {'pretext test':>12s}  "
        + "  ".join(f"probe {d}" for d in p["probe_val"])
    ]
    for n in names:
        m = p["models"][n]
        probes = "  ".join(f"{p['probe_val'][d][n]:>{len('probe ' + d)}.1f}" for d in p["probe_val"])
        lines.append(f"{n:10s} {m['parent'] or '-':9s} {m['pretext_test_top1']:>11.1f}%  {probes}")
    lines.append("kernel cosine (mean over conv layers / smallest):")
    for key, (mean, low) in p["similarity"].items():
        a, b = key.split("|")
        lines.append(f"  {a:10s} {b:10s} {mean:.3f} / {low:.3f}")
    return "\n".join(lines)


__all__ = ["format_profile", "linear_probe", "profile", "similarity"]
