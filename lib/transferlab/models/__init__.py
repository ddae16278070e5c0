"""Backbones, pre-trained weights and model hubs."""

from __future__ import annotations

import difflib

from transferlab.errors import ConfigError
from transferlab.models.backbones import BACKBONES, Backbone, init_head
from transferlab.models.weights import WeightsError
from transferlab.refs import WeightsRef

from transferlab.models import vgg  # noqa: F401,E402  registers the vgg9_bn and mini_vgg backbones  isort: skip

TEXT_BACKBONE = (
    "bert"  # = transferlab.models.text.TEXT_BACKBONE (that module imports torch only, but stays lazy)
)


def _text_only(num_classes: int):
    raise ConfigError(f"the {TEXT_BACKBONE!r} backbone is built from its weights (pretrained='bert-base-cased' or "
                      "'minilm-l6-mlm'), not from a class count")  # fmt: skip


BACKBONES.register(TEXT_BACKBONE)(_text_only)


def build_backbone(
    name: str,
    ref: WeightsRef | str = "none",
    weights_dir=None,
    data_root: str = "data",
    source_head: bool = False,
) -> Backbone:
    """A registered backbone with the weights ``ref`` names (none, a torchvision enum, a MoCo checkpoint, a
    paper-hub model, or a mini-hub model; a string is parsed by ``WeightsRef.parse``). ``source_head``: the caller
    uses the pre-trained classifier."""
    if isinstance(ref, str):
        ref = WeightsRef.parse(ref)
    if name == TEXT_BACKBONE:  # a BERT encoder with per-token features (transformers imported only here)
        from transferlab.models.text import load_text_backbone

        if ref.kind != "named":
            raise ConfigError(f"backbone {name!r} needs named text weights, not pretrained={ref}")
        return load_text_backbone(ref.name, weights_dir, source_head)
    if ref.kind == "hub":
        raise ConfigError(f"{ref} names a whole hub; a single backbone needs one model's weights")
    if ref.kind == "mini":
        from transferlab.models.mini_hub import load_hub_backbone

        return load_hub_backbone(ref.name, backbone=name, data_root=data_root)
    if ref.kind == "none":
        return Backbone(BACKBONES.get(name)(1000), name)
    from transferlab.models.weights import MOCO_MD5, torchvision_state_dict

    if ref.name in MOCO_MD5:
        return _moco_backbone(name, ref.name, weights_dir, source_head)
    hub_model = _paper_hub_model(ref.name)
    if hub_model is not None:  # the detection / segmentation backbones of the paper hub
        if name != hub_model.arch:
            raise WeightsError(f"{ref} are {hub_model.arch} weights; the run asks for backbone {name!r}")
        from transferlab.models.hub import HUBS

        return HUBS.get("paper").load(ref.name, weights_dir)
    state = torchvision_state_dict(name, ref.name, weights_dir)
    net = BACKBONES.get(name)(state["fc.weight"].shape[0])
    net.load_state_dict(state, strict=True)
    return Backbone(net, name)


def _moco_backbone(name: str, pretrained: str, weights_dir, source_head: bool) -> Backbone:
    """MoCo's ResNet-50 body. MoCo has no classifier; where a method needs one (Co-Tuning's source head, LwF's old
    task), the supervised ImageNet ``fc`` of ``IMAGENET1K_V1`` is put on top, which is what TLlib's MoCo rows do
    (its ``utils.get_model`` builds the supervised model, then loads the MoCo body non-strictly, keeping that
    ``fc``). Otherwise the ``fc`` is a fresh 1000-way layer that no one uses."""
    from transferlab.models.weights import moco_state_dict, torchvision_state_dict

    if name != "resnet50":
        raise WeightsError(
            f"MoCo weights {pretrained!r} are ResNet-50 weights; the run asks for backbone {name!r}"
        )
    net = BACKBONES.get(name)(1000)
    missing, unexpected = net.load_state_dict(moco_state_dict(pretrained, weights_dir), strict=False)
    if unexpected or set(missing) != {"fc.weight", "fc.bias"}:
        raise WeightsError(
            f"MoCo checkpoint does not fit ResNet-50: missing {missing}, unexpected {unexpected}"
        )
    if source_head:
        fc = torchvision_state_dict(name, "IMAGENET1K_V1", weights_dir)
        net.fc.load_state_dict({"weight": fc["fc.weight"], "bias": fc["fc.bias"]})
    return Backbone(net, name)


def _paper_hub_model(pretrained: str):
    """The paper hub's entry for names only the hub knows (its detection / segmentation backbones), else None."""
    from transferlab.models.hub import HUBS
    from transferlab.models.weights import MOCO_MD5, TORCHVISION_WEIGHTS

    known = {n for table in TORCHVISION_WEIGHTS.values() for n in table} | set(MOCO_MD5)
    hub = HUBS.get("paper")
    return hub.model(pretrained) if pretrained in hub.names() and pretrained not in known else None


def named_weights(backbone: str) -> list[str]:
    """The published weights names a backbone accepts (torchvision enums, MoCo, paper-hub models)."""
    from transferlab.models.hub import HUBS
    from transferlab.models.weights import MOCO_MD5, TORCHVISION_WEIGHTS

    if backbone == TEXT_BACKBONE:
        return ["bert-base-cased", "minilm-l6-mlm"]  # transferlab.models.text.TEXT_WEIGHTS
    names = list(TORCHVISION_WEIGHTS.get(backbone, {}))
    if backbone == "resnet50":
        names += list(MOCO_MD5)
    names += [m.name for m in HUBS.get("paper").models if m.arch == backbone and m.name not in names]
    return names


def _did_you_mean(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_weights(backbone: str, ref: WeightsRef) -> None:
    """ConfigError (with a "did you mean") unless ``ref`` names weights that exist for ``backbone``; loads nothing."""
    from transferlab.models.hub import HUBS
    from transferlab.models.mini_hub import MINI_HUB

    if ref.kind == "none":
        return
    if backbone == TEXT_BACKBONE and ref.kind != "named":
        raise ConfigError(f"backbone {backbone!r} needs named text weights ({', '.join(named_weights(backbone))}), "
                          f"not pretrained={ref}")  # fmt: skip
    if ref.kind == "hub":
        if ref.name not in HUBS:
            valid = [f"hub:{n}" for n in HUBS.names()]
            raise ConfigError(f"model hub {ref.name!r} does not exist.{_did_you_mean(str(ref), valid)} "
                              f"Valid hubs: {', '.join(valid)}")  # fmt: skip
        return
    if ref.kind == "mini":
        if ref.name not in MINI_HUB:
            valid = [f"mini:{n}" for n in MINI_HUB.names()]
            raise ConfigError(f"mini hub model {ref.name!r} does not exist.{_did_you_mean(str(ref), valid)} "
                              f"Valid: {', '.join(valid)}")  # fmt: skip
        model = MINI_HUB.get(ref.name)
        if model.backbone != backbone:
            raise ConfigError(f"mini hub model {ref.name!r} is a {model.backbone}; the run asks for backbone "
                              f"{backbone!r}")  # fmt: skip
        return
    valid = named_weights(backbone)
    if ref.name not in valid:
        listing = ", ".join(valid) or "none (this backbone has no published weights here)"
        raise ConfigError(f"weights {ref.name!r} are not available for backbone {backbone!r}."
                          f"{_did_you_mean(ref.name, valid)} Valid: {listing}, or 'none'")  # fmt: skip


__all__ = [
    "BACKBONES",
    "TEXT_BACKBONE",
    "Backbone",
    "WeightsError",
    "build_backbone",
    "check_weights",
    "init_head",
    "named_weights",
]
