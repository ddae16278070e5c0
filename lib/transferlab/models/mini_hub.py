"""The mini hub: small source models pre-trained once by the suite itself, cached with checksums.

It mirrors the diversity of the papers' hub (supervised ImageNet, self-supervised MoCo, detection/segmentation
models trained on other data) at CPU scale, all with the same ``mini_resnet`` architecture (ResNet-8, 16/32/64)
so that layer-wise aggregation (Zoo-Tuning) is possible:

| name         | pre-training task                              | label set            | image source   |
|--------------|------------------------------------------------|----------------------|----------------|
| ``fmnist_full`` | supervised classification                   | all 10 classes       | Fashion-MNIST  |
| ``fmnist_coarse`` | supervised classification                 | 4 coarse groups      | Fashion-MNIST  |
| ``fmnist_a`` | supervised classification                      | 5 of the 10 classes  | Fashion-MNIST  |
| ``fmnist_rot`` | self-supervised rotation prediction (RotNet) | 4 rotations          | Fashion-MNIST  |
| ``digits``   | supervised classification                      | 10 digits            | scikit-learn digits |

Every model trains with the suite's own loop (method ``scratch`` on a ``mini_hub_*`` dataset drawn from the hub
pools of :mod:`transferlab.data.mini`, never from a target pool). The checkpoint goes to
``$TRANSFERLAB_CACHE/mini_hub/<name>-<recipe hash>.pt`` (default cache ``~/.cache/transferlab``) with a JSON manifest
holding its sha256: a file whose checksum does not match is deleted and re-trained, never used. A file lock makes
parallel runs wait for one pre-training instead of racing.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from transferlab.config import DataConfig, OptimConfig, RunConfig
from transferlab.models.backbones import BACKBONES, Backbone
from transferlab.models.weights import WeightsError, load_checked, sha256_file
from transferlab.registry import Registry


@dataclass(frozen=True)
class HubModel:
    name: str
    description: str
    dataset: str  # a mini_hub_* dataset
    kind: str  # supervised | self-supervised
    image_source: str
    iterations: int
    batch_size: int = 128
    lr: float = 0.1
    backbone: str = "mini_resnet"

    def recipe(self) -> RunConfig:
        return RunConfig(
            paper="mini_hub",
            table="pretrain",
            protocol="mini",
            method="scratch",
            backbone=self.backbone,
            pretrained="none",
            seed=0,
            device="cpu",  # one cached file for every machine: pre-train on the CPU, it takes seconds
            data=DataConfig(
                dataset=self.dataset, val_fraction=0.05, batch_size=self.batch_size, eval_batch_size=1024
            ),
            optim=OptimConfig(
                lr=self.lr,
                schedule="cosine",
                iterations=self.iterations,
                eval_every=self.iterations,
                weight_decay=5e-4,
                head_lr_mult=1.0,
            ),
        )


MINI_HUB: Registry[HubModel] = Registry("mini hub model")
for _m in (
    HubModel("fmnist_full", "supervised on all 10 classes (hub-pool images only; the 'ImageNet' of the mini hub)",
             "mini_hub_fmnist_full", "supervised", "Fashion-MNIST", iterations=500),
    HubModel("fmnist_coarse", "supervised on 4 coarse groups of the 10 classes (tops, trousers, footwear, bags)",
             "mini_hub_fmnist_coarse", "supervised", "Fashion-MNIST", iterations=400),
    HubModel("fmnist_a", "supervised on 5 of the 10 classes (T-shirt, trouser, pullover, dress, coat)",
             "mini_hub_fmnist_a", "supervised", "Fashion-MNIST", iterations=400),
    HubModel("fmnist_rot", "self-supervised: predicts the rotation (0/90/180/270°) of unlabelled images",
             "mini_hub_fmnist_rot", "self-supervised", "Fashion-MNIST", iterations=400),
    HubModel("digits", "supervised on handwritten digits (a different image source)",
             "mini_hub_digits", "supervised", "scikit-learn digits", iterations=300, batch_size=64),
):  # fmt: skip
    MINI_HUB.register(_m.name)(_m)


def cache_dir() -> Path:
    return Path(os.environ.get("TRANSFERLAB_CACHE", Path.home() / ".cache" / "transferlab")) / "mini_hub"


def _paths(model: HubModel) -> tuple[Path, Path]:
    stem = f"{model.name}-{model.recipe().config_hash()[:10]}"
    return cache_dir() / f"{stem}.pt", cache_dir() / f"{stem}.json"


def _valid(weights: Path, manifest: Path) -> dict | None:
    """The manifest if the cached file exists and matches its checksum; None if absent; deletes a corrupt pair."""
    if not weights.exists() and not manifest.exists():
        return None
    try:
        meta = json.loads(manifest.read_text())
        if sha256_file(weights) == meta["sha256"]:
            return meta
        problem = "checksum mismatch"
    except (OSError, ValueError, KeyError) as err:
        problem = f"unreadable ({err.__class__.__name__})"
    warnings.warn(
        f"mini hub cache {weights.name}: {problem}; deleting it and pre-training again", stacklevel=3
    )
    weights.unlink(missing_ok=True)
    manifest.unlink(missing_ok=True)
    return None


def ensure(name: str, data_root: str = "data", verbose: bool = True) -> tuple[Path, dict]:
    """Path and manifest of hub model ``name``, pre-training it first if it is not cached (or is corrupt)."""
    model = MINI_HUB.get(name)
    weights, manifest = _paths(model)
    weights.parent.mkdir(parents=True, exist_ok=True)
    with open(weights.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel run waits here instead of pre-training the same model
        meta = _valid(weights, manifest)
        if meta is None:
            with torch.random.fork_rng(
                devices=[]
            ):  # pre-training on a cold cache must not move the caller's RNG
                meta = _pretrain(model, weights, manifest, data_root, verbose)
    return weights, meta


def _pretrain(model: HubModel, weights: Path, manifest: Path, data_root: str, verbose: bool) -> dict:
    import torch

    from transferlab.experiment import train
    from transferlab.results import atomic_torch_save, atomic_write_json

    cfg = model.recipe().replace(data_root=data_root)
    if verbose:
        print(f"pre-training mini hub model {model.name!r}: {model.description} ({model.iterations} steps)")
    start = time.perf_counter()
    work = weights.parent / ".work" / weights.stem
    prev_threads = torch.get_num_threads()
    try:
        method, result = train(cfg, work)
    finally:
        torch.set_num_threads(prev_threads)
    atomic_torch_save(weights, {k: v.cpu() for k, v in method.backbone.state_dict().items()})
    meta = {
        "name": model.name,
        "description": model.description,
        "kind": model.kind,
        "image_source": model.image_source,
        "classes": len(result.metrics["per_class_last"]),
        "pretext_test_top1": result.metrics["test_last"],
        "recipe": cfg.to_flat(),
        "recipe_hash": cfg.config_hash(),
        "sha256": sha256_file(weights),
        "seconds": round(time.perf_counter() - start, 1),
        "provenance": result.provenance,
    }
    atomic_write_json(manifest, meta)
    if verbose:
        print(
            f"  {model.name}: pretext test accuracy {meta['pretext_test_top1']:.1f}% in {meta['seconds']} s"
        )
    return meta


def ensure_all(names: list[str] | None = None, data_root: str = "data") -> dict[str, dict]:
    return {n: ensure(n, data_root)[1] for n in (names or MINI_HUB.names())}


def load_hub_backbone(name: str, backbone: str = "mini_resnet", data_root: str = "data") -> Backbone:
    model = MINI_HUB.get(name)
    if backbone != model.backbone:
        raise WeightsError(
            f"mini hub model {name!r} is a {model.backbone}; the run asks for backbone {backbone!r}"
        )
    weights, meta = ensure(name, data_root)
    state = load_checked(weights, meta["sha256"])
    net = Backbone(BACKBONES.get(backbone)(state["head.weight"].shape[0]), backbone)
    net.load_state_dict(state, strict=True)
    net.hub_sha256 = meta["sha256"]
    return net
