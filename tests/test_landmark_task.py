"""The landmark task: NME with its normalisers, FR and AUC on hand-made cases with known answers; heat-map targets and
decoding; the heads' shapes; combine; evaluate end to end with exact predictors."""

from __future__ import annotations

import math

import pytest
import torch
from transferlab.errors import ConfigError
from transferlab.tasks import TASKS
from transferlab.tasks import landmark_metrics as lm


def task(**params):
    return TASKS.get("landmarks")(4, None, **{"input_size": [28, 28], **params})


SQUARE = torch.tensor([[[0.0, 0.0], [30.0, 0.0], [0.0, 40.0], [30.0, 40.0]]])  # a 30 × 40 box: diagonal 50


def test_nme_known_answers_with_each_normaliser():
    moved = SQUARE + torch.tensor([3.0, 4.0])  # every point 5 pixels off
    assert lm.nme(moved, SQUARE, "bbox_diagonal").item() == pytest.approx(5 / 50)
    assert lm.nme(moved, SQUARE, (0, 1)).item() == pytest.approx(5 / 30)  # "inter-ocular": points 0 and 1
    assert lm.nme(moved, SQUARE, (0, 3)).item() == pytest.approx(5 / 50)
    one_off = SQUARE.clone()
    one_off[0, 2] += torch.tensor([6.0, 8.0])  # one of four points 10 pixels off: mean error 2.5
    assert lm.nme(one_off, SQUARE, (0, 1)).item() == pytest.approx(2.5 / 30)
    assert lm.nme(SQUARE, SQUARE, "bbox_diagonal").item() == 0.0


def test_the_normaliser_comes_from_the_ground_truth_only():
    far = SQUARE * 2  # a wrong prediction must not change the normaliser: d(g) = 50, error = |g| per point
    err = lm.nme(far, SQUARE, "bbox_diagonal").item()
    assert err == pytest.approx((0 + 30 + 40 + 50) / 4 / 50)


def test_face_normalisers_are_the_outer_eye_corners_of_the_public_code():
    from transferlab.data.faces import FACES

    assert {k: v[3] for k, v in FACES.items()} == {"300w": (36, 45), "wflw": (60, 72), "cofw": (8, 9)}


def test_failure_rate_and_exact_auc():
    e = torch.tensor([0.0, 0.05, 0.1, 0.2])
    assert lm.failure_rate(e) == pytest.approx(25.0)  # only 0.2 exceeds 0.1 (0.1 itself is not a failure)
    assert lm.auc(e) == pytest.approx((1.0 + 0.5 + 0.0 + 0.0) / 4)
    grid = torch.linspace(0, 0.1, 100001)  # the CED integral by the trapezoid rule agrees
    ced = (e[None, :] <= grid[:, None]).double().mean(1)
    assert lm.auc(e) == pytest.approx(float(torch.trapezoid(ced, grid) / 0.1), abs=1e-4)


def test_zero_normaliser_and_bad_specs_are_refused():
    with pytest.raises(ValueError, match="zero normaliser"):
        lm.nme(SQUARE, torch.zeros(1, 4, 2), (0, 1))
    with pytest.raises(ConfigError, match="distinct landmark indices"):
        task(normaliser=[0, 7])
    with pytest.raises(ConfigError, match="head="):
        task(head="mlp")
    with pytest.raises(ConfigError, match="input_size"):
        TASKS.get("landmarks")(4, None)


def test_heatmap_frame_round_trip_and_decoding():
    pts = torch.tensor([[[5.3, 7.8], [0.0, 27.0]]])
    assert torch.allclose(lm.from_map(lm.to_map(pts, (28, 28), (16, 16)), (28, 28), (16, 16)), pts)
    maps = lm.gaussian_heatmaps(pts, (28, 28), (28, 28), sigma=1.0)  # stride 1: heat-map frame = input frame
    assert maps.shape == (1, 2, 28, 28) and maps.max() <= 1
    uv = lm.decode_heatmaps(maps)
    # arg-max (5, 8), the higher neighbours at +x and −y: a quarter pixel towards them; border points stay put
    assert uv[0, 0].tolist() == [5.25, 7.75] and uv[0, 1].tolist() == [0.0, 27.0]


def test_heads_shapes_and_decoding():
    heat = task(deconv_layers=2, deconv_channels=8)
    assert heat.spatial and heat.describe()["direction"] == "min"
    head = heat.head(64)
    out = head(torch.randn(3, 64, 4, 4))
    assert out.shape == (3, 4, 16, 16)
    assert heat.decode(out).shape == (3, 4, 2)
    reg = task(head="regression")
    assert not reg.spatial
    linear = reg.head(64)
    assert linear(torch.randn(3, 64)).shape == (3, 8)
    assert torch.allclose(reg.decode(torch.full((1, 8), 0.5)), torch.full((1, 4, 2), 13.5))  # the centre


def test_losses_are_zero_at_the_truth_and_combine_is_the_mean():
    y = torch.tensor([[[3.0, 4.0], [10.0, 20.0], [14.0, 14.0], [27.0, 0.0]]])
    reg = task(head="regression")
    exact = ((y + 0.5) / 28).flatten(1)
    assert reg.loss(exact, y).item() == pytest.approx(0.0, abs=1e-7)
    assert torch.allclose(reg.decode(exact), y, atol=1e-5)
    heat = task(sigma=1.0)
    maps = lm.gaussian_heatmaps(y, (14, 14), (28, 28), 1.0)
    assert heat.loss(maps, y).item() == 0.0 and heat.loss(torch.zeros_like(maps), y).item() > 0
    a, b = torch.ones(2, 4, 3, 3), torch.zeros(2, 4, 3, 3)
    for how in ("mean", "prob", "logits"):
        assert torch.equal(heat.combine([a, b], how), torch.full((2, 4, 3, 3), 0.5))
    with pytest.raises(ValueError, match="combine="):
        heat.combine([a, b], "vote")


def test_evaluate_with_exact_and_shifted_predictors():
    y = SQUARE.repeat(2, 1, 1) * 0.5 + 2  # a 15 × 20 box: diagonal 25
    reg = task(head="regression")

    def exact(x):
        return ((y + 0.5) / 28).flatten(1)

    out = reg.evaluate(exact, [(torch.zeros(2, 1, 28, 28), y)])
    assert out["value"] == pytest.approx(0.0, abs=1e-4) and out["n"] == 2
    assert out["extras"]["fr_10"] == 0 and out["extras"]["auc_10"] == pytest.approx(1.0, abs=1e-4)
    assert len(out["extras"]["examples"]) == 2 and len(out["extras"]["examples"][0]) == 4

    def shifted(x):  # 3-4-5: every point 5 pixels off → NME 5/25 = 20 %, all failures, AUC 0
        return ((y + torch.tensor([3.0, 4.0]) + 0.5) / 28).flatten(1)

    out = reg.evaluate(shifted, [(torch.zeros(2, 1, 28, 28), y)])
    assert out["value"] == pytest.approx(20.0, abs=1e-3)
    assert out["extras"]["fr_10"] == 100.0 and out["extras"]["auc_10"] == 0.0
    with pytest.raises(ValueError, match="one crop"):
        reg.evaluate(exact, [(torch.zeros(2, 10, 1, 28, 28), y)])


def test_evaluate_heatmaps_reaches_the_decoding_floor():
    heat = task(sigma=1.0)
    y = torch.tensor([[[4.0, 4.0], [20.0, 6.0], [8.0, 22.0], [21.0, 20.0]]])
    maps = lm.gaussian_heatmaps(y, (28, 28), (28, 28), 1.0)
    out = heat.evaluate(lambda x: maps, [(torch.zeros(1, 1, 28, 28), y)])
    assert out["value"] == pytest.approx(0.0, abs=1e-6) and math.isfinite(out["loss"])
