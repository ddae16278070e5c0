"""The ``Method`` interface: everything a transfer-learning method can change, behind one training loop.

A method is an ``nn.Module`` that owns its model(s) and its state (anchors, relationships, meta-networks). The loop in
:func:`transferlab.train.fit` only ever calls:

- ``Method.build(run_cfg, num_classes)`` — construct the model(s): one backbone with pre-trained weights by default;
  multi-model methods (Zoo-Tuning, Hub-Pathway) override it to build from a model hub;
- ``prepare(loader)`` — one-off state computed from the training data before the first step (Co-Tuning's
  relationship p(y_s|y_t), L2-SP's anchors, DELTA's channel attention), kept as buffers so it is checkpointed;
- ``param_groups(optim_cfg)`` — parameter groups with ``lr_mult`` (the new head at ``head_lr_mult`` × the base lr);
- ``loss(x, y)`` → dict with ``loss`` (scalar to minimise), ``logits`` and any named terms (logged automatically);
- ``train_step(x, y, optimizer)`` — one optimisation step; overridden only where the update itself differs
  (L2T-ww's bilevel step); it returns the loss dict;
- ``predict(x)`` — target-task logits at evaluation;
- ``test_statistics(batches)`` — optional statistics over the test set with the selected weights (routing).

Each method's hyper-parameters are a nested frozen ``Config`` dataclass whose defaults are the paper's, with
provenance in comments; ``RunConfig.method_params`` is validated against it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.config import ConfigError, OptimConfig, RunConfig, _coerce, _hint
from transferlab.models import Backbone, build_backbone
from transferlab.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")


class Method(nn.Module):
    name: ClassVar[str] = "base"
    paper: ClassVar[str] = ""  # the paper (and link) the method comes from
    uses_source_head: ClassVar[bool] = False  # trains or reads the pre-trained classifier (Co-Tuning, LwF)

    @dataclass(frozen=True)
    class Config:
        pass

    def __init__(self, backbone: Backbone, num_classes: int, cfg: Method.Config):
        super().__init__()
        if self.uses_source_head and backbone.source_head is None:
            raise ValueError(f"{self.name} needs pre-trained weights with their classifier (the source head)")
        self.backbone = backbone
        self.num_classes = num_classes
        self.cfg = cfg

    # ------------------------------------------------------------------------------------------------ building
    @classmethod
    def build(cls, run: RunConfig, num_classes: int) -> Method:
        backbone = build_backbone(
            run.backbone, run.pretrained, data_root=run.data.data_root, source_head=cls.uses_source_head
        )
        backbone.reset_head(num_classes, keep_source=run.pretrained != "none")
        return cls(backbone, num_classes, method_config(run.method, run.method_params))

    def prepare(self, loader: Any) -> None:
        """One-off state from the training data (no-op by default)."""

    # ------------------------------------------------------------------------------------------------ training
    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters created for the target task (trained at ``head_lr_mult`` × lr): the new head by default."""
        return list(self.backbone.head.parameters())

    def param_groups(self, optim: OptimConfig) -> list[dict]:
        new = {id(p) for p in self.new_parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in new]
        groups = [{"params": rest, "lr_mult": 1.0, "name": "pretrained"}]
        groups.append({"params": self.new_parameters(), "lr_mult": optim.head_lr_mult, "name": "new"})
        return [g for g in groups if g["params"]]

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.backbone(x)
        return {"loss": F.cross_entropy(logits, y), "logits": logits}

    def autocast(self):
        """The forward-pass precision ``fit()`` chose (bf16 autocast on GPU); backward runs outside it."""
        dtype = getattr(self, "autocast_dtype", None)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(next(self.parameters()).device.type, dtype=dtype)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> dict:
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            out = self.loss(x, y)
        out["loss"].backward()
        optimizer.step()
        return out

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def test_statistics(self, batches: Any) -> dict:
        """Method-specific statistics over the test set (``(x, y)`` batches, one crop) with the selected
        best-validation weights, stored in the result's ``extra`` (Hub-Pathway's routing); none by default."""
        return {}


def method_config(name: str, params: dict[str, Any]) -> Method.Config:
    """Validate ``params`` against the method's ``Config`` (unknown keys list the valid ones)."""
    cls = METHODS.get(name)
    valid = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(params) - valid)
    if unknown:
        listing = ", ".join(sorted(valid)) or "none"
        raise ConfigError(f"method {name!r} has no parameter(s) {unknown}; its parameters: {listing}")
    kwargs = {k: _coerce(k, _hint(cls.Config, k), v) for k, v in params.items()}
    return cls.Config(**kwargs)
