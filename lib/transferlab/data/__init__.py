"""Datasets (real loaders and the embedded mini sets), splits and transform presets."""

from transferlab.data.base import (
    DATASET_TASKS,
    DATASETS,
    DatasetCorruptError,
    DatasetNotFoundError,
    DatasetSource,
    Part,
    TensorImages,
    register_dataset,
    require,
    task_name,
)
from transferlab.data.splits import SplitIndices, make_splits
from transferlab.data.transforms import TRANSFORMS, Preset

# Importing the modules registers their builders.
from transferlab.data import mini  # noqa: E402,F401  isort: skip
from transferlab.data import mini_hub_data  # noqa: E402,F401  isort: skip
from transferlab.data import real  # noqa: E402,F401  isort: skip
from transferlab.data import folders  # noqa: E402,F401  isort: skip
from transferlab.data import mini_keypoints  # noqa: E402,F401  isort: skip
from transferlab.data import faces  # noqa: E402,F401  isort: skip
from transferlab.data import text  # noqa: E402,F401  isort: skip
from transferlab.data import mini_ner  # noqa: E402,F401  isort: skip
from transferlab.data import atari  # noqa: E402,F401  isort: skip


def load(name: str, root) -> DatasetSource:
    """Build the registered dataset ``name`` from ``root`` (a clear error names the layout if it is missing)."""
    from pathlib import Path

    return DATASETS.get(name)(Path(root))


__all__ = [
    "DATASETS",
    "DATASET_TASKS",
    "register_dataset",
    "task_name",
    "TRANSFORMS",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "DatasetSource",
    "Part",
    "Preset",
    "SplitIndices",
    "TensorImages",
    "load",
    "make_splits",
    "require",
]
