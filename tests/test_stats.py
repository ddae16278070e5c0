"""Paired statistics: what a "method A beats B" claim may rest on (``transferlab.stats``, ``reports.paired_gap``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from transferlab import reports, stats
from transferlab.results import method_variants

THREE = [1.2, 0.4, 0.9]  # the example: a percentile bootstrap over 3 pairs called this "significant"


def test_three_positive_pairs_are_not_significant():
    lo, hi = stats.t_interval(THREE)
    assert (round(lo, 2), round(hi, 2)) == (-0.17, 1.84)  # mean 0.833, s 0.404, t(2) 4.303
    assert (
        stats.sign_flip_p(THREE) == 0.25
    )  # 2 of the 8 sign patterns are as extreme: the smallest 3 pairs allow
    out = stats.paired(THREE)
    assert out["significant"] is False and out["min_possible_p"] == 0.25
    assert np.isnan(out["boot_low"]) and np.isnan(out["boot_high"])  # no bootstrap below 10 pairs


def test_sign_flip_p_is_exact_and_bounded_by_the_number_of_pairs():
    assert stats.sign_flip_p([1.0] * 5) == 0.0625  # all five positive: 2 / 2^5, the smallest possible
    assert stats.sign_flip_p([1.0, -1.0]) == 1.0
    # by hand: d = (3, −1, 2, 1), |Σ d| = 5; of the 16 sign patterns of the magnitudes (3, 1, 2, 1), the sums at
    # least 5 away from 0 are 3+1+2+1 = 7, 3−1+2+1 = 5, 3+1+2−1 = 5 and their negations: 6 / 16
    assert stats.sign_flip_p([3.0, -1.0, 2.0, 1.0]) == 0.375


def test_bootstrap_only_from_ten_pairs():
    d = np.linspace(0.5, 1.5, 10)
    lo, hi = stats.bootstrap_interval(d)
    assert 0.5 < lo < 1.0 < hi < 1.5
    assert np.isnan(stats.bootstrap_interval(d[:9])[0])


def test_one_pair_makes_no_claim():
    out = stats.paired([2.0])
    assert out["significant"] is None and np.isnan(out["t_low"])


def _pairs(gaps) -> pd.DataFrame:
    rows = []
    for seed, g in enumerate(gaps):
        for method, value in (("a", 70.0 + g), ("b", 70.0)):
            rows.append({"table": "t", "protocol": "mini", "dataset": "d", "method": method, "pretrained": "p",
                         "sample_rate": 0.15, "shots": 0, "seed": seed, "method_params": "{}",
                         "test_at_best_val": value, "test_last": value, "best_val": value})  # fmt: skip
    df = pd.DataFrame(rows)
    df["variant"] = method_variants(df)
    return df


def test_paired_gap_is_method_minus_baseline_and_calls_three_pairs_unresolved():
    gap = reports.paired_gap(_pairs(THREE), "a", "b").iloc[0]
    assert gap["mean_gap"] == pytest.approx(0.8333, abs=1e-4) and not gap["significant"]
    shown = reports.gap_table(reports.paired_gap(_pairs(THREE), "a", "b")).iloc[0]
    assert shown["verdict"] == "not resolved" and shown["mean gap"] == "+0.83"
    worse = reports.gap_table(reports.paired_gap(_pairs([-1.0, -1.2, -0.9, -1.1, -1.0]), "a", "b")).iloc[0]
    assert worse["verdict"] == "worse" and worse["mean gap"] == "-1.04"
