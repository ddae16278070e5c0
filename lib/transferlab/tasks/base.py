"""The task abstraction: what a kind of problem needs from the one training loop and from the reports.

A :class:`Task` owns, for one dataset:

- the **head** a method puts on a backbone's representation (``head(in_features)``; ``spatial`` says whether the
  head reads the last feature map [B, C, h, w] — heat-map landmarks — or the pooled feature [B, D]);
- the **loss** of the head's outputs against the targets (a scalar, mean over the batch);
- the **evaluation** of a predictor over batches, returning the task's metric, the mean loss, the sample count
  and any extras (per-class accuracy, failure rate, …);
- the **metric** with a name, a label and a direction (:class:`Metric`): accuracy ↑, NME ↓, entity F1 ↑, return ↑.
  ``fit()`` keeps the best-validation step by it, results record it, and reports and paired gaps read it instead
  of assuming accuracy;
- ``combine()``: how an ensemble of heads' outputs becomes one prediction (classification: the log of the mean
  probabilities; regression tasks: the mean).

A dataset names its task (``DatasetSource.task``, with ``task_params``); ``Task.from_source`` builds it. Methods
declare which tasks they support (``Method.tasks``) and receive the task at build time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from transferlab.data.splits import make_splits
from transferlab.registry import Registry

DIRECTIONS = ("max", "min")


@dataclass(frozen=True)
class Metric:
    name: str  # the key in results and histories: "top1" → val_top1, test_at_best_val is its value
    label: str  # what a table column says: "accuracy (%)"
    direction: str  # "max" (higher is better) or "min"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction={self.direction!r}; choose one of {DIRECTIONS}")

    @property
    def sign(self) -> int:
        """+1 if higher is better, −1 if lower is: ``sign · (a − b) > 0`` means a is better than b."""
        return 1 if self.direction == "max" else -1

    @property
    def worst(self) -> float:
        return float("-inf") if self.direction == "max" else float("inf")

    def better(self, a: float, b: float) -> bool:
        """Strictly better (ties keep the earlier value, so the earlier step wins a tie in model selection)."""
        return self.sign * (a - b) > 0

    def describe(self) -> dict:
        return {"metric": self.name, "metric_label": self.label, "direction": self.direction}


Predict = Callable[[Any], torch.Tensor]


class Task:
    """Base class; subclasses set ``name``, ``metric`` and implement head / loss / evaluate."""

    name: ClassVar[str] = "base"
    metric: ClassVar[Metric]
    spatial: ClassVar[bool] = False  # the head reads the last feature map instead of the pooled feature

    def __init__(self, outputs: int, labels: list[str] | None = None, **params: Any):
        self.outputs = outputs  # classes / landmarks / token labels
        self.labels = list(labels) if labels is not None else [str(i) for i in range(outputs)]
        self.params = dict(params)

    @classmethod
    def from_source(cls, source: Any) -> Task:
        """The task of a :class:`transferlab.data.DatasetSource` (its ``task_params`` passed on)."""
        return cls(len(source.classes), source.classes, **source.task_params)

    def split(self, source: Any, data: Any, seed: int) -> Any:
        """The run's :class:`~transferlab.data.SplitIndices` for a ``DataConfig`` (``data``): per-class sampling of
        the training part and a validation set carved from it (token tasks keep the official dev set instead)."""
        return make_splits(source.train.targets, len(source.test), data, seed)

    def head(self, in_features: int) -> nn.Module:
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def combine(self, outputs: list[torch.Tensor], how: str = "mean") -> torch.Tensor:
        """One prediction from several heads' outputs of equal shape (the mean by default)."""
        return torch.stack([o.float() for o in outputs]).mean(0)

    def evaluate(
        self, predict: Predict, batches: Iterable[tuple[Any, torch.Tensor]], amp: torch.dtype | None = None
    ) -> dict:
        """``{"value": metric, "loss": mean loss, "n": samples, "extras": {...}}`` of ``predict`` over ``batches``."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"task": self.name, **self.metric.describe()}


TASKS: Registry[type[Task]] = Registry("task")

__all__ = ["DIRECTIONS", "TASKS", "Metric", "Task"]
