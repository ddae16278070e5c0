"""Shared check: a run interrupted after its first checkpoint resumes to exactly the uninterrupted numbers."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest


class Interrupted(Exception):
    pass


def assert_resumes_exactly(cfg, out_dir: Path, reference, stop_at: int = 6, root: Path | None = None) -> None:
    """Run ``cfg`` in ``out_dir``, killed (an exception) at step ``stop_at``, then again; the second run must resume
    from the checkpoint and give ``reference``'s metrics and history exactly."""
    import transferlab as tl
    from transferlab import experiment
    from transferlab import train as train_mod

    def interrupt(step: int, _out: dict) -> None:
        if step == stop_at:
            raise Interrupted

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(experiment, "fit", functools.partial(train_mod.fit, on_step=interrupt))
        with pytest.raises(Interrupted):
            tl.run(cfg, out_dir, **({"root": root} if root else {}))
    resumed = tl.run(cfg, out_dir, **({"root": root} if root else {}))
    assert resumed.metrics == reference.metrics and resumed.history == reference.history
