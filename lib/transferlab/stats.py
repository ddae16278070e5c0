"""Statistics for paired comparisons across seeds: what a claim "method A beats B" may rest on.

For n paired differences d_i = A_i − B_i (the same seed: the same sampled images, the same initial head draw):

- the mean gap and a **t-interval** for it, mean ± t_{n−1, 1−α/2} · s/√n (s: sample std);
- an **exact sign-flip (permutation) p-value**, two-sided: the share of the 2ⁿ sign patterns ±d_i whose mean is at
  least as far from 0 as the observed one. It makes no normality assumption, and it cannot go below 2/2ⁿ
  (0.25 with 3 pairs, 0.0625 with 5, 0.002 with 10): plan seeds for the claim you want to make;
- a **percentile bootstrap** interval only when n ≥ 10 (with fewer, its interval is about [min, max] of the
  differences and overstates certainty: [1.2, 0.4, 0.9] gives [0.40, 1.20] where the t-interval is [−0.17, 1.84]);
- ``significant`` only when the t-interval excludes 0 (None with fewer than 2 pairs: no claim at all).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats as sps

BOOTSTRAP_MIN_N = 10
EXACT_MAX_N = 20  # 2^20 sign patterns; above that the p-value is a 200,000-draw Monte Carlo estimate


def sign_flip_p(diff: np.ndarray, seed: int = 0) -> float:
    """Two-sided p-value of the exact sign-flip test of mean(diff) = 0 (Monte Carlo above EXACT_MAX_N pairs)."""
    d = np.asarray(diff, dtype=np.float64)
    n = len(d)
    if n == 0:
        return float("nan")
    observed = abs(d.mean())
    if n <= EXACT_MAX_N:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(200_000, n))
    means = np.abs(signs @ d) / n
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))


def t_interval(diff: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    d = np.asarray(diff, dtype=np.float64)
    n = len(d)
    if n < 2:
        return float("nan"), float("nan")
    half = sps.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def bootstrap_interval(diff: np.ndarray, level: float = 0.95, n_boot: int = 10_000, seed: int = 0):
    """Percentile bootstrap of the mean, or (nan, nan) below BOOTSTRAP_MIN_N pairs."""
    d = np.asarray(diff, dtype=np.float64)
    if len(d) < BOOTSTRAP_MIN_N:
        return float("nan"), float("nan")
    boots = np.random.default_rng(seed).choice(d, size=(n_boot, len(d))).mean(1)
    lo, hi = np.percentile(boots, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def paired(diff, level: float = 0.95) -> dict:
    """Everything the reports say about paired differences ``diff`` (see the module doc)."""
    d = np.asarray(diff, dtype=np.float64)
    lo, hi = t_interval(d, level)
    blo, bhi = bootstrap_interval(d, level)
    n = len(d)
    return {
        "n_pairs": n,
        "mean_gap": float(d.mean()) if n else float("nan"),
        "t_low": lo,
        "t_high": hi,
        "sign_flip_p": sign_flip_p(d),
        "min_possible_p": 2.0 / 2**n if n else float("nan"),
        "boot_low": blo,
        "boot_high": bhi,
        "significant": None if n < 2 else bool(lo > 0 or hi < 0),
    }


# ------------------------------------------------------------------------------------------------ RL aggregates
def iqm(scores) -> float:
    """Interquartile mean: the mean of the middle 50 % of the scores (25 % trimmed from each end; with n not a
    multiple of 4, scipy's ``trim_mean`` drops ⌊0.25 n⌋ from each end). Agarwal et al. 2021, "Deep RL at the edge of
    the statistical precipice" (https://arxiv.org/abs/2108.13264): robust to outlying runs, less noisy than the
    median. Of one score: that score."""
    x = np.asarray(scores, dtype=np.float64).ravel()
    return float(sps.trim_mean(x, 0.25)) if len(x) else float("nan")


def stratified_bootstrap_iqm(
    runs_by_task: dict, level: float = 0.95, reps: int = 2000, seed: int = 0
) -> dict:
    """IQM over all tasks' runs with a percentile interval from the **stratified** bootstrap (Agarwal et al. 2021):
    each replicate resamples the runs of every task (game) with replacement, separately, so each task keeps its
    number of runs. ``runs_by_task``: task → scores of its runs (normalise them across tasks before calling). Our
    implementation of what ``rliable`` 1.2.0 computes (its dependency ``arch`` 7.2 fails to import under pandas 3.1,
    the suite's pinned version). With one run per task the interval is that run's score: no uncertainty is shown
    where none is measured — the reports say how many seeds there are."""
    tasks = [np.asarray(v, dtype=np.float64).ravel() for v in runs_by_task.values()]
    tasks = [t for t in tasks if len(t)]
    if not tasks:
        return {"iqm": float("nan"), "low": float("nan"), "high": float("nan"), "runs": 0}
    point = iqm(np.concatenate(tasks))
    rng = np.random.default_rng(seed)
    boots = [iqm(np.concatenate([t[rng.integers(0, len(t), len(t))] for t in tasks])) for _ in range(reps)]
    lo, hi = np.percentile(boots, [50 * (1 - level), 50 * (1 + level)])
    return {"iqm": point, "low": float(lo), "high": float(hi), "runs": int(sum(len(t) for t in tasks))}


__all__ = [
    "BOOTSTRAP_MIN_N",
    "bootstrap_interval",
    "iqm",
    "paired",
    "sign_flip_p",
    "stratified_bootstrap_iqm",
    "t_interval",
]
