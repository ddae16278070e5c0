"""The single-model baselines (L2-SP, DELTA, BSS, LwF): golden checks of their regularisers against TLlib's outputs
(anchors README §2), closed-form checks, and each method's contract on the tiny dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from golden import anchor
from resume import assert_resumes_exactly
from transferlab.methods.regularizers import (
    attention_behavioral_penalty,
    behavioral_penalty,
    bss_penalty,
    kd_loss,
    l2_penalty,
    sp_penalty,
)
from transferlab.tasks.classification import Classification


def _close(a, b, rtol=1e-10, atol=1e-14):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def test_golden_l2_and_sp_values_and_gradients():
    a = anchor("reg_l2_sp")
    names = [str(n) for n in a["param_names"]]
    target = [torch.tensor(a[f"target.{n}"], requires_grad=True) for n in names]
    source = [torch.tensor(a[f"source.{n}"]) for n in names]
    l2 = l2_penalty(target)
    _close(l2.item(), a["l2_value"])
    for n, g in zip(names, torch.autograd.grad(l2, target)):
        _close(g, a[f"l2_grad.{n}"])
    sp = sp_penalty(target, source)
    _close(sp.item(), a["sp_value"])
    for n, g in zip(names, torch.autograd.grad(sp, target)):
        _close(g, a[f"sp_grad.{n}"])


def test_golden_behavioral_and_attention_penalties():
    a = anchor("reg_behavioral")
    layers = [str(n) for n in a["layer_names"]]
    fs = [torch.tensor(a[f"fs.{n}"], requires_grad=True) for n in layers]
    ft = [torch.tensor(a[f"ft.{n}"], requires_grad=True) for n in layers]
    att = [torch.tensor(a[f"attention.{n}"], requires_grad=True) for n in layers]
    value = behavioral_penalty(fs, ft)
    _close(value.item(), a["behavioral_value"])
    grads = torch.autograd.grad(value, ft + fs, allow_unused=True)
    for n, g in zip(layers, grads[: len(layers)]):
        _close(g, a[f"behavioral_grad_ft.{n}"])
    for n, g in zip(layers, grads[len(layers) :]):
        assert (g is None) == bool(a[f"behavioral_grad_fs_is_none.{n}"])  # the source maps are constants
    value = attention_behavioral_penalty(fs, ft, att)
    _close(value.item(), a["attention_value"])
    grads = torch.autograd.grad(value, ft + att)
    for n, g in zip(layers, grads[: len(layers)]):
        _close(g, a[f"attention_grad_ft.{n}"])
    for n, g in zip(layers, grads[len(layers) :]):
        _close(g, a[f"attention_grad_attention.{n}"])


@pytest.mark.parametrize("k", [1, 2])
def test_golden_bss(k):
    a = anchor("reg_bss")
    f = torch.tensor(a["feature"], requires_grad=True)
    value = bss_penalty(f, k)
    _close(value.item(), a[f"k{k}_value"])
    _close(torch.autograd.grad(value, f)[0], a[f"k{k}_grad"], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("temperature", [1, 3])
def test_golden_kd_without_t_squared_is_tllibs(temperature):
    a = anchor("reg_kd")
    s = torch.tensor(a["y_student"], requires_grad=True)
    t = torch.tensor(a["y_teacher"], requires_grad=True)
    value = kd_loss(s, t, temperature, t_squared=False)
    _close(value.item(), a[f"T{temperature}_value"], rtol=0, atol=1e-12)
    gs, gt = torch.autograd.grad(value, [s, t])
    _close(gs, a[f"T{temperature}_grad_student"], rtol=0, atol=1e-12)
    _close(gt, a[f"T{temperature}_grad_teacher"], rtol=0, atol=1e-12)
    scaled = kd_loss(s, t, temperature, t_squared=True)
    _close(scaled.item(), temperature**2 * value.item())


def test_regularisers_closed_forms_and_errors():
    x = torch.tensor([[3.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # singular values 3, 2
    assert bss_penalty(x, 1).item() == pytest.approx(4.0)
    assert bss_penalty(x, 2).item() == pytest.approx(13.0)
    with pytest.raises(ValueError, match="between 1 and min"):
        bss_penalty(x, 3)
    z = torch.randn(5, 4, dtype=torch.float64)
    assert kd_loss(z, z, 3.0).item() == pytest.approx(0.0, abs=1e-12)  # KL of a distribution with itself
    fm = torch.ones(2, 4, 3, 3)
    uniform = [torch.full((4,), 0.25)]
    # uniform attention: ½ Σ_{b,c} mean over positions of the squared difference
    assert attention_behavioral_penalty([fm], [fm * 2], uniform).item() == pytest.approx(0.5 * 2 * 4)
    with pytest.raises(ValueError, match="attention of shape"):
        attention_behavioral_penalty([fm], [fm], [torch.ones(3)])
    with pytest.raises(ValueError, match="differ in shape"):
        behavioral_penalty([fm], [torch.ones(2, 4, 2, 2)])
    with pytest.raises(ValueError, match="starting point"):
        sp_penalty([torch.ones(2)], [torch.ones(3)])


# ---------------------------------------------------------------------------------------------- the methods
SINGLE_MODEL = ["finetune", "l2sp", "delta", "bss", "lwf", "co_tuning"]


def _cfg(tiny_config, tiny_hub, method, **params):
    return tiny_config(method=method, pretrained=f"mini:{tiny_hub}", method_params=params)


@pytest.mark.parametrize("method", SINGLE_MODEL)
def test_every_single_model_method_trains_logs_its_terms_and_resumes_exactly(
    method, tiny_config, tiny_hub, tmp_path
):
    import transferlab as tl

    cfg = _cfg(tiny_config, tiny_hub, method)
    result = tl.run(cfg, out_dir=tmp_path / "a")
    last = result.history[-1]
    assert np.isfinite(last["train_loss"]) and 0 <= result.metrics["test_at_best_val"] <= 100
    terms = {"l2sp": "train_l2_sp", "delta": "train_delta", "bss": "train_bss", "lwf": "train_kd",
             "co_tuning": "train_co_tuning"}  # fmt: skip
    if method in terms:
        assert terms[method] in last and last[terms[method]] >= 0
    # interrupted after its first checkpoint (step 4), the run resumes to exactly the same numbers
    assert_resumes_exactly(cfg, tmp_path / "b", result)


def test_methods_that_keep_the_source_refuse_random_weights(tiny_config):
    from transferlab.methods import METHODS

    for method in ("l2sp", "delta", "lwf"):
        with pytest.raises(ValueError, match="pre-trained"):
            METHODS.get(method).build(tiny_config(method=method, pretrained="none"), Classification(4))


def test_l2sp_starts_at_zero_penalty_and_disables_weight_decay(tiny_config, tiny_hub):
    from transferlab.methods import METHODS
    from transferlab.train import make_optimizer

    cfg = _cfg(tiny_config, tiny_hub, "l2sp")
    method = METHODS.get("l2sp").build(cfg, Classification(4))
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    assert method.loss(x, y)["l2_sp"].item() == 0.0  # at the starting point
    assert all(g["weight_decay"] == 0.0 for g in make_optimizer(method, cfg).param_groups)
    with torch.no_grad():
        method.backbone.body_parameters()[0].add_(0.5)
    p0 = method.backbone.body_parameters()[0]
    assert method.loss(x, y)["l2_sp"].item() == pytest.approx(0.5 * 0.25 * p0.numel(), rel=1e-5)


def test_lwf_teacher_is_frozen_and_the_source_head_trains_only_if_asked(tiny_config, tiny_hub):
    from transferlab.methods import METHODS
    from transferlab.train import make_optimizer

    for train_source_head in (True, False):
        cfg = _cfg(tiny_config, tiny_hub, "lwf", train_source_head=train_source_head)
        method = METHODS.get("lwf").build(cfg, Classification(4))
        method.train()
        assert not method.teacher.training
        optimised = {id(p) for g in make_optimizer(method, cfg).param_groups for p in g["params"]}
        assert not any(id(p) in optimised for p in method.teacher.parameters())
        head = method.backbone.source_head.weight
        assert (id(head) in optimised) == train_source_head
        # at the start the student's source head equals the teacher: the distillation term is 0
        x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
        method.eval()
        assert method.loss(x, y)["kd"].item() == pytest.approx(0.0, abs=1e-6)


def test_delta_ablation_shortcut_equals_zeroing_weights_one_by_one(tiny_config, tiny_hub):
    import torch.nn.functional as F
    from transferlab.methods import METHODS
    from transferlab.methods.delta import _ablation_losses, tapped_convs

    method = METHODS.get("delta").build(_cfg(tiny_config, tiny_hub, "delta"), Classification(4)).eval()
    net = method.source
    net.head = torch.nn.Linear(net.feature_dim, 4)
    x, y = torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 0, 1])
    taps = tapped_convs(net)
    assert [t.out_channels for t in taps] == [16, 32, 64]
    with torch.no_grad():
        for s, tap in enumerate(taps):
            fast = _ablation_losses(net, s, tap, x, y)
            for j in (0, tap.out_channels // 2, tap.out_channels - 1):
                saved = tap.weight[j].clone()
                tap.weight[j] = 0.0
                slow = F.cross_entropy(net(x), y).item()
                tap.weight[j] = saved
                assert fast[j] == pytest.approx(slow, rel=1e-5, abs=1e-6)


def test_delta_attention_is_a_distribution_per_layer_and_cached(tiny_config, tiny_hub, tmp_path):
    import transferlab as tl
    from transferlab.methods.delta import ATTENTION_FILE, standardised_softmax

    assert np.allclose(standardised_softmax(np.ones(5), 5.0), 0.2)  # equal increases: uniform
    cfg = _cfg(tiny_config, tiny_hub, "delta", attention_epochs=2, attention_batches=2)
    tl.run(cfg, out_dir=tmp_path)
    with np.load(tmp_path / ATTENTION_FILE) as saved:
        for i, channels in enumerate((16, 32, 64)):
            a = saved[f"layer{i}"]
            assert a.shape == (channels,) and a.sum() == pytest.approx(1.0) and (a > 0).all()
