"""Model hubs: named, ordered lists of pre-trained source models with provenance (Zoo-Tuning, Hub-Pathway).

``Hub.load(name)`` / ``backbones()`` give :class:`~transferlab.models.backbones.Backbone` objects with weights;
``state_dicts()`` gives torchvision ResNet-keyed bodies (no ``fc``, no ``num_batches_tracked``) in hub order, the
expert order of :func:`~transferlab.models.zoo_build.build_zoo_resnet`; ``check()`` / ``fetch()`` / ``manifest()``
say which file each model needs, where it comes from and whether the copy on disk is intact. A hub may mix
architectures; methods that aggregate parameters call ``require_identical_architectures``.

``HUBS``: ``paper`` is Zoo-Tuning's zoo in the official ``module/backbone.py`` order (supervised ImageNet, MoCo
**v1** 200 epochs as the official code loads, Mask R-CNN, DeepLabV3, Keypoint R-CNN; ``paper_mocov2`` has MoCo v2
800 epochs instead); ``mini`` is :mod:`transferlab.models.mini_hub`, pre-trained by the suite itself. Key
remapping of the published checkpoints (the prefixes the official loader strips):

| model | keys kept → torchvision ResNet keys | dropped |
|---|---|---|
| ImageNet | as is | — |
| MoCo | ``module.encoder_q.*`` → ``*`` | ``fc.*`` (projection), ``module.encoder_k.*``, ``module.queue*`` |
| Mask / Keypoint R-CNN | ``backbone.body.*`` → ``*`` | ``backbone.fpn.*``, ``rpn.*``, ``roi_heads.*`` |
| DeepLabV3 | ``backbone.*`` → ``*`` | ``classifier.*``, ``aux_classifier.*`` |

The detection backbones were trained with ``FrozenBatchNorm2d``, whose state has no ``num_batches_tracked``: those
counters (and ``fc.*``) are the only keys allowed to be absent when a body is loaded into a torchvision ResNet;
any other missing or unexpected key, or a shape mismatch, is an error that lists the keys. DeepLab's layer3/layer4
were trained dilated; like the official code we load them into an undilated ResNet-50 (same shapes).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from transferlab.config import ConfigError
from transferlab.models import mini_hub
from transferlab.models.backbones import BACKBONES, Backbone
from transferlab.models.hub_files import (  # noqa: F401  (re-exported: the hub's vocabulary)
    MOCO_LICENCE,
    TORCHVISION_LICENCE,
    KeyMap,
    MiniHubWeights,
    Published,
)
from transferlab.models.weights import (
    MOCO_MD5,
    MOCO_URL,
    TORCH_MODELS,
    TORCHVISION_WEIGHTS,
    WeightsError,
    hash_prefix,
)
from transferlab.registry import Registry


@dataclass(frozen=True)
class HubModel:
    name: str
    arch: str  # a registered backbone (BACKBONES)
    provenance: str
    weights: Published | MiniHubWeights


@dataclass(frozen=True)
class FileStatus:
    """One model's file on disk: ``status`` is "ok", "missing" or "bad"; ``detail`` says what to do."""

    model: str
    file: str
    source: str
    path: Path | None
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _ignorable(key: str) -> bool:
    return key.startswith("fc.") or key.endswith("num_batches_tracked")


@functools.cache
def _arch_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Key → shape of an untrained ``arch``, built on the meta device: no memory, no draw from the global RNG."""
    with torch.device("meta"):
        net = BACKBONES.get(arch)(1000)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _check_fit(state: Mapping[str, torch.Tensor], arch: str, what: str) -> None:
    """Raise unless ``state`` loads into ``arch`` strictly, apart from ``fc.*`` and ``num_batches_tracked``."""
    expected = _arch_shapes(arch)
    missing = [k for k in expected if k not in state and not _ignorable(k)]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {list(state[k].shape)} (expected {list(expected[k])})"
        for k in state
        if k in expected and not k.startswith("fc.") and tuple(state[k].shape) != expected[k]
    ]
    if missing or unexpected or shapes:
        raise WeightsError(
            f"{what} does not fit {arch}: missing keys {missing}, unexpected keys {unexpected}"
            + (f", wrong shapes {shapes}" if shapes else "")
        )


@dataclass(frozen=True)
class Hub:
    name: str
    description: str
    models: tuple[HubModel, ...]

    def __post_init__(self):
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"hub {self.name!r} names a model twice: {names}")

    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def model(self, name: str) -> HubModel:
        for m in self.models:
            if m.name == name:
                return m
        raise WeightsError(f"hub {self.name!r} has no model {name!r}; its models: {', '.join(self.names())}")

    def state_dict(self, name: str, weights_dir=None, data_root: str = "data") -> dict[str, torch.Tensor]:
        """Model ``name``'s weights with torchvision ResNet keys (``fc.*`` only where the checkpoint has one)."""
        m = self.model(name)
        what = f"hub {self.name!r} model {m.name!r} ({m.weights.file})"
        state = m.weights.state_dict(what, weights_dir, data_root)
        _check_fit(state, m.arch, what)
        return state

    def load(self, name: str, weights_dir=None, data_root: str = "data") -> Backbone:
        """A Backbone with model ``name``'s weights; its head is the checkpoint's classifier if it has one (the
        supervised ImageNet model, the mini hub's pretext heads), else a fresh 1000-way layer no one has trained."""
        m, state = self.model(name), self.state_dict(name, weights_dir, data_root)
        net = BACKBONES.get(m.arch)(state["fc.weight"].shape[0] if "fc.weight" in state else 1000)
        net.load_state_dict(state, strict=False)  # _check_fit: only fc.*, num_batches_tracked may be absent
        backbone = Backbone(net, m.arch)
        backbone.hub_model = f"{self.name}:{m.name}"
        return backbone

    def backbones(self, weights_dir=None, data_root: str = "data") -> list[Backbone]:
        return [self.load(n, weights_dir, data_root) for n in self.names()]

    def state_dicts(self, weights_dir=None, data_root: str = "data") -> dict[str, dict[str, torch.Tensor]]:
        """Model name → body state dict (no ``fc.*``, no ``num_batches_tracked``), in hub (expert) order."""
        return {
            n: {k: v for k, v in self.state_dict(n, weights_dir, data_root).items() if not _ignorable(k)}
            for n in self.names()
        }

    def check(self, weights_dir=None) -> list[FileStatus]:
        """Each model's file: present? checksum ok? Never downloads or pre-trains."""
        out = []
        for m in self.models:
            w, path = m.weights, m.weights.locate(weights_dir)
            if path is None:
                out.append(FileStatus(m.name, w.file, w.url, None, "missing", w.where(weights_dir)))
            else:
                problem = w.problem(path)
                out.append(FileStatus(m.name, w.file, w.url, path, "bad" if problem else "ok", problem))
        return out

    def fetch(self, weights_dir=None, data_root: str = "data") -> list[FileStatus]:
        """Download (or, for the mini hub, pre-train) what is missing; a failure is reported, not raised."""
        out = []
        for m in self.models:
            w = m.weights
            try:
                path, status, detail = (
                    w.fetch(f"hub {self.name!r} model {m.name!r}", weights_dir, data_root),
                    "ok",
                    "",
                )
            except WeightsError as err:
                path, detail = w.locate(weights_dir), str(err)
                status = "bad" if path else "missing"
            out.append(FileStatus(m.name, w.file, w.url, path, status, detail))
        return out

    def architectures(self) -> dict[str, list[str]]:
        """Architecture → the hub's models of that architecture (in hub order)."""
        out: dict[str, list[str]] = {}
        for m in self.models:
            out.setdefault(m.arch, []).append(m.name)
        return out

    def require_identical_architectures(self, method_name: str) -> str:
        """The hub's one architecture; ConfigError naming the models of each architecture if there are several."""
        archs = self.architectures()
        if len(archs) != 1:
            groups = "; ".join(f"{a}: {', '.join(ms)}" for a, ms in archs.items())
            raise ConfigError(
                f"{method_name} aggregates parameters layer by layer and needs models of one architecture, but hub "
                f"{self.name!r} mixes {len(archs)}: {groups}"
            )
        return next(iter(archs))

    def manifest(self) -> list[dict]:
        """One dict per model: name, architecture, file, source URL, checksum kind and prefix, provenance, licence."""
        return [
            {
                "hub": self.name,
                "name": m.name,
                "arch": m.arch,
                "file": m.weights.file,
                "url": m.weights.url,
                "checksum": m.weights.checksum,
                "prefix": m.weights.prefix,
                "keys": str(m.weights.keys),
                "provenance": m.provenance,
                "licence": m.weights.licence,
            }
            for m in self.models
        ]


# ---------------------------------------------------------------------------------------------- the paper hub
# the files torchvision 0.29.1's enums download (MaskRCNN_ResNet50_FPN_Weights.COCO_V1,
# DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1, KeypointRCNN_ResNet50_FPN_Weights.COCO_V1; checked against
# torchvision in tests/test_hub.py), as facts: no torchvision import to describe the hub
MASKRCNN_URL = TORCH_MODELS + "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
DEEPLABV3_URL = TORCH_MODELS + "deeplabv3_resnet50_coco-cd0a2569.pth"
KEYPOINTRCNN_URL = TORCH_MODELS + "keypointrcnn_resnet50_fpn_coco-fc266e95.pth"


def _torchvision(url: str, keys: KeyMap) -> Published:
    file = url.rsplit("/", 1)[-1]
    return Published(file, url, "sha256", hash_prefix(file), keys, TORCHVISION_LICENCE)


def _moco(name: str) -> Published:
    keys = KeyMap("module.encoder_q.", drop=("fc.",))
    return Published(
        f"{name}_pretrain.pth.tar", MOCO_URL.format(name=name), "md5", MOCO_MD5[name], keys, MOCO_LICENCE
    )


_RCNN = KeyMap("backbone.body.")  # backbone.fpn.*, rpn.*, roi_heads.* are dropped


def paper_hub(moco: str = "moco_v1_200ep", name: str = "paper") -> Hub:
    """The Zoo-Tuning zoo, in the official stacking order [ImageNet, MoCo, Mask R-CNN, DeepLab, Keypoint R-CNN]."""
    moco_text = {"moco_v1_200ep": "v1, 200 epochs (the file Zoo-Tuning's module/backbone.py loads)"}
    models = (
        HubModel("IMAGENET1K_V1", "resnet50",
                 "supervised ImageNet-1k (ResNet50_Weights.IMAGENET1K_V1, acc@1 76.13): torchvision's re-save of the "
                 "legacy resnet50-19c8e357.pth Zoo-Tuning loads", _torchvision(TORCHVISION_WEIGHTS["resnet50"]["IMAGENET1K_V1"], KeyMap())),
        HubModel(moco, "resnet50",
                 f"self-supervised MoCo {moco_text.get(moco, moco)} on ImageNet-1k; query encoder, projection dropped",
                 _moco(moco)),
        HubModel("maskrcnn_coco_v1", "resnet50",
                 "Mask R-CNN R50-FPN, COCO-2017 detection + instance segmentation "
                 "(MaskRCNN_ResNet50_FPN_Weights.COCO_V1, box 37.9 / mask 34.6); body only, FrozenBN",
                 _torchvision(MASKRCNN_URL, _RCNN)),
        HubModel("deeplabv3_coco_v1", "resnet50",
                 "DeepLabV3-ResNet50, semantic segmentation on COCO-2017 with the VOC classes "
                 "(DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1, mIoU 66.4); trained dilated, loaded undilated",
                 _torchvision(DEEPLABV3_URL, KeyMap("backbone."))),
        HubModel("keypointrcnn_coco_v1", "resnet50",
                 "Keypoint R-CNN R50-FPN, COCO-2017 person keypoints "
                 "(KeypointRCNN_ResNet50_FPN_Weights.COCO_V1, box 54.6 / kp 65.0); body only, FrozenBN",
                 _torchvision(KEYPOINTRCNN_URL, _RCNN)),
    )  # fmt: skip
    return Hub(name, f"Zoo-Tuning's zoo of 5 ResNet-50s (MoCo {moco})", models)


# the mini hub's models in its module table's order (the ancestor first, as supervised ImageNet in the paper hub)
MINI_ORDER = ("clusters", "coarse", "rotation", "parity", "jigsaw")


def mini_hub_of(names: Sequence[str] = MINI_ORDER, name: str = "mini",
                description: str = "the mini hub: small models pre-trained by transferlab (CPU, offline)") -> Hub:  # fmt: skip
    """A hub of mini-hub models (``MINI_HUB`` names), in the given (expert) order."""
    models = tuple(
        HubModel(
            n, mini_hub.MINI_HUB.get(n).backbone, mini_hub.MINI_HUB.get(n).description, MiniHubWeights(n)
        )
        for n in names
    )
    return Hub(name, description, models)


HUBS: Registry[Hub] = Registry("model hub")
HUBS.register("paper")(paper_hub())
HUBS.register("paper_mocov2")(paper_hub("moco_v2_800ep", "paper_mocov2"))
HUBS.register("mini")(mini_hub_of())
HUBS.register("demo")(mini_hub_of([mini_hub.DEMO + n for n in MINI_ORDER], "demo",
                                  "the demo protocol's hub: the mini hub's twins, pre-trained for 1/4 of the steps"))  # fmt: skip
