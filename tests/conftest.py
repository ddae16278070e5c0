"""Session-wide test setup: a private cache and results directory, one CPU thread, and tiny stand-ins.

The environment is set here, at import time, because pytest imports this file before any test module, and
``transferlab.results.RESULTS_DIR`` is read when ``transferlab`` is first imported. Nothing a test does may touch
the user's ``~/.cache/transferlab`` or ``./results``.

Fixtures:
- ``tiny_dataset``: a registered in-memory dataset (``test_tiny``: 4 classes of 28×28 grey images with a learnable
  pattern) so that ``fit()`` tests take a fraction of a second instead of loading Fashion-MNIST;
- ``tiny_hub``: a registered mini-hub model (``test_tiny_digits``: 10 steps on ``mini_hub_digits``) so that tests
  needing a pre-trained ``mini:`` backbone never pre-train the real hub (~2 min);
- ``tiny_zoo``: a two-model hub ``test_tiny`` of tiny mini-hub models (Zoo-Tuning, the hub baselines);
- ``tiny_config``: a factory of small, valid ``RunConfig`` objects on ``test_tiny``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="transferlab-tests-"))
os.environ["TRANSFERLAB_CACHE"] = str(_SESSION_DIR / "cache")
os.environ["TRANSFERLAB_RESULTS"] = str(_SESSION_DIR / "results")
os.environ["TRANSFERLAB_THREADS"] = "1"
os.environ["TRANSFERLAB_PROGRESS"] = "text"
os.environ.pop("TRANSFERLAB_WEIGHTS_DIR", None)  # weights tests set their own directory

TINY_DATASET = "test_tiny"
TINY_CLASSES = 4
TINY_TRAIN_PER_CLASS = 60
TINY_TEST_PER_CLASS = 20
TINY_HUB = "test_tiny_digits"


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    """The session's private directory (holds the ``TRANSFERLAB_CACHE`` and ``TRANSFERLAB_RESULTS`` folders)."""
    return _SESSION_DIR


def tiny_images(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, 1, 28, 28] noise with a bright horizontal band whose row depends on the class, and the labels.

    Horizontal bands survive the ``mini`` preset's augmentation (±2-pixel shifts, horizontal flips), so the task is
    learnable in a few dozen steps.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(TINY_CLASSES), per_class)
    images = rng.integers(0, 60, size=(len(labels), 1, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        top = 3 + 6 * c
        images[i, 0, top : top + 4, 2:26] = rng.integers(200, 256, size=(4, 24), dtype=np.uint8)
    order = rng.permutation(len(labels))
    return images[order], labels[order]


def _build_tiny(root: Path):
    import torch
    from transferlab.data import DatasetSource, TensorImages

    x_tr, y_tr = tiny_images(TINY_TRAIN_PER_CLASS, seed=1)
    x_te, y_te = tiny_images(TINY_TEST_PER_CLASS, seed=2)
    train = TensorImages(torch.from_numpy(x_tr), y_tr)
    test = TensorImages(torch.from_numpy(x_te), y_te)
    classes = [f"band{c}" for c in range(TINY_CLASSES)]
    return DatasetSource(
        TINY_DATASET, classes, train.part(), test.part(), preset="mini", info={"source": "tests"}
    )


@pytest.fixture(scope="session")
def tiny_dataset() -> str:
    """Register the ``test_tiny`` dataset once per session; returns its name."""
    from transferlab.data import DATASETS

    if TINY_DATASET not in DATASETS:
        DATASETS.register(TINY_DATASET)(_build_tiny)
    return TINY_DATASET


@pytest.fixture(scope="session")
def tiny_hub() -> str:
    """Register and pre-train a tiny mini-hub model (10 steps on ``mini_hub_digits``); returns its name (use
    ``mini:<name>``)."""
    from transferlab.models.mini_hub import MINI_HUB, HubModel

    if TINY_HUB not in MINI_HUB:
        model = HubModel(
            TINY_HUB,
            "test stand-in: 10 steps on the digits hub pool",
            "mini_hub_digits",
            "supervised",
            "scikit-learn digits",
            iterations=10,
            batch_size=32,
        )
        MINI_HUB.register(TINY_HUB)(model)
    from transferlab.hubbuild import ensure

    ensure(TINY_HUB, verbose=False)  # pre-trained once per session (seconds); runs load it
    return TINY_HUB


TINY_HUB_B = "test_tiny_digits_b"  # a second tiny model, so the experts of a tiny hub differ
TINY_ZOO = "test_tiny"


@pytest.fixture
def tiny_zoo(tiny_hub, monkeypatch) -> str:
    """A two-model hub ``test_tiny`` of tiny mini-hub models (both pre-trained up front, seconds), registered for
    this test only; returns its name (use ``hub:<name>``)."""
    from transferlab.models.hub import HUBS, mini_hub_of
    from transferlab.models.mini_hub import MINI_HUB, HubModel

    if TINY_HUB_B not in MINI_HUB:
        MINI_HUB.register(TINY_HUB_B)(
            HubModel(TINY_HUB_B, "test stand-in: 8 steps at lr 0.05", "mini_hub_digits", "supervised",
                     "scikit-learn digits", iterations=8, batch_size=32, lr=0.05)
        )  # fmt: skip
    from transferlab.hubbuild import ensure_all

    hub = mini_hub_of([tiny_hub, TINY_HUB_B], name=TINY_ZOO)
    ensure_all([tiny_hub, TINY_HUB_B], jobs=1, out=lambda *_: None)
    monkeypatch.setitem(HUBS._items, TINY_ZOO, hub)
    return TINY_ZOO


@pytest.fixture(scope="session")
def built_hub(tiny_hub) -> str:
    """The tiny mini-hub model, pre-trained (seconds); returns its name."""
    from transferlab.hubbuild import ensure

    ensure(tiny_hub, verbose=False)
    return tiny_hub


def build_method(cfg):
    """``cfg``'s method built as ``experiment.prepared_method`` builds it (checked config, the dataset's task), without
    loading data or preparing; returns (method, checked config)."""
    from transferlab.data import DATASETS
    from transferlab.experiment import check
    from transferlab.methods import METHODS
    from transferlab.tasks import task_of

    cfg = check(cfg)
    source = DATASETS.get(cfg.data.dataset)(Path(cfg.data.data_root))
    return METHODS.get(cfg.method).build(cfg, task_of(source)), cfg


@pytest.fixture(scope="session")
def tiny_config(tiny_dataset):
    """Factory: a small valid ``RunConfig`` on ``test_tiny`` (scratch, mini_resnet, CPU), with flat overrides."""
    from transferlab.config import RunConfig
    from transferlab.experiment import check

    def make(**overrides):
        flat = {
            "paper": "tests",
            "table": "tiny",
            "method": "scratch",
            "backbone": "mini_resnet",
            "pretrained": "none",
            "device": "cpu",
            "dataset": tiny_dataset,
            "val_fraction": 0.2,
            "batch_size": 16,
            "eval_batch_size": 128,
            "optimizer": "sgd",
            "lr": 0.05,
            "schedule": "constant",
            "iterations": 12,
            "eval_every": 4,
        }
        flat.update(overrides)
        return check(RunConfig.from_flat(flat))

    return make
