"""Backbones, pre-trained weights and model hubs."""

from transferlab.models.backbones import BACKBONES, Backbone, init_head
from transferlab.models.weights import WeightsError


def build_backbone(
    name: str, pretrained: str = "none", weights_dir=None, data_root: str = "data"
) -> Backbone:
    """A registered backbone with weights: "none", a torchvision enum name, or "mini:<hub model>"."""
    if pretrained.startswith("mini:"):
        from transferlab.models.mini_hub import load_hub_backbone

        return load_hub_backbone(pretrained.removeprefix("mini:"), backbone=name, data_root=data_root)
    if pretrained == "none":
        return Backbone(BACKBONES.get(name)(1000), name)
    from transferlab.models.weights import torchvision_state_dict

    state = torchvision_state_dict(name, pretrained, weights_dir)
    net = BACKBONES.get(name)(state["fc.weight"].shape[0])
    net.load_state_dict(state, strict=True)
    return Backbone(net, name)


def weights_supported(backbone: str, pretrained: str) -> str:
    """ "" if ``pretrained`` can be loaded for ``backbone``, else why not (used to mark table cells as missing)."""
    from transferlab.models.mini_hub import MINI_HUB
    from transferlab.models.weights import TORCHVISION_WEIGHTS

    if pretrained == "none" or pretrained.startswith("hub:"):
        return ""  # hub methods build their own models; the hub says what it lacks
    if pretrained.startswith("mini:"):
        name = pretrained.removeprefix("mini:")
        return "" if name in MINI_HUB else f"mini hub model {name!r} does not exist"
    if pretrained in TORCHVISION_WEIGHTS.get(backbone, {}):
        return ""
    return f"weights {pretrained!r} for {backbone!r} are not supported yet"


__all__ = ["BACKBONES", "Backbone", "WeightsError", "build_backbone", "init_head", "weights_supported"]
