"""The mini hub: small source models pre-trained once by the suite itself, cached with checksums.

It is built the way the papers' hub is: in Zoo-Tuning's zoo, four of the five ResNet-50s descend from ImageNet
weights (supervised ImageNet itself; Mask R-CNN, DeepLabV3 and Keypoint R-CNN were trained on COCO tasks starting
from it) and one is independent (MoCo, self-supervised). Here one broad **ancestor** is trained on a label-free
pretext over every hub image, three **descendants** are fine-tuned from it on other pretexts and domains long
enough to differ (measured by ``transferlab hub profile mini``, README), and one **independent** model is trained
from scratch. No model sees a target image (validation or test included) or a target's label set; two heads have
label spaces unlike any target's (Co-Tuning needs one). All are ResNet-8s (``mini_resnet``, 16/32/64), so layer-wise
aggregation (Zoo-Tuning) applies.

| name       | trained from | pretext (:mod:`transferlab.data.mini_hub_data`)                   | images                    |
|------------|--------------|--------------------------------------------------------------------|---------------------------|
| ``clusters`` | scratch    | 64 k-means clusters of the pixels (pseudo-labels; no class label)  | Fashion-MNIST + digits hub pools |
| ``coarse``   | clusters   | 4 coarse clothing groups (tops, trousers, footwear, bags)          | Fashion-MNIST hub pool    |
| ``rotation`` | clusters   | rotation 0/90/180/270° (RotNet)                                    | Fashion-MNIST hub pool    |
| ``parity``   | clusters   | even / odd digits                                                  | digits hub pool           |
| ``jigsaw``   | scratch    | the order of 4 shuffled quadrants (24 orders)                      | Fashion-MNIST + digits hub pools |

Every model trains with the suite's own loop (its ``recipe()``: a run on a ``mini_hub_*`` dataset drawn from the hub
pools of :mod:`transferlab.data.mini`, never from a target pool); the training itself is
:mod:`transferlab.hubbuild` (it trains, so it sits above the experiment layer; this module only describes, caches
and loads). The checkpoint goes to ``$TRANSFERLAB_CACHE/mini_hub/<name>-<recipe hash>.pt`` (default cache
``~/.cache/transferlab``) with a JSON manifest holding its sha256: a file whose checksum does not match is deleted
and re-trained, never used. Loading a model that is not built yet is a clear error naming the command that builds
it (``transferlab hub build mini``); ``transferlab.run`` and the runner build what a run needs first.

**A released build.** ``$TRANSFERLAB_HUB_RELEASE`` may name a folder holding the models as ``transferlab hub build
mini`` wrote them into its cache (``<name>-<recipe hash>.pt`` and ``.json``: a lab's shared build, a downloaded
release). When the cache lacks a model whose recipe hash a released file carries, the build installs it instead of
training it (after checking its sha256; a file of another recipe is never used). ``transferlab hub build mini
--from-scratch`` trains every model here instead (replacing installed copies) and says whether each equals the
released build bit for bit (on the development machine two builds are: it is deterministic at one thread; another
CPU may differ in the last bits). The repository itself ships no weights.

**The demo hub.** Each model has a twin ``demo_<name>`` with the same recipe pre-trained for ``DEMO_STEPS_SCALE``
(1/4) of its steps, its parent the parent's twin: the demo protocol (``make demo``, ``papers/spec.py``) scales every
step count, the hub's pre-training included, and runs on ``hub:demo`` / ``mini:demo_<name>``. Cached beside the mini
hub under their own recipe hashes; never used by a mini or paper run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from transferlab import env
from transferlab.config import DEMO_STEPS_SCALE, DataConfig, OptimConfig, RunConfig
from transferlab.models.backbones import BACKBONES, Backbone
from transferlab.models.weights import WeightsError, cache_lock, load_checked, sha256_file, valid_cached
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
    parent: str = (
        ""  # a descendant: fine-tuned from this hub model (its ancestor) instead of trained from scratch
    )
    head_lr_mult: float = 1.0  # a descendant's new head: lr multiplier

    def recipe(self) -> RunConfig:
        return RunConfig(
            paper="mini_hub",
            table="pretrain",
            protocol="mini",
            method="finetune" if self.parent else "scratch",
            backbone=self.backbone,
            pretrained=f"mini:{self.parent}" if self.parent else "none",
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
                head_lr_mult=self.head_lr_mult if self.parent else 1.0,
            ),
        )


MINI_HUB: Registry[HubModel] = Registry("mini hub model")
for _m in (
    HubModel("clusters", "the ancestor: supervised on 64 k-means pseudo-classes of every hub image (no class label)",
             "mini_hub_clusters", "self-supervised (pseudo-labels)", "Fashion-MNIST + digits", iterations=1500),
    HubModel("coarse", "descendant of clusters: 4 coarse clothing groups (tops, trousers, footwear, bags)",
             "mini_hub_fmnist_coarse", "supervised", "Fashion-MNIST", iterations=1000, parent="clusters"),
    HubModel("rotation", "descendant of clusters: predicts the rotation (0/90/180/270°) of unlabelled images",
             "mini_hub_fmnist_rot", "self-supervised", "Fashion-MNIST", iterations=1000, parent="clusters"),
    HubModel("parity", "descendant of clusters: even or odd handwritten digits (another image source)",
             "mini_hub_digits_parity", "supervised", "scikit-learn digits", iterations=500, batch_size=64,
             parent="clusters"),
    HubModel("jigsaw", "independent: which order a shuffled image's four quadrants are in (24 orders), from scratch",
             "mini_hub_jigsaw", "self-supervised", "Fashion-MNIST + digits", iterations=1000),
):  # fmt: skip
    MINI_HUB.register(_m.name)(_m)

DEMO = "demo_"  # the demo hub's twin of mini hub model m is demo_<m> (module doc)
for _m in list(map(MINI_HUB.get, MINI_HUB.names())):
    MINI_HUB.register(DEMO + _m.name)(dataclasses.replace(
        _m, name=DEMO + _m.name, iterations=max(1, round(_m.iterations * DEMO_STEPS_SCALE)),
        parent=DEMO + _m.parent if _m.parent else "",
        description=f"demo twin of {_m.name} (× {DEMO_STEPS_SCALE:g} of its pre-training steps): {_m.description}"))  # fmt: skip


def cache_dir() -> Path:
    return (env.folder("TRANSFERLAB_CACHE") or Path.home() / ".cache" / "transferlab") / "mini_hub"


def _paths(model: HubModel) -> tuple[Path, Path]:
    stem = f"{model.name}-{model.recipe().config_hash()[:10]}"
    return cache_dir() / f"{stem}.pt", cache_dir() / f"{stem}.json"


class HubModelMissing(WeightsError):
    """A mini-hub model is not pre-trained yet (or its cached file was corrupt and removed)."""


def released(name: str) -> tuple[Path, dict] | None:
    """(weights, manifest) of the released build of ``name`` for its current recipe in ``$TRANSFERLAB_HUB_RELEASE``,
    or None (no release folder, another recipe, or a file that does not match its manifest's sha256)."""
    release = env.folder("TRANSFERLAB_HUB_RELEASE")
    if release is None:
        return None
    weights, manifest = _paths(MINI_HUB.get(name))
    weights, manifest = release / weights.name, release / manifest.name
    if not (weights.exists() and manifest.exists()):
        return None
    meta = json.loads(manifest.read_text())
    return (weights, meta) if sha256_file(weights) == meta.get("sha256") else None


def install_released(name: str) -> tuple[Path, dict] | None:
    """Copy the released build of ``name`` into the cache (atomically: the manifest last); None if none fits."""
    found = released(name)
    if found is None:
        return None
    weights, meta = found
    target, manifest = _paths(MINI_HUB.get(name))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(weights, tmp)
    os.replace(tmp, target)
    meta = {**meta, "installed_from": f"released build ({weights.parent})"}
    tmp = manifest.with_name(f".{manifest.name}.tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, manifest)
    return target, meta


def locked(model: HubModel):
    """The model's cache lock: a parallel process waits here instead of pre-training the same model."""
    return cache_lock(_paths(model)[0])


def cached(name: str) -> tuple[Path, dict] | None:
    """(weights path, manifest) of hub model ``name`` if it is built and intact; None otherwise (a corrupt pair is
    deleted, so it is built again)."""
    weights, manifest = _paths(MINI_HUB.get(name))
    meta = valid_cached(weights, manifest, "mini hub cache")
    return None if meta is None else (weights, meta)


def load_hub_backbone(name: str, backbone: str = "mini_resnet", data_root: str = "data") -> Backbone:
    model = MINI_HUB.get(name)
    if backbone != model.backbone:
        raise WeightsError(
            f"mini hub model {name!r} is a {model.backbone}; the run asks for backbone {backbone!r}"
        )
    found = cached(name)
    if found is None:
        raise HubModelMissing(
            f"mini hub model {name!r} is not pre-trained yet (cache {cache_dir()}): run `transferlab hub build mini` "
            "(or `make hub`); `transferlab run` and `transferlab.run()` build what a run needs first"
        )
    weights, meta = found
    fix = (
        f"delete it and its manifest {weights.with_suffix('.json').name} and run `transferlab hub build mini`"
    )
    try:
        state = load_checked(weights, meta["sha256"], fix)
        net = Backbone(BACKBONES.get(backbone)(state["head.weight"].shape[0]), backbone)
        net.load_state_dict(state, strict=True)
    except WeightsError:  # already names the file and the fix (e.g. a pickle that weights_only refuses)
        raise
    except (
        RuntimeError,
        KeyError,
        ValueError,
    ) as err:  # a file that matches its manifest but not the network
        first = str(err).strip().splitlines()[-1].strip()[:300]
        raise WeightsError(
            f"mini hub model {name!r}: {weights} does not fit a {backbone} ({type(err).__name__}: {first}); {fix}"
        ) from err
    net.weights_sha256 = meta["sha256"]
    net.hub_model = f"mini:{name}"
    return net
