"""Hub-Pathway on a tiny four-model hub with two architectures: top-k pathway weights, no noise in eval, gradients
to the generator and its noise, the exploration loss, sparse dispatch = dense weighted sum, no gradient for an
unused model, exact resume, clear config errors and consistent routing statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transferlab.methods.hub_pathway  # noqa: F401  registers hub_pathway
from resume import assert_resumes_exactly
from transferlab.tasks.classification import Classification

HUB = "test_pathway"
K = 4
# (name, backbone, steps, lr): tiny mini-hub stand-ins; the last one is narrower, so the hub mixes architectures
EXTRA = (
    ("test_tiny_digits_b", "mini_resnet", 8, 0.05),  # the same stand-in as test_zoo_tuning's second model
    ("test_tiny_digits_c", "mini_resnet", 6, 0.02),
    ("test_tiny_narrow", "test_mini_resnet_narrow", 6, 0.05),
)


@pytest.fixture
def tiny_pathway_hub(tiny_hub, monkeypatch) -> str:
    """A four-model hub (three ``mini_resnet``, one narrower ResNet-8), registered for this test only."""
    from transferlab.models import BACKBONES
    from transferlab.models.cifar_resnet import CifarResNet
    from transferlab.models.hub import HUBS, mini_hub_of
    from transferlab.models.mini_hub import MINI_HUB, HubModel

    monkeypatch.setitem(BACKBONES._items, "test_mini_resnet_narrow",
                        lambda n: CifarResNet(8, (8, 16, 32), n, in_channels=1, stem_stride=2))  # fmt: skip
    for name, backbone, steps, lr in EXTRA:
        if name not in MINI_HUB:
            model = HubModel(name, f"test stand-in: {steps} steps at lr {lr}", "mini_hub_digits", "supervised",
                             "scikit-learn digits", iterations=steps, batch_size=32, lr=lr, backbone=backbone)  # fmt: skip
            monkeypatch.setitem(MINI_HUB._items, name, model)
    hub = mini_hub_of([tiny_hub, *(e[0] for e in EXTRA)], name=HUB)
    from transferlab.hubbuild import ensure_all

    ensure_all(
        [tiny_hub, *(e[0] for e in EXTRA)], jobs=1, out=lambda *_: None
    )  # pre-trained once (seconds), cached
    monkeypatch.setitem(HUBS._items, HUB, hub)
    return HUB


def _build(tiny_config, **params):
    from transferlab.methods import METHODS

    torch.manual_seed(0)
    cfg = tiny_config(method="hub_pathway", pretrained=f"hub:{HUB}", method_params=params)
    return METHODS.get("hub_pathway").build(cfg, Classification(4))


def _batch(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 4, (n,), generator=g)


def test_build_heterogeneous_hub_and_new_parameters(tiny_pathway_hub, tiny_config):
    from transferlab.config import OptimConfig

    method = _build(tiny_config)
    assert method.experts == ["test_tiny_digits", *(e[0] for e in EXTRA)]
    assert len(method.backbone) == K and {m.name for m in method.backbone} == {
        "mini_resnet",
        "test_mini_resnet_narrow",
    }
    assert all(m.head.out_features == 4 and m.source_head is None for m in method.backbone)
    new = {id(p) for p in method.new_parameters()}
    assert all(id(p) in new for m in method.backbone for p in m.head.parameters())
    assert all(id(p) in new for p in method.generator.parameters())
    groups = {g["name"]: g for g in method.param_groups(OptimConfig())}
    assert {id(p) for p in groups["pretrained"]["params"]} == {
        id(p) for m in method.backbone for p in m.body_parameters()
    }


@pytest.mark.parametrize("k", [1, 2, K])
def test_exactly_k_pathway_weights_summing_to_one(k, tiny_pathway_hub, tiny_config):
    method = _build(tiny_config, k=k)
    x, _ = _batch()
    for training in (True, False):
        method.train(training)
        w = method.route(x).weights
        assert w.shape == (len(x), K)
        assert ((w > 0).sum(1) == k).all()
        torch.testing.assert_close(w.sum(1), torch.ones(len(x)))


def test_noise_only_in_training(tiny_pathway_hub, tiny_config):
    x, y = _batch()
    method = _build(tiny_config)
    method.eval()
    with torch.no_grad():
        assert torch.equal(method.predict(x), method.predict(x))
        assert torch.equal(method.loss(x, y)["logits"], method.predict(x))
    method.train()
    with torch.no_grad():
        assert not torch.allclose(method.loss(x, y)["logits"], method.loss(x, y)["logits"])
    clean = _build(tiny_config, noise=False).train()
    with torch.no_grad():
        assert torch.equal(clean.loss(x, y)["logits"], clean.loss(x, y)["logits"])
        assert clean.route(x).noise_std is None


@pytest.mark.parametrize("weights", [{}, {"explore_weight": 0.0, "exploit_weight": 0.0}])
def test_gradients_reach_the_generator_and_its_noise(weights, tiny_pathway_hub, tiny_config):
    method = _build(tiny_config, **weights).train()
    x, y = _batch()
    out = method.loss(x, y)
    assert set(out) >= {"loss", "logits", "task", "explore", "exploit"}
    assert all(out[t].dim() == 0 and torch.isfinite(out[t]) for t in ("loss", "task", "explore", "exploit"))
    out["loss"].backward()
    g = method.generator
    for p in (g.gate.weight, g.gate.bias, g.noise.weight, g.noise.bias, g.body[0].weight, g.body[2].weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_exploration_loss_is_zero_for_uniform_use_and_grows_with_skew():
    from transferlab.methods.hub_pathway import cv_squared, exploration_loss

    uniform = torch.full((K,), 12.0)
    assert exploration_loss(uniform, uniform).item() == pytest.approx(0.0, abs=1e-8)
    mild, skewed = torch.tensor([15.0, 12.0, 12.0, 9.0]), torch.tensor([45.0, 1.0, 1.0, 1.0])
    assert 0 < exploration_loss(mild, mild) < exploration_loss(skewed, skewed)
    assert exploration_loss(uniform, skewed) == pytest.approx(cv_squared(skewed).item())
    torch.testing.assert_close(cv_squared(torch.tensor([1.0, 3.0])), torch.tensor(0.25))  # var 1 / mean² 4


def test_smooth_load_is_differentiable_and_counts_without_noise(tiny_pathway_hub, tiny_config):
    x, _ = _batch()
    method = _build(tiny_config).train()
    load = method.load(method.route(x))
    assert load.requires_grad and 0 < load.sum() <= K * len(x)
    method.eval()
    r = method.route(x)
    torch.testing.assert_close(method.load(r), (r.weights > 0).sum(0).float())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 2, K])
def test_sparse_dispatch_equals_the_dense_weighted_sum(k, dtype, tiny_pathway_hub, tiny_config):
    method = _build(tiny_config, k=k).to(dtype).eval()
    x, _ = _batch()
    x = x.to(dtype)
    with torch.no_grad():
        r = method.route(x)
        sparse, per_model = method.dispatch(x, r)
        dense_each = torch.stack([m(x) for m in method.backbone], 1)  # every model on every sample [B, K, N]
        dense = (r.weights[..., None].to(dtype) * dense_each).sum(1)
    atol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(sparse, dense, atol=atol, rtol=0)
    torch.testing.assert_close(method.predict(x), dense, atol=atol, rtol=0)
    for i, (idx, logits) in per_model.items():  # each model ran on exactly its samples
        assert torch.equal(idx.sort().values, (r.weights[:, i] > 0).nonzero().squeeze(1))
        torch.testing.assert_close(logits, dense_each[idx, i], atol=atol, rtol=0)


def test_a_model_no_sample_activates_gets_no_gradient(tiny_pathway_hub, tiny_config):
    method = _build(tiny_config, k=2, explore_weight=0.0, exploit_weight=0.0).train()
    with torch.no_grad():  # model 3 can never reach the top 2, even under noise
        method.generator.gate.weight.zero_()
        method.generator.gate.bias.copy_(torch.tensor([3.0, 2.0, 1.0, -100.0]))
    x, y = _batch()
    r = method.route(x)
    assert (r.weights[:, 3] == 0).all() and (r.weights[:, :3] > 0).any(0).all()
    method.loss(x, y)["loss"].backward()
    assert all(p.grad is None for p in method.backbone[3].parameters())
    for i in range(3):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.backbone[i].parameters())


def test_trains_and_resumes_exactly(tiny_pathway_hub, tiny_hub, tiny_config, tmp_path):
    import transferlab as tl

    cfg = tiny_config(method="hub_pathway", pretrained=f"hub:{HUB}")
    result = tl.run(cfg, out_dir=tmp_path / "a")
    entry = result.history[-1]
    assert all(np.isfinite(entry[f"train_{t}"]) for t in ("loss", "task", "explore", "exploit"))
    assert 0 <= result.metrics["test_at_best_val"] <= 100
    assert result.extra["hub_pathway"]["experts"] == [tiny_hub, *(e[0] for e in EXTRA)]
    routing = result.extra["test_statistics"]["routing"]  # on the test set, with the best-validation weights
    assert (
        routing["samples"] == result.cost["test_images"] and abs(sum(routing["chosen_fraction"]) - 2) < 1e-9
    )
    assert_resumes_exactly(cfg, tmp_path / "b", result)


def test_bad_parameters_are_config_errors_naming_valid_values(tiny_pathway_hub, tiny_config, tiny_hub):
    from transferlab.config import ConfigError
    from transferlab.methods import METHODS

    def config(**params):
        return tiny_config(method="hub_pathway", pretrained=f"hub:{HUB}", method_params=params)

    with pytest.raises(ConfigError, match=r"k=0 .*1\.\.K"):
        config(k=0)
    for name in ("explore_weight", "exploit_weight"):
        with pytest.raises(ConfigError, match=f"{name}=-0.5 must be >= 0"):
            config(**{name: -0.5})
    with pytest.raises(ConfigError, match="generator_width"):
        config(generator_width=0)
    with pytest.raises(
        ConfigError,
        match="no parameter.*exploit_weight, explore_weight, generator_size, generator_width, k, noise",
    ):
        config(top_k=2)
    build = METHODS.get("hub_pathway").build
    with pytest.raises(ConfigError, match=r"k=5 must be in 1\.\.K = 1\.\.4 .*test_tiny_narrow"):
        build(config(k=5), 4)
    with pytest.raises(ConfigError, match=f"hub:{HUB}"):
        build(tiny_config(method="hub_pathway", pretrained=f"mini:{tiny_hub}"), 4)


def test_routing_statistics_are_consistent(tiny_pathway_hub, tiny_config):
    k = 2
    method = _build(tiny_config, k=k).train()
    batches = [_batch(20, seed=s) for s in range(3)]
    stats = method.routing_statistics(batches)
    assert method.training  # mode restored
    json.dumps(stats)
    n = sum(len(y) for _, y in batches)
    assert stats["experts"] == method.experts and stats["samples"] == n
    assert sum(stats["chosen_fraction"]) == pytest.approx(k)
    assert sum(stats["mean_weight"]) == pytest.approx(1.0)
    counts = np.array(stats["per_class"])
    assert counts.shape == (4, K) and counts.sum() == k * n
    labels = torch.cat([y for _, y in batches])
    assert counts.sum(1).tolist() == [k * int((labels == c).sum()) for c in range(4)]
    np.testing.assert_allclose(counts.sum(0) / n, stats["chosen_fraction"])
    ent = stats["routing_entropy"]
    assert 0 < ent["per_sample_mean"] <= np.log(k) + 1e-9 and 0 < ent["usage"] <= ent["max"] + 1e-9
    flops = stats["flops_per_model"]
    assert flops["test_tiny_narrow"] < flops["test_tiny_digits"]  # the narrow architecture costs less
    assert 0 < stats["flops_generator"] < 0.25 * min(flops.values())  # the generator is cheap
    expected = stats["flops_generator"] + sum(f * c for f, c in zip(flops.values(), stats["chosen_fraction"]))
    assert stats["flops_per_sample"] == pytest.approx(expected)
    assert (
        stats["flops_per_sample"] < stats["flops_per_sample_ensemble"] == pytest.approx(sum(flops.values()))
    )
    dense = _build(tiny_config, k=K).routing_statistics(batches)
    assert dense["flops_per_sample"] > dense["flops_per_sample_ensemble"]  # all K plus the generator


def test_bf16_autocast_step_and_predict(tiny_pathway_hub, tiny_config):
    """fit()'s GPU path on the CPU: a bf16-autocast train step and prediction, channels_last, float32 gate and output."""
    from transferlab.train import channels_last

    method = _build(tiny_config)
    channels_last(method)
    method.autocast_dtype = torch.bfloat16
    x, y = _batch()
    x = x.to(memory_format=torch.channels_last)
    out = method.train().train_step(x, y, torch.optim.SGD(method.parameters(), lr=0.01))
    assert torch.isfinite(out["loss"]) and out["logits"].dtype == torch.float32
    with method.autocast(), torch.no_grad():
        logits = method.eval().predict(x)
    assert logits.dtype == torch.float32 and logits.shape == (len(x), 4)
