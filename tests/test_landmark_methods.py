"""Every method that declares the landmark task runs through it: built on a tiny landmark set (and the tiny hub), one
finite step, heat maps out, exact state round trip; a tiny end-to-end run selects the lowest validation NME and
resumes exactly; reports pick the best single model and judge gaps by the metric's direction (lower NME wins)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_ZOO
from resume import assert_resumes_exactly
from transferlab import api, reports, reports_landmarks
from transferlab.config import ConfigError
from transferlab.methods import METHODS
from transferlab.train import make_optimizer

LANDMARK_METHODS = [m for m in METHODS.names() if "landmarks" in METHODS.get(m).tasks]
TINY_LANDMARKS = "test_tiny_landmarks"
TINY_PARAMS = {"input_size": [28, 28], "normaliser": "bbox_diagonal", "sigma": 1.0, "deconv_layers": 2,
               "deconv_channels": 8}  # fmt: skip


def rectangles(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bright rectangles on dark noise and their corners (top-left, top-right, bottom-left, bottom-right)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, (n, 1, 28, 28), dtype=np.uint8)
    points = np.zeros((n, 4, 2), dtype=np.float32)
    for i in range(n):
        x0, y0 = rng.integers(2, 12, 2)
        x1, y1 = x0 + rng.integers(6, 14), y0 + rng.integers(6, 14)
        images[i, 0, y0 : y1 + 1, x0 : x1 + 1] = 220
        points[i] = [[x0, y0], [x1, y0], [x0, y1], [x1, y1]]
    return torch.from_numpy(images), torch.from_numpy(points)


def _build(root, head: str = "heatmap"):
    from transferlab.data import DatasetSource
    from transferlab.data.keypoints import TensorLandmarks

    flip = [1, 0, 3, 2]  # left ↔ right corners
    train, test = (TensorLandmarks(*rectangles(n, s), flip) for n, s in ((120, 1), (40, 2)))
    return DatasetSource(TINY_LANDMARKS if head == "heatmap" else f"{TINY_LANDMARKS}_regression",
                         ["tl", "tr", "bl", "br"], train.part(), test.part(), preset="mini", task="landmarks",
                         task_params={**TINY_PARAMS, "head": head})  # fmt: skip


@pytest.fixture(scope="session")
def tiny_landmarks() -> str:
    from transferlab.data import DATASETS, register_dataset

    if TINY_LANDMARKS not in DATASETS:
        register_dataset(TINY_LANDMARKS, task="landmarks")(_build)
        register_dataset(f"{TINY_LANDMARKS}_regression", task="landmarks")(lambda r: _build(r, "regression"))
    return TINY_LANDMARKS


def _config(method: str, tiny_config, tiny_hub, dataset: str, **extra):
    weights = METHODS.get(method).weights
    pretrained = {"hub": f"hub:{TINY_ZOO}", "forbidden": "none"}.get(weights, f"mini:{tiny_hub}")
    return tiny_config(method=method, pretrained=pretrained, dataset=dataset, optimizer="adam", lr=1e-3,
                       iterations=2, eval_every=2, **extra)  # fmt: skip


def test_the_vision_hub_methods_and_finetuning_declare_landmarks():
    assert {"finetune", "scratch", "ensemble", "zoo_tuning", "zoo_tuning_lite", "hub_pathway"} <= set(
        LANDMARK_METHODS
    )


@pytest.mark.parametrize("method", LANDMARK_METHODS)
def test_the_landmark_contract(method, tiny_config, tiny_hub, tiny_zoo, tiny_landmarks, tmp_path):
    cfg = _config(method, tiny_config, tiny_hub, tiny_landmarks)
    torch.manual_seed(0)
    first, data = api.prepared_method(cfg, root=tmp_path)
    assert first.task.name == "landmarks" and first.task.outputs == 4
    x, y = next(iter(data.train()))
    assert y.shape == (len(x), 4, 2) and y.dtype == torch.float32
    first.train()
    out = first.train_step(x[:8], y[:8], make_optimizer(first, cfg))
    assert torch.isfinite(out["loss"]) and out["logits"].shape == (8, 4, 16, 16)
    first.eval()
    with torch.no_grad():
        maps = first.predict(x[:8])
    assert maps.shape == (8, 4, 16, 16) and first.task.decode(maps).shape == (8, 4, 2)
    torch.manual_seed(1)
    second, _ = api.prepared_method(cfg, root=tmp_path)
    second.load_state_dict(first.state_dict())
    second.eval()
    with torch.no_grad():
        assert torch.equal(second.predict(x[:8]), maps)
    result = first.task.evaluate(first.predict, [(x[:8], y[:8])])
    assert result["n"] == 8 and np.isfinite(result["value"]) and 0 <= result["extras"]["auc_10"] <= 1


def test_a_classification_only_method_refuses_landmarks(tiny_config, tiny_hub, tiny_zoo, tiny_landmarks):
    with pytest.raises(ConfigError, match="does not support the landmarks task"):
        tiny_config(method="feature_concat", pretrained=f"hub:{TINY_ZOO}", dataset=tiny_landmarks)


def test_regression_head_through_finetuning(tiny_config, tiny_hub, tiny_landmarks, tmp_path):
    cfg = _config("finetune", tiny_config, tiny_hub, f"{tiny_landmarks}_regression")
    method, data = api.prepared_method(cfg, root=tmp_path)
    x, y = next(iter(data.train()))
    assert not method.backbone.spatial_head and method.predict(x[:4]).shape == (4, 8)


def test_landmark_run_selects_the_lowest_validation_nme_and_resumes_exactly(tiny_config, tiny_zoo,
                                                                              tiny_landmarks, tmp_path):  # fmt: skip
    import transferlab as tl

    cfg = tiny_config(method="hub_pathway", pretrained=f"hub:{TINY_ZOO}", dataset=tiny_landmarks,
                      optimizer="adam", lr=3e-3, iterations=12, eval_every=3)  # fmt: skip
    reference = tl.run(cfg, tmp_path / "reference")
    m = reference.metrics
    assert m["metric"] == "nme" and m["direction"] == "min" and m["task"] == "landmarks"
    vals = [h["val_nme"] for h in reference.history]
    assert m["best_val"] == min(vals) and m["best_step"] == reference.history[vals.index(min(vals))]["step"]
    assert {"fr_10_at_best_val", "auc_10_at_best_val", "examples_at_best_val", "fr_10_last"} <= set(m)
    assert len(m["examples_at_best_val"]) == 8 and len(m["examples_at_best_val"][0]) == 4
    assert "routing" in reference.extra["test_statistics"]
    run = pd.DataFrame([{"run_dir": str(tmp_path / "reference"), "method": "hub_pathway", "variant": "hub_pathway",
                         "pretrained": f"hub:{TINY_ZOO}"}])  # fmt: skip
    images, truth = reports_landmarks.test_images(run.run_dir[0], 3)
    assert (
        images.shape == (3, 28, 28, 1)
        and images.min() >= 0
        and images.max() <= 1
        and truth.shape == (3, 4, 2)
    )
    fig = reports_landmarks.plot_predictions(run, count=3)
    assert len([ax for ax in fig.axes if ax.images]) == 3
    assert_resumes_exactly(cfg, tmp_path / "resumed", reference, stop_at=5)


def _runs(values: dict[str, list[float]], best_val: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for (method, pretrained), tests in values.items():
        for seed, (t, v) in enumerate(zip(tests, best_val[(method, pretrained)])):
            rows.append({"table": "landmarks", "protocol": "mini", "dataset": "d", "sample_rate": 0.05, "shots": 0,
                         "seed": seed, "method": method, "variant": method, "pretrained": pretrained,
                         "test_at_best_val": t, "test_last": t, "best_val": v, "metric": "nme",
                         "metric_label": "NME (%)", "direction": "min", "cost_train_time_s": 1.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_best_single_picks_the_lowest_validation_nme_and_gaps_favour_lower_nme():
    df = _runs(
        {("finetune", "mini:a"): [5.0, 5.0, 5.0], ("finetune", "mini:b"): [6.0, 6.0, 6.0],
         ("zoo_tuning", "hub:mini"): [4.0, 4.2, 3.9]},
        {("finetune", "mini:a"): [3.0, 3.1, 2.9], ("finetune", "mini:b"): [4.0, 2.0, 4.0],
         ("zoo_tuning", "hub:mini"): [2.0, 2.0, 2.0]},
    )  # fmt: skip
    best = reports.with_best_single(df)
    chosen = best[best.method == reports.BEST_SINGLE].sort_values("seed")
    assert chosen.chosen.tolist() == ["mini:a", "mini:b", "mini:a"]  # the lowest validation NME per seed
    assert chosen.test_at_best_val.tolist() == [5.0, 6.0, 5.0]
    gap = reports.paired_gap(best, "zoo_tuning", reports.BEST_SINGLE)
    assert gap.mean_gap.iloc[0] < 0 and bool(gap.better.iloc[0])  # lower NME: better
    shown = reports.display_table(reports.summarize(best), "mini")
    assert any("lower is better" in c for c in shown.columns)
