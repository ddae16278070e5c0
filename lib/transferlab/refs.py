"""``WeightsRef``: the typed form of a run's ``pretrained`` field, parsed in exactly one place.

``pretrained`` is written as a string in tables, notebooks and on the command line; everything else in the suite
works with the parsed reference:

| text               | kind    | meaning                                                                      |
|--------------------|---------|------------------------------------------------------------------------------|
| ``none``           | none    | random initialisation (method ``scratch``, L2T-ww's targets)                 |
| ``hub:<hub>``      | hub     | a whole model hub (``transferlab.models.hub.HUBS``): multi-model methods      |
| ``mini:<model>``   | mini    | one model of the suite's mini hub (``transferlab.models.mini_hub.MINI_HUB``) |
| ``policy:<name>``  | policy  | a source policy pre-trained by the suite (``models.policy_hub.POLICIES``)     |
| ``<weights name>`` | named   | published weights: a pinned torchvision enum (``IMAGENET1K_V1``), a MoCo      |
|                    |         | checkpoint (``moco_v2_800ep``) or a paper-hub model (``maskrcnn_coco_v1``)    |

This module checks only the syntax (it sits at the bottom of the layers); whether the named hub, model or weights
exist is checked against the registries by :func:`transferlab.models.check_weights` when a configuration is
validated (``transferlab.experiment.check``), with a "did you mean".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transferlab.errors import ConfigError

KINDS = ("none", "hub", "mini", "policy", "named")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class WeightsRef:
    kind: str  # none | hub | mini | named
    name: str = ""  # the hub, mini-hub model or weights name ("" for none)

    @classmethod
    def parse(cls, text: str) -> WeightsRef:
        if not isinstance(text, str):
            raise ConfigError(
                f"pretrained={text!r} must be a string such as 'none', 'hub:mini' or 'IMAGENET1K_V1'"
            )
        if text == "none":
            return cls("none")
        prefix, sep, rest = text.partition(":")
        if sep:
            if prefix not in ("hub", "mini", "policy"):
                raise ConfigError(
                    f"pretrained={text!r}: unknown prefix {prefix!r}; write 'hub:<hub>', 'mini:<model>', 'policy:<name>', "
                    "'none' or a weights name such as IMAGENET1K_V1"
                )
            kind, name = prefix, rest
        else:
            kind, name = "named", text
        if not _NAME.match(name):
            raise ConfigError(f"pretrained={text!r}: {name!r} is not a valid name (letters, digits, _ . -)")
        if kind == "named" and name.upper() == "DEFAULT":
            raise ConfigError(
                "pretrained='DEFAULT' is refused: name the weights explicitly (e.g. IMAGENET1K_V1)"
            )
        return cls(kind, name)

    def __str__(self) -> str:
        return {
            "none": "none",
            "hub": f"hub:{self.name}",
            "mini": f"mini:{self.name}",
            "policy": f"policy:{self.name}",
        }.get(self.kind, self.name)

    @property
    def is_hub(self) -> bool:
        return self.kind == "hub"

    @property
    def is_none(self) -> bool:
        return self.kind == "none"


__all__ = ["KINDS", "WeightsRef"]
