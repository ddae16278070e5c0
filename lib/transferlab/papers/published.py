"""The published-numbers registry: ``papers/published/*.csv``, one number per line, each with its source.

Columns: ``paper`` (our paper name, or ``tllib`` for the peer reproduction), ``kind`` (``paper``: the paper's own
number; ``peer``: someone else's reproduction with its own protocol), ``dataset`` and ``method`` (our registry names),
``pretrain`` (``supervised`` = ImageNet ``IMAGENET1K_V1``, ``moco``, ...), ``sample_rate`` (empty when not
applicable), ``value``, ``std``, ``metric``, ``edition`` (which version of a source), ``table``, ``setting``,
``source`` (URL or repository@commit:path — required).

Adding a number is one line in the paper's CSV. A paper cell with no line is reported as **not transcribed**, never
filled in. TLlib's numbers select the best epoch on the *test* split: they are labelled as a peer reproduction.
"""

from __future__ import annotations

import functools
from pathlib import Path

PUBLISHED_DIR = Path(__file__).parent / "published"
COLUMNS = ["paper", "kind", "dataset", "method", "pretrain", "sample_rate", "value", "std", "metric", "edition",
           "table", "setting", "source"]  # fmt: skip
KINDS = ("paper", "peer")
# RunConfig.pretrained → the registry's pretrain label (the same weights under the names sources use)
PRETRAIN_LABEL = {"IMAGENET1K_V1": "supervised", "moco_v2_800ep": "moco", "moco_v1_200ep": "moco_v1"}
PEER_EDITIONS = {
    "TLlib README @c4aa59e": "peer: TLlib (README)",
    "TLlib docs 2021-06-23 @783b566": "peer: TLlib (2021 docs)",
}
NOT_TRANSCRIBED = "not transcribed"


@functools.lru_cache(maxsize=1)
def load_published():
    """Every registered number, validated: known kind, numeric value, a source on every row."""
    import pandas as pd  # imported where used: the runner and its workers never need it

    frames = []
    for path in sorted(PUBLISHED_DIR.glob("*.csv")):
        df = pd.read_csv(path, dtype={"sample_rate": "float64", "value": "float64", "std": "float64"})
        if list(df.columns) != COLUMNS:
            raise ValueError(f"{path}: columns must be {COLUMNS}, found {list(df.columns)}")
        bad = df[~df.kind.isin(KINDS) | df.value.isna() | df.source.isna()]
        if len(bad):
            raise ValueError(
                f"{path}: rows {list(bad.index + 2)} lack a kind in {KINDS}, a value or a source"
            )
        df["file"] = path.name
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def beside(summary, paper: str):
    """Add the paper's number and the peers' numbers (and our deltas) to a paper-protocol summary table.

    ``summary`` has one row per cell with ``dataset``, ``method``, ``sample_rate``, ``pretrained`` and
    ``test_at_best_val_mean``. Never call this for mini-protocol tables: they are not comparable.
    """
    import pandas as pd

    pub = load_published()
    out = summary.copy()
    paper_col, deltas = [], []
    peer_cols: dict[str, list] = {label: [] for label in PEER_EDITIONS.values()}
    for _, row in summary.iterrows():
        match = (pub.dataset == row.get("dataset")) & (pub.method == row.get("method"))
        rate = row.get("sample_rate")
        rate = 1.0 if rate is None or pd.isna(rate) else rate  # a table without rates trains on all the data
        match &= pub.sample_rate.isna() | (pub.sample_rate - rate).abs().lt(1e-9)
        weights = str(row.get("pretrained", "none"))
        if weights != "none" and not weights.startswith(
            "hub:"
        ):  # none/hub: the method, not one model, decides
            match &= pub.pretrain.fillna("") == PRETRAIN_LABEL.get(weights, weights)
        hits = pub[match]
        own = hits[(hits.kind == "paper") & (hits.paper == paper)]
        value = own.value.iloc[0] if len(own) else None
        std = own["std"].iloc[0] if len(own) else None
        shown = (
            f"{value:.2f}" + (f" ± {std:.2f}" if std is not None and pd.notna(std) else "")
            if value is not None
            else ""
        )
        paper_col.append(shown or NOT_TRANSCRIBED)
        ours = row.get("test_at_best_val_mean")
        deltas.append(f"{ours - value:+.2f}" if value is not None and pd.notna(ours) else "—")
        for edition, col in PEER_EDITIONS.items():
            peer = hits[(hits.kind == "peer") & (hits.edition == edition)]
            peer_cols[col].append(peer.value.iloc[0] if len(peer) else None)
    out["paper"] = paper_col
    out["ours − paper"] = deltas
    for col, values in peer_cols.items():
        out[col] = [f"{v:.2f}" if v is not None else "—" for v in values]
        out[f"ours − {col.removeprefix('peer: ')}"] = [
            f"{ours - v:+.2f}" if v is not None and pd.notna(ours) else "—"
            for v, ours in zip(values, summary.get("test_at_best_val_mean", [None] * len(values)))
        ]
    return out


def peer_vs_paper(paper: str, edition: str = "TLlib README @c4aa59e"):
    """Cells where both the paper and a peer reproduction give a number: paper, peer and peer − paper (a different
    protocol shows: TLlib selects its best epoch on the test split)."""
    import pandas as pd

    pub = load_published()
    own = pub[(pub.kind == "paper") & (pub.paper == paper)]
    peer = pub[(pub.kind == "peer") & (pub.edition == edition)]
    keys = ["dataset", "method", "pretrain", "sample_rate"]
    both = own.merge(peer, on=keys, suffixes=("_paper", "_peer"))
    out = both[keys + ["value_paper", "value_peer"]].rename(
        columns={"value_paper": "paper", "value_peer": "peer"}
    )
    out["peer − paper"] = out["peer"] - out["paper"]
    return (
        out.sort_values(keys).reset_index(drop=True)
        if len(out)
        else pd.DataFrame(columns=[*keys, "paper", "peer"])
    )
