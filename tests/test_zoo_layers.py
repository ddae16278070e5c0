"""Zoo-Tuning's aggregation layers and zoo builder: golden checks against the official code and properties.

Golden tests (``shared/anchors`` README §3, tolerances of its §5) skip cleanly where the anchors folder is absent.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from golden import anchor
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet, resnet18, resnet34
from transferlab.models.backbones import Backbone
from transferlab.models.cifar_resnet import CifarResNet
from transferlab.models.zoo import AdaptiveAggregationConv, collapse_lite, from_official_state_dict
from transferlab.models.zoo_build import build_zoo_resnet

TOL = {"rtol": 1e-10, "atol": 1e-10}  # README §3.2/§5 for the float64 zoo fixtures


def _layer(config: np.ndarray, **kw) -> AdaptiveAggregationConv:
    i, o, k, stride, pad, dil, groups, experts, align, _, bias, lite = (int(v) for v in config)
    return AdaptiveAggregationConv(
        i,
        o,
        k,
        stride,
        pad,
        dil,
        groups,
        bias=bool(bias),
        experts=experts,
        align=bool(align),
        lite=bool(lite),
        **kw,
    ).double()


def _tensors(a: dict[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
    """Official names under ``prefix`` (e.g. ``c3_param.``) → our names and shapes."""
    raw = {k.removeprefix(prefix): torch.tensor(v) for k, v in a.items() if k.startswith(prefix)}
    return from_official_state_dict(raw)


@pytest.mark.parametrize("case", range(8))
def test_golden_aggregation_layer_output_and_all_gradients(case):
    a = anchor("zoo_ada_agg")
    p = f"c{case}_"
    layer = _layer(a[p + "config"])
    layer.load_state_dict(_tensors(a, p + "param."), strict=True)
    assert (layer.align is not None) == bool(a[p + "config"][9])  # align_effective (off for k = 1)
    x = torch.tensor(a[p + "x"], requires_grad=True)

    np.testing.assert_allclose(layer.gates(x).detach().numpy(), a[p + "gates"], **TOL)
    y = layer(x)
    np.testing.assert_allclose(y.detach().numpy(), a[p + "y"], **TOL)
    y.backward(torch.tensor(a[p + "cotangent"]))
    np.testing.assert_allclose(x.grad.numpy(), a[p + "grad_x"], **TOL)
    expected = _tensors(a, p + "grad.")
    assert set(expected) == {n for n, _ in layer.named_parameters()}
    for name, param in layer.named_parameters():
        np.testing.assert_allclose(param.grad.numpy(), expected[name].numpy(), err_msg=name, **TOL)


@pytest.mark.parametrize("detach_ema", [True, False], ids=["detached", "official_undetached"])
def test_golden_lite_ema_over_three_training_steps_then_eval(detach_ema):
    a = anchor("zoo_lite")
    layer = _layer(a["config"], detach_ema=detach_ema)
    assert layer.lite and layer.align is not None
    layer.load_state_dict({**_tensors(a, "param_init."), "ema_gate": torch.zeros(5, dtype=torch.float64)})
    layer.train()
    for t in range(int(a["n_steps"])):
        x = torch.tensor(a[f"x_step{t}"], requires_grad=True)
        np.testing.assert_allclose(
            layer.gates(x).mean(0).detach().numpy(), a[f"batch_mean_gate_step{t}"], **TOL
        )
        layer.zero_grad(set_to_none=True)
        y = layer(x)
        np.testing.assert_allclose(y.detach().numpy(), a[f"y_step{t}"], **TOL)
        np.testing.assert_allclose(layer.ema_gate.detach().numpy(), a[f"buffer_after_step{t}"], **TOL)
        assert layer.ema_gate.requires_grad == (not detach_ema)
        assert bool(a[f"buffer_requires_grad_step{t}"])  # what the official code does (detach_ema=False)
        y.backward(torch.tensor(a[f"cotangent_step{t}"]))
        np.testing.assert_allclose(x.grad.numpy(), a[f"grad_x_step{t}"], **TOL)
        expected = _tensors(a, f"grad_step{t}.")
        for name, param in layer.named_parameters():
            np.testing.assert_allclose(param.grad.numpy(), expected[name].numpy(), err_msg=name, **TOL)
    layer.eval()
    with torch.no_grad():
        y = layer(torch.tensor(a["x_eval"]))
    np.testing.assert_allclose(y.numpy(), a["y_eval"], **TOL)
    np.testing.assert_allclose(layer.ema_gate.detach().numpy(), a["buffer_after_eval"], **TOL)


# ------------------------------------------------------------------------------------------ properties


def _randomised(layer: AdaptiveAggregationConv, seed: int = 0) -> AdaptiveAggregationConv:
    """Move the gate bias and the alignment off their init, so that every term matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.gate[3].bias.copy_(torch.randn(layer.experts, generator=g, dtype=layer.weight.dtype))
        if layer.align is not None:
            layer.align.add_(0.05 * torch.randn(layer.align.shape, generator=g, dtype=layer.weight.dtype))
    return layer


@pytest.mark.parametrize("groups,bias,align", [(1, False, True), (2, True, True), (4, True, False)])
def test_layer_equals_a_per_sample_loop_of_convolutions(groups, bias, align):
    torch.manual_seed(0)
    layer = _randomised(
        AdaptiveAggregationConv(8, 12, 3, 2, 2, 2, groups, bias, experts=3, align=align).double()
    )
    x = torch.randn(4, 8, 11, 11, dtype=torch.float64)
    a = layer.gates(x)
    expected = []
    for b in range(4):  # the equation of the module doc, one sample at a time
        kernels = (
            layer.weight
            if layer.align is None
            else torch.einsum("kop,kpihw->koihw", layer.align, layer.weight)
        )
        kernel = sum(a[b, k] * kernels[k] for k in range(3))
        beta = None if layer.bias is None else sum(a[b, k] * layer.bias[k] for k in range(3))
        expected.append(F.conv2d(x[b : b + 1], kernel, beta, 2, 2, 2, groups))
    torch.testing.assert_close(layer(x), torch.cat(expected), rtol=1e-12, atol=1e-12)


def test_gate_is_unnormalised_sigmoid_with_the_official_width_and_init():
    layer = AdaptiveAggregationConv(64, 32, 3, padding=1, experts=5)
    assert layer.gate[1].weight.shape == (64 // 4 + 1, 64, 1, 1) and layer.gate[1].bias is None
    assert layer.gate[3].weight.shape == (5, 17, 1, 1)
    assert torch.count_nonzero(layer.gate[3].bias) == 0
    a = layer.gates(torch.randn(3, 64, 5, 5))
    assert a.shape == (3, 5) and bool(((a > 0) & (a < 1)).all())
    assert not torch.allclose(a.sum(1), torch.ones(3))  # independent sigmoids, not a softmax


def test_identity_alignment_at_init_gives_the_plain_aggregated_conv():
    torch.manual_seed(1)
    aligned = AdaptiveAggregationConv(6, 10, 3, padding=1, bias=True, experts=4, align=True).double()
    plain = AdaptiveAggregationConv(6, 10, 3, padding=1, bias=True, experts=4, align=False).double()
    assert torch.equal(aligned.align, torch.eye(10, dtype=torch.float64).expand(4, 10, 10))
    plain.load_state_dict({k: v for k, v in aligned.state_dict().items() if k != "align"}, strict=True)
    x = torch.randn(3, 6, 7, 7, dtype=torch.float64)
    y_aligned, y_plain = aligned(x), plain(x)
    torch.testing.assert_close(y_aligned, y_plain, rtol=1e-13, atol=1e-13)
    y_aligned.sum().backward()
    y_plain.sum().backward()
    torch.testing.assert_close(aligned.weight.grad, plain.weight.grad, rtol=1e-12, atol=1e-12)


def test_alignment_on_a_1x1_kernel_is_silently_off_as_officially():
    assert AdaptiveAggregationConv(8, 8, 1, align=True).align is None


def _fill_ema(model: nn.Module, x: torch.Tensor, steps: int = 3) -> None:
    model.train()
    with torch.no_grad():
        for t in range(steps):
            model(x + 0.1 * t)
    model.eval()


def test_lite_layer_collapses_into_an_equal_ordinary_conv():
    torch.manual_seed(2)
    layer = _randomised(
        AdaptiveAggregationConv(6, 8, 3, 2, 1, groups=2, bias=True, experts=3, align=True, lite=True)
    )
    layer = layer.double()
    _fill_ema(layer, torch.randn(5, 6, 9, 9, dtype=torch.float64))
    assert bool((layer.ema_gate > 0).all())
    conv = layer.collapse()
    assert type(conv) is nn.Conv2d and conv.weight.shape == (8, 3, 3, 3)
    x = torch.randn(2, 6, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), layer(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="per sample"):
        AdaptiveAggregationConv(6, 8, 3).collapse()


def _sources(factory, k: int) -> list[dict[str, torch.Tensor]]:
    """K random source state dicts (random BN affine and statistics too), no downloads."""
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        net = factory()
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t in (m.weight, m.bias, m.running_mean):
                    nn.init.normal_(t.data)
                m.running_var.data.uniform_(0.5, 2.0)
        out.append(net.state_dict())
    return out


@pytest.mark.parametrize("lite_downsample", [False, True])
def test_whole_lite_zoo_model_collapses_with_identical_outputs(lite_downsample):
    sources = _sources(lambda: CifarResNet(8, (8, 16, 16), 5, stem_bias=True), 2)
    torch.manual_seed(3)
    net = build_zoo_resnet(
        sources, CifarResNet(8, (8, 16, 16), 5, stem_bias=True), 4, lite=True, lite_downsample=lite_downsample
    ).double()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    _fill_ema(net, x)
    with torch.no_grad():
        expected = net(x[:2])
        collapsed = collapse_lite(copy.deepcopy(net))
        torch.testing.assert_close(collapsed(x[:2]), expected, rtol=1e-10, atol=1e-12)
    left = [n for n, m in collapsed.named_modules() if isinstance(m, AdaptiveAggregationConv)]
    # the official quirk: downsample convs are not lite and keep their per-sample gates
    assert left == ([] if lite_downsample else ["layer2.0.downsample.0", "layer3.0.downsample.0"])


def test_builder_stacks_kernels_averages_bn_resets_stats_and_wraps_as_backbone():
    sources = _sources(lambda: resnet18(num_classes=7), 3)
    net = build_zoo_resnet(sources, "resnet18", num_classes=5)
    state = net.state_dict()
    for key in ("conv1.weight", "layer2.0.conv2.weight", "layer3.0.downsample.0.weight"):
        assert torch.equal(state[key], torch.stack([s[key] for s in sources]))  # expert order = source order
    for key in ("bn1.weight", "layer1.1.bn2.bias", "layer4.0.downsample.1.weight"):
        torch.testing.assert_close(state[key], sum(s[key] for s in sources) / 3, rtol=0, atol=0)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(
        torch.count_nonzero(m.running_mean) == 0
        and bool((m.running_var == 1).all())
        and m.num_batches_tracked == 0
        for m in bns
    )
    aligned = sorted(
        n for n, m in net.named_modules() if isinstance(m, AdaptiveAggregationConv) and m.align is not None
    )
    assert aligned == ["conv1"] + [f"layer{s}.{b}.conv{c}" for s in (3, 4) for b in (0, 1) for c in (1, 2)]
    assert net.fc.weight.shape == (5, 512) and torch.count_nonzero(net.fc.bias) == 0
    assert 0.005 < net.fc.weight.std().item() < 0.015  # the official N(0, 0.01) head

    backbone = Backbone(net, "zoo_resnet18").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = backbone.feature_maps(x)
        assert [tuple(m.shape[1:]) for m in maps] == [
            (64, 8, 8),
            (64, 8, 8),
            (128, 4, 4),
            (256, 2, 2),
            (512, 1, 1),
        ]
        assert backbone.features(x).shape == (2, 512) and backbone(x).shape == (2, 5)


def test_builder_on_a_bottleneck_resnet50_layout_aligns_exactly_where_the_official_code_does():
    def factory():  # ResNet-50's layout ([3, 4, 6, 3] bottlenecks) with thin bottlenecks, to stay fast
        return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=3, width_per_group=8)

    net = build_zoo_resnet(_sources(factory, 2), factory(), num_classes=3, bn_stats="average")
    layers = {n: m for n, m in net.named_modules() if isinstance(m, AdaptiveAggregationConv)}
    plain = [n for n, m in net.named_modules() if type(m) is nn.Conv2d and ".gate." not in n]
    assert (
        len(layers) == 53 and plain == []
    )  # every conv is an aggregation layer (only the gates hold plain convs)
    aligned = sorted(n for n, m in layers.items() if m.align is not None)
    assert aligned == sorted(
        ["conv1"] + [f"layer3.{b}.conv2" for b in range(6)] + [f"layer4.{b}.conv2" for b in range(3)]
    )
    assert net.bn1.running_var.min() > 0.5  # "average" keeps the sources' statistics (non-official option)


def test_builder_names_the_mismatch_between_source_architectures():
    a, b = resnet18().state_dict(), resnet34().state_dict()
    with pytest.raises(
        ValueError, match=r"do not share one architecture: 'layer1\.2\.conv1\.weight' is missing"
    ):
        build_zoo_resnet([a, b], "resnet18")
    narrow = CifarResNet(8, (16, 32, 32)).state_dict()
    with pytest.raises(
        ValueError, match=r"'layer3\.0\.conv1\.weight' has shape \[64, 32, 3, 3\] in source 0"
    ):
        build_zoo_resnet([CifarResNet(8).state_dict(), narrow], CifarResNet(8))
    with pytest.raises(ValueError, match="do not fit resnet34"):
        build_zoo_resnet([a, a], "resnet34")


def test_a_training_step_through_a_zoo_model_reaches_every_parameter():
    sources = _sources(lambda: CifarResNet(8, (8, 16, 16), 5), 3)
    net = build_zoo_resnet(sources, CifarResNet(8, (8, 16, 16), 5), num_classes=4).train()
    logits = net(torch.randn(4, 3, 16, 16))
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert net.layer3[0].conv1.align is not None and net.layer2[0].conv1.align is None
