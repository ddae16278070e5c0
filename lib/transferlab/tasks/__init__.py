"""Tasks (classification, landmarks; token classification and RL returns as they are added), registered in ``TASKS``."""

from transferlab.tasks.base import TASKS, Metric, Task

from transferlab.tasks import classification  # noqa: E402,F401  isort: skip
from transferlab.tasks import landmarks  # noqa: E402,F401  isort: skip
from transferlab.tasks import token_classification  # noqa: E402,F401  isort: skip
from transferlab.tasks import rl  # noqa: E402,F401  isort: skip


def task_of(source) -> Task:
    """The task a :class:`transferlab.data.DatasetSource` declares, built for it."""
    return TASKS.get(source.task).from_source(source)


__all__ = ["TASKS", "Metric", "Task", "task_of"]
