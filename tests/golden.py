"""Access to the golden outputs of the authors' official code (``../shared/anchors``, see its README).

Golden tests call :func:`anchor`; it skips the test cleanly where the folder is absent (a user's machine). Set
``TRANSFERLAB_ANCHORS`` to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ANCHORS = Path(
    os.environ.get("TRANSFERLAB_ANCHORS", Path(__file__).resolve().parents[2] / "shared" / "anchors")
)


def anchor_path(filename: str) -> Path:
    """The path of an anchors file (any extension); skips the calling test if it is absent."""
    path = ANCHORS / filename
    if not path.exists():
        pytest.skip(f"golden outputs not available ({path}); set TRANSFERLAB_ANCHORS")
    return path


def anchor(name: str) -> dict[str, np.ndarray]:
    """All arrays of ``<name>.npz`` (loaded without pickle); skips the calling test if it is absent."""
    with np.load(anchor_path(f"{name}.npz"), allow_pickle=False) as d:
        return {k: d[k] for k in d.files}
