"""Learning-rate schedules as pure functions of the step.

``lr_factor(cfg, step)`` is the multiplier applied to every parameter group's base lr *for* optimisation step
``step`` (0-based). A pure function means a resumed run gets exactly the lr an uninterrupted run would have, with no
scheduler state to save, and a test can check the whole curve in closed form.

- ``multistep``: ``gamma ** (number of milestones <= step)``: the papers' per-iteration MultiStepLR (Co-Tuning: ×0.1
  at 6,000 of 9,050; Zoo-Tuning: at 6,000/12,000/18,000), stepped after each iteration as the official code does.
- ``cosine``: ``0.5 * (1 + cos(pi * t / T))`` over the steps after warm-up (L2T-ww uses cosine annealing).
- ``linear``: ``(T − step) / (T − warmup)`` after warm-up, down to 0 at the last step: HuggingFace's
  ``get_linear_schedule_with_warmup``, stepped after each update, which the official Co-Tuning NER script uses.
- ``constant``: 1.
A linear warm-up over ``warmup_steps`` multiplies any of them (``(step + 1) / warmup_steps``).
"""

from __future__ import annotations

import bisect
import math

from transferlab.config import OptimConfig


def lr_factor(cfg: OptimConfig, step: int) -> float:
    if step < 0:
        raise ValueError("step must be >= 0")
    if cfg.schedule == "constant":
        factor = 1.0
    elif cfg.schedule == "multistep":
        factor = cfg.gamma ** bisect.bisect_right(cfg.milestones, step)
    elif cfg.schedule == "cosine":
        span = max(cfg.iterations - cfg.warmup_steps, 1)
        t = min(max(step - cfg.warmup_steps, 0), span)
        factor = 0.5 * (1.0 + math.cos(math.pi * t / span))
    elif cfg.schedule == "linear":
        span = max(cfg.iterations - cfg.warmup_steps, 1)
        factor = max(0.0, (cfg.iterations - max(step, cfg.warmup_steps)) / span)
    else:  # OptimConfig validates the name; this guards new schedules added without a branch
        raise ValueError(f"no lr rule for schedule {cfg.schedule!r}")
    if cfg.warmup_steps and step < cfg.warmup_steps:
        factor *= (step + 1) / cfg.warmup_steps
    return factor
