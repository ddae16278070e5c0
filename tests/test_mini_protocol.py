"""The mini protocol is meaningful: fine-tuning a mini-hub model clearly beats training from scratch.

Runs the two cells of the ``finetune`` paper's mini table at the lowest sampling rate (5 %: 10
training images per class, the fixed 100-per-class validation set) at seed 0, exactly as ``make demo`` does, with the real mini hub ancestor ``clusters``
(pre-trained here into the test session's private cache, ~15-60 s). The README states the margin measured over 3 seeds.
"""

from __future__ import annotations

import pytest
import transferlab as tl
from transferlab.papers import PAPERS

MIN_MARGIN = 5.0  # percentage points of test accuracy; measured: +8 to +15 points over 3 seeds (README)


@pytest.mark.slow
def test_finetuning_a_mini_hub_model_beats_scratch_at_a_low_sampling_rate(tmp_path):
    cells = PAPERS.get("finetune").table("sampling", "mini").cells(seeds=[0], paper="finetune")
    low = [c.config() for c in cells if c.params["sample_rate"] == 0.05]
    by_method = {cfg.method: tl.run(cfg, out_dir=tmp_path / cfg.method) for cfg in low}
    finetune, scratch = by_method["finetune"].metrics, by_method["scratch"].metrics
    gap = finetune["test_at_best_val"] - scratch["test_at_best_val"]
    assert gap >= MIN_MARGIN, (
        f"fine-tune {finetune['test_at_best_val']:.2f} vs scratch {scratch['test_at_best_val']:.2f}"
    )
    assert finetune["test_last"] - scratch["test_last"] >= MIN_MARGIN
