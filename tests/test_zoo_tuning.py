"""Zoo-Tuning as a method: built from a tiny two-model hub, it trains, resumes exactly, lite collapses to the same
logits, and wrong ``pretrained`` values or a mixed-architecture hub are clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transferlab.methods.zoo_tuning  # noqa: F401  registers zoo_tuning, zoo_tuning_lite
from resume import assert_resumes_exactly
from transferlab.tasks.classification import Classification


def _build(tiny_config, method, **params):
    from transferlab.methods import METHODS

    cfg = tiny_config(method=method, pretrained="hub:test_tiny", method_params=params)
    return cfg, METHODS.get(method).build(cfg, Classification(4))


@pytest.mark.parametrize("method", ["zoo_tuning", "zoo_tuning_lite"])
def test_zoo_tuning_trains_and_resumes_exactly(method, tiny_zoo, tiny_config, tmp_path):
    import transferlab as tl

    cfg = tiny_config(method=method, pretrained="hub:test_tiny")
    result = tl.run(cfg, out_dir=tmp_path / "a")
    assert np.isfinite(result.history[-1]["train_loss"]) and 0 <= result.metrics["test_at_best_val"] <= 100
    assert_resumes_exactly(cfg, tmp_path / "b", result)


def test_the_model_stacks_the_hub_and_only_the_head_is_new(tiny_zoo, tiny_config):
    from transferlab.models.hub import HUBS
    from transferlab.models.zoo import AdaptiveAggregationConv

    _, method = _build(tiny_config, "zoo_tuning")
    sources = list(HUBS.get(tiny_zoo).state_dicts().values())
    layers = method.zoo_layers()
    assert layers and all(layer.experts == 2 and not layer.lite for layer in layers)
    stem = method.backbone.stem[0]
    assert (
        isinstance(stem, AdaptiveAggregationConv) and stem.align is not None
    )  # official placement: the stem
    for k, source in enumerate(sources):
        assert torch.equal(stem.weight[k], source["conv1.weight"])
    assert [p for p in method.new_parameters()] == list(method.backbone.head.parameters())
    assert method.backbone.head.out_features == 4
    x, y = torch.randn(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 0])
    out = method.loss(x, y)
    assert torch.isfinite(out["loss"]) and out["logits"].shape == (5, 4)


@pytest.mark.parametrize("lite_downsample", [False, True])
def test_lite_collapse_gives_the_eval_logits(lite_downsample, tiny_zoo, tiny_config):
    from transferlab.models.zoo import AdaptiveAggregationConv

    _, method = _build(tiny_config, "zoo_tuning_lite", lite_downsample=lite_downsample)
    optimizer = torch.optim.SGD(method.parameters(), lr=0.01)
    method.train()
    torch.manual_seed(0)
    for _ in range(3):  # fill the EMA gates (they start at 0)
        method.train_step(torch.randn(8, 1, 28, 28), torch.randint(0, 4, (8,)), optimizer)
    assert all(layer.ema_gate.abs().sum() > 0 for layer in method.zoo_layers() if layer.lite)
    method.eval()
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        expected = method.predict(x)
        collapsed = method.collapse()
        got = collapsed(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    left = [m for m in collapsed.modules() if isinstance(m, AdaptiveAggregationConv)]
    assert not any(m.lite for m in left)
    assert (not left) == lite_downsample  # official quirk: downsample convs stay per-sample
    assert method.zoo_layers() and any(m.lite for m in method.zoo_layers())  # the method is untouched


def test_errors(tiny_zoo, tiny_hub, tiny_config, monkeypatch):
    from transferlab.config import ConfigError
    from transferlab.methods import METHODS
    from transferlab.models.hub import HUBS, Hub, HubModel, MiniHubWeights

    build = METHODS.get("zoo_tuning").build
    for pretrained in (f"mini:{tiny_hub}", "none"):
        with pytest.raises(ConfigError, match="hub:test_tiny"):  # names the valid hubs
            build(tiny_config(method="zoo_tuning", pretrained=pretrained), 4)
    with pytest.raises(ConfigError, match="does not exist"):
        build(tiny_config(method="zoo_tuning", pretrained="hub:nope"), 4)
    mixed = Hub("test_mixed", "two architectures", (
        HubModel("a", "mini_resnet", "tiny", MiniHubWeights(tiny_hub)),
        HubModel("b", "resnet18", "tiny", MiniHubWeights(tiny_hub)),
    ))  # fmt: skip
    monkeypatch.setitem(HUBS._items, "test_mixed", mixed)
    with pytest.raises(ConfigError, match="one architecture.*mini_resnet: a; resnet18: b"):
        build(tiny_config(method="zoo_tuning", pretrained="hub:test_mixed"), 4)
    with pytest.raises(ConfigError, match="asks for backbone"):
        build(tiny_config(method="zoo_tuning", pretrained="hub:test_tiny", backbone="resnet18"), 4)
    with pytest.raises(ConfigError, match="bn_stats"):
        tiny_config(method="zoo_tuning", pretrained="hub:test_tiny", method_params={"bn_stats": "x"})
    with pytest.raises(ConfigError, match="no parameter"):  # lite-only options are not zoo_tuning's
        tiny_config(method="zoo_tuning", pretrained="hub:test_tiny", method_params={"ema_momentum": 0.2})
