"""The ``Method`` interface: everything a transfer-learning method can change, behind one training loop.

A method is an ``nn.Module`` that owns its model(s) and its state (anchors, relationships, meta-networks). The
suite calls only the hooks declared here — never ``getattr`` probing:

- ``check(run)`` (class method) — the method's preconditions on a configuration (weights it needs, the hub it
  reads, its parameters against the backbone), checked **when a table is planned**, before any data is loaded;
- ``assets(run)`` — the pre-trained models the run needs (``WeightsRef``s), so mini-hub models are pre-trained once
  up front instead of racing inside parallel cells;
- ``dependencies(run)`` — other runs whose finished results this run reads (distillation's teacher is the
  ``ensemble`` cell); the experiment layer runs or finds them and hands them over in ``prepare``;
- ``build(run, task)`` — construct the model(s) for a :class:`~transferlab.tasks.Task` (its head, its outputs);
- ``prepare(data)`` — one-off state from the training data (a :class:`~transferlab.methods.context.PrepareData`:
  train and validation only), kept as buffers so that checkpoints hold it;
- ``param_groups(optim)`` — parameter groups with ``lr_mult`` (new parameters at ``head_lr_mult`` × the base lr) and
  optional per-group ``weight_decay`` (L2-SP and DELTA switch it off);
- ``set_precision(dtype)`` — the autocast dtype ``fit()`` chose; ``autocast()`` enters it;
- ``loss(x, y)`` → dict with ``loss`` (scalar to minimise), ``logits`` (the outputs) and named terms (logged);
- ``train_step(x, y, optimizer)`` — one update; overridden only where the update itself differs (L2T-ww);
- ``predict(x)`` — the task's outputs at evaluation;
- ``test_statistics(batches)`` — optional statistics over the test set with the selected weights (routing);
- ``artifacts()`` — provenance for the result record (weights checksums, what ``prepare`` chose).

Each method's hyper-parameters are a nested frozen ``Config`` dataclass whose defaults are the paper's, with
provenance in comments; ``RunConfig.method_params`` is validated against it by :func:`method_config`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from transferlab.config import ConfigError, OptimConfig, RunConfig, coerce, field_type
from transferlab.models import Backbone, build_backbone
from transferlab.refs import WeightsRef
from transferlab.registry import Registry

if TYPE_CHECKING:
    from transferlab.methods.context import PrepareData
    from transferlab.tasks import Task

METHODS: Registry[type[Method]] = Registry("method")
# The supervised task kinds (transferlab.tasks) a task-generic method handles through the task's head and loss.
SUPERVISED = ("classification", "landmarks", "token_classification")
VISION = ("classification", "landmarks")  # multi-model methods over image backbones


class Method(nn.Module):
    name: ClassVar[str] = "base"
    paper: ClassVar[str] = ""  # the paper (and link) the method comes from
    tasks: ClassVar[tuple[str, ...]] = ("classification",)  # the task kinds the method supports
    uses_source_head: ClassVar[bool] = False  # trains or reads the pre-trained classifier (Co-Tuning, LwF)
    # "required": refuses pretrained='none'; "forbidden": refuses anything else (scratch); "hub": needs hub:<name>;
    # "any": either
    weights: ClassVar[str] = "required"
    saves_weights: ClassVar[bool] = (
        False  # keep the selected weights with the result (a teacher for other runs)
    )

    @dataclass(frozen=True)
    class Config:
        pass

    def __init__(self, backbone: nn.Module, task: Task, cfg: Any):
        super().__init__()
        if self.uses_source_head and not (
            isinstance(backbone, Backbone) and backbone.source_head is not None
        ):
            raise ConfigError(
                f"{self.name} needs pre-trained weights with their classifier (the source head)"
            )
        self.backbone = backbone
        self.task = task
        self.num_classes = task.outputs
        self.cfg = cfg
        self.autocast_dtype: torch.dtype | None = None

    # ------------------------------------------------------------------------------------------------ planning
    @classmethod
    def check(cls, run: RunConfig) -> None:
        """Raise ConfigError if ``run`` cannot work with this method (no I/O: called when a table is planned)."""
        method_config(cls.name, run.method_params)
        ref = run.weights
        if cls.weights == "required" and (ref.is_none or ref.is_hub):
            hint = (
                " (pretrained='none' is method 'scratch')"
                if ref.is_none
                else " (a hub is for multi-model methods)"
            )
            raise ConfigError(f"method {cls.name!r} fine-tunes one pre-trained model: pretrained={ref}{hint}")
        if cls.weights == "forbidden" and not ref.is_none:
            raise ConfigError(
                f"method {cls.name!r} trains from random weights; set pretrained='none' (got {ref})"
            )
        if cls.weights == "hub" and not ref.is_hub:
            from transferlab.models.hub import HUBS

            hubs = ", ".join(f"hub:{n}" for n in HUBS.names())
            raise ConfigError(f"method {cls.name!r} builds its model from a hub of models: pretrained must be one of "
                              f"{hubs}, not {ref}")  # fmt: skip

    @classmethod
    def assets(cls, run: RunConfig) -> list[WeightsRef]:
        """Pre-trained models the run loads (the run's own ``pretrained`` by default)."""
        return [] if run.weights.is_none else [run.weights]

    @classmethod
    def dependencies(cls, run: RunConfig) -> dict[str, RunConfig]:
        """Other runs whose finished results this run reads, by role (none by default)."""
        return {}

    # ------------------------------------------------------------------------------------------------ building
    @classmethod
    def build(cls, run: RunConfig, task: Task) -> Method:
        backbone = build_backbone(
            run.backbone, run.weights, data_root=run.data.data_root, source_head=cls.uses_source_head
        )
        backbone.reset_head(
            task.head(backbone.feature_dim), keep_source=not run.weights.is_none, spatial=task.spatial
        )
        return cls(backbone, task, method_config(run.method, run.method_params))

    def prepare(self, data: PrepareData) -> None:
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
        outputs = self.backbone(x)
        return {"loss": self.task.loss(outputs, y), "logits": outputs}

    def set_precision(self, dtype: torch.dtype | None) -> None:
        """The forward-pass autocast dtype ``fit()`` chose (bf16 on GPU, None for fp32)."""
        self.autocast_dtype = dtype

    def autocast(self):
        """Enter the forward-pass precision ``fit()`` chose; backward runs outside it."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(next(self.parameters()).device.type, dtype=self.autocast_dtype)

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

    def inference_model(self) -> nn.Module | None:
        """An ordinary model that computes ``predict`` for deployment (lite Zoo-Tuning collapses its gates), or None
        when ``predict`` itself is what is deployed."""
        return None

    def inference_parameters(self) -> list[nn.Parameter] | None:
        """The parameters a deployed model must hold, where that is more than one input's ``predict`` uses
        (Hub-Pathway: any input may route to any model); None: those ``predict`` uses."""
        return None

    def artifacts(self) -> dict:
        """Provenance for the result's ``extra``: the pre-trained weights' checksum by default."""
        sha = self.backbone.weights_sha256 if isinstance(self.backbone, Backbone) else None
        return {"pretrained_sha256": sha}


def method_config(name: str, params: dict[str, Any]) -> Any:
    """Validate ``params`` against the method's ``Config`` (unknown keys list the valid ones)."""
    cls = METHODS.get(name)
    valid = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(params) - valid)
    if unknown:
        listing = ", ".join(sorted(valid)) or "none"
        close = difflib.get_close_matches(unknown[0], valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"method {name!r} has no parameter(s) {unknown}.{hint} Its parameters: {listing}")
    kwargs = {k: coerce(k, field_type(cls.Config, k), v) for k, v in params.items()}
    return cls.Config(**kwargs)


def supports(method: type[Method], task: str) -> None:
    """ConfigError unless ``method`` handles ``task`` (naming the tasks it does handle)."""
    if task not in method.tasks:
        raise ConfigError(
            f"method {method.name!r} does not support the {task} task (it supports: {', '.join(method.tasks)})"
        )
