"""The published-numbers registry: every row sourced and normalised; lookups, "not transcribed" and deltas."""

from __future__ import annotations

import pandas as pd
import pytest
from transferlab.data import DATASETS
from transferlab.papers import PAPERS
from transferlab.papers.published import NOT_TRANSCRIBED, PUBLISHED_DIR, beside, load_published

# Methods and datasets that published numbers name but the suite does not implement (yet, or at all); every other
# name must be a registry name, so a report can join on it.
FUTURE_METHODS = {"l2sp", "delta", "bss", "lwf", "co_tuning", "stochnorm", "bi_tuning"}
FOREIGN_DATASETS = {"oxford_pets", "conll2003"}


def test_every_row_has_a_kind_a_value_and_a_source():
    df = load_published()
    assert len(df) >= 277
    assert set(df.kind) <= {"paper", "peer"}
    assert df.source.str.len().min() > 10
    assert df.value.between(0, 100).all()
    assert {p.name.removesuffix(".csv") for p in PUBLISHED_DIR.glob("*.csv")} >= set(PAPERS.names()) - {
        "finetune"
    }


def test_names_are_normalised_to_the_registries():
    from transferlab.methods import METHODS

    df = load_published()
    assert set(df.method) <= set(METHODS.names()) | FUTURE_METHODS
    assert set(df.dataset) <= set(DATASETS.names()) | FOREIGN_DATASETS
    assert not df.method.str.contains("ERM|Baseline|Co-tuning").any()


def _summary(**row) -> pd.DataFrame:
    base = {"pretrained": "IMAGENET1K_V1", "test_at_best_val_mean": 60.0}
    return pd.DataFrame([{**base, **row}])


def test_peer_numbers_of_both_tllib_editions_and_a_missing_paper_number():
    out = beside(_summary(dataset="cub200", method="finetune", sample_rate=0.15), "co_tuning").iloc[0]
    assert out["paper"] == NOT_TRANSCRIBED and out["ours − paper"] == "—"
    assert out["peer: TLlib (README)"] == "51.20" and out["ours − TLlib (README)"] == "+8.80"
    assert out["peer: TLlib (2021 docs)"] == "46.70"


def test_the_paper_number_and_its_delta():
    out = beside(
        _summary(dataset="coco70", method="co_tuning", sample_rate=1.0, test_at_best_val_mean=84.0),
        "co_tuning",
    )
    assert out.iloc[0]["paper"] == "85.65" and out.iloc[0]["ours − paper"] == "-1.65"


def test_moco_rows_do_not_match_supervised_ones():
    sup = beside(_summary(dataset="cub200", method="co_tuning", sample_rate=1.0), "co_tuning").iloc[0]
    moco = beside(
        _summary(dataset="cub200", method="co_tuning", sample_rate=1.0, pretrained="moco_v2_800ep"),
        "co_tuning",
    )
    assert sup["peer: TLlib (README)"] != moco.iloc[0]["peer: TLlib (README)"]


def test_a_bad_row_is_refused(tmp_path, monkeypatch):
    import transferlab.papers.published as published

    good = (PUBLISHED_DIR / "l2t_ww.csv").read_text()
    (tmp_path / "x.csv").write_text(
        good.splitlines()[0] + "\nl2t_ww,paper,stanford40,l2t_ww,,,63.08,,top-1,,t,s,\n"
    )
    monkeypatch.setattr(published, "PUBLISHED_DIR", tmp_path)
    published.load_published.cache_clear()
    try:
        with pytest.raises(ValueError, match="source"):
            published.load_published()
    finally:
        published.load_published.cache_clear()


def test_cells_without_rates_match_full_data_and_unlabelled_weights_match_nothing():
    import pandas as pd
    from transferlab.papers import published

    frame = pd.DataFrame(
        {"dataset": ["fgvc_aircraft"] * 2, "method": ["finetune"] * 2,
         "pretrained": ["IMAGENET1K_V1", "maskrcnn_coco_v1"], "test_at_best_val_mean": [80.0, 70.0]}
    )  # fmt: skip
    out = published.beside(frame, "zoo_tuning")
    assert out.loc[0, "peer: TLlib (README)"] == "80.20"  # the 100 % row, not the 15 % one (41.60)
    assert out.loc[1, "peer: TLlib (README)"] == "—"  # no peer fine-tuned a Mask R-CNN backbone
