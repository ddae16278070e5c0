"""What the multi-model methods share: the hub a run names, its members as backbones with new heads, provenance.

The hub is named by ``pretrained = "hub:<name>"`` (checked by ``Method.check`` when the table is planned, so a
typo never reaches here); its K models are loaded in hub order — the expert order of Zoo-Tuning and the model
order of Hub-Pathway and the ensemble — each with a new head for the run's task (no source head kept).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from transferlab.config import ConfigError, RunConfig
from transferlab.models.hub import HUBS, Hub

if TYPE_CHECKING:
    from transferlab.tasks import Task


def hub_of(run: RunConfig) -> Hub:
    """The :class:`~transferlab.models.hub.Hub` the run names (``pretrained="hub:<name>"``)."""
    return HUBS.get(run.weights.name)


def check_hub_backbone(run: RunConfig, method_name: str) -> Hub:
    """ConfigError unless the run names a hub and its ``backbone`` is one of the hub's architectures (the
    backbone labels the results, so it must say what ran)."""
    hub = hub_of(run)
    archs = hub.architectures()
    if run.backbone not in archs:
        held = "; ".join(f"{a}: {', '.join(ms)}" for a, ms in archs.items())
        raise ConfigError(
            f"{method_name}: hub {hub.name!r} holds {held}; the run asks for backbone {run.backbone!r}"
        )
    return hub


def hub_members(run: RunConfig, task: Task) -> tuple[Hub, nn.ModuleList]:
    """The hub and its models in hub order, each a Backbone with its pre-trained weights and a new head for
    ``task`` (drawn from the global RNG, in hub order)."""
    hub = hub_of(run)
    members = []
    for name in hub.names():
        member = hub.load(name, data_root=run.data.data_root)
        member.reset_head(task.head(member.feature_dim), keep_source=False, spatial=task.spatial)
        members.append(member)
    return hub, nn.ModuleList(members)


def hub_artifacts(hub_name: str, members: nn.ModuleList) -> dict:
    return {
        "hub": hub_name,
        "members": [m.hub_model for m in members],
        "architectures": [m.name for m in members],
    }


__all__ = ["check_hub_backbone", "hub_artifacts", "hub_members", "hub_of"]
