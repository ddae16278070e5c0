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


__all__ = ["BACKBONES", "Backbone", "WeightsError", "build_backbone", "init_head"]
