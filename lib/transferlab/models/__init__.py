"""Backbones, pre-trained weights and model hubs."""

from transferlab.models.backbones import BACKBONES, Backbone, init_head
from transferlab.models.weights import WeightsError

from transferlab.models import vgg  # noqa: F401  registers the vgg9_bn and mini_vgg backbones  isort: skip


def build_backbone(
    name: str, pretrained: str = "none", weights_dir=None, data_root: str = "data", source_head: bool = False
) -> Backbone:
    """A registered backbone with weights: "none", a torchvision enum name, a MoCo checkpoint name, or
    "mini:<hub model>". ``source_head``: the caller uses the pre-trained classifier (Co-Tuning, LwF)."""
    if pretrained.startswith("mini:"):
        from transferlab.models.mini_hub import load_hub_backbone

        return load_hub_backbone(pretrained.removeprefix("mini:"), backbone=name, data_root=data_root)
    if pretrained == "none":
        return Backbone(BACKBONES.get(name)(1000), name)
    from transferlab.models.weights import MOCO_MD5, torchvision_state_dict

    if pretrained in MOCO_MD5:
        return _moco_backbone(name, pretrained, weights_dir, source_head)
    hub_model = _paper_hub_model(pretrained)
    if hub_model is not None:  # the detection / segmentation backbones of the paper hub
        if name != hub_model.arch:
            raise WeightsError(
                f"{pretrained!r} are {hub_model.arch} weights; the run asks for backbone {name!r}"
            )
        from transferlab.models.hub import HUBS

        return HUBS.get("paper").load(pretrained, weights_dir)
    state = torchvision_state_dict(name, pretrained, weights_dir)
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


def weights_supported(backbone: str, pretrained: str) -> str:
    """ "" if ``pretrained`` can be loaded for ``backbone``, else why not (used to mark table cells as missing)."""
    from transferlab.models.mini_hub import MINI_HUB
    from transferlab.models.weights import MOCO_MD5, TORCHVISION_WEIGHTS

    if pretrained.startswith("hub:"):  # hub methods build their own models; the hub says what it lacks
        from transferlab.models.hub import HUBS

        name = pretrained.removeprefix("hub:")
        return "" if name in HUBS else f"model hub {name!r} does not exist (hubs: {', '.join(HUBS.names())})"
    if pretrained == "none":
        return ""
    if pretrained.startswith("mini:"):
        name = pretrained.removeprefix("mini:")
        return "" if name in MINI_HUB else f"mini hub model {name!r} does not exist"
    if pretrained in TORCHVISION_WEIGHTS.get(backbone, {}) or (
        pretrained in MOCO_MD5 and backbone == "resnet50"
    ):
        return ""
    hub_model = _paper_hub_model(pretrained)
    if hub_model is not None and hub_model.arch == backbone:
        return ""
    return f"weights {pretrained!r} for {backbone!r} are not supported yet"


__all__ = ["BACKBONES", "Backbone", "WeightsError", "build_backbone", "init_head", "weights_supported"]
