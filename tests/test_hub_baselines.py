"""The hub baselines (ensemble, feature_concat, distill) on a tiny two-model hub: they train and resume exactly; the
ensemble is K independent fine-tunings and predicts the log-mean-softmax; feature_concat trains its head only; the
distillation teacher is the ensemble run, trained once, cached, frozen; bad parameters fail before training."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
import transferlab.methods.hub_distill  # noqa: F401  registers distill
import transferlab.methods.hub_ensemble  # noqa: F401  registers ensemble, feature_concat
from conftest import TINY_HUB_B as SECOND
from conftest import TINY_ZOO as HUB
from resume import assert_resumes_exactly


def _cfg(tiny_config, method, **params):
    return tiny_config(method=method, pretrained=f"hub:{HUB}", method_params=params)


def _build(tiny_config, method, **params):
    from transferlab.methods import METHODS

    torch.manual_seed(0)
    return METHODS.get(method).build(_cfg(tiny_config, method, **params), 4)


def _batch(n=8):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 28, 28, generator=g), torch.arange(n) % 4


@pytest.fixture
def count_teacher_fits(monkeypatch):
    """Counts fit() calls that train a distillation teacher (an ``ensemble`` inside ``distill.prepare``)."""
    from transferlab import train as train_mod
    from transferlab.methods.hub_ensemble import HubEnsemble

    calls = []
    real = train_mod.fit

    def counting(method, *args, **kwargs):
        if isinstance(method, HubEnsemble):
            calls.append(method)
        return real(method, *args, **kwargs)

    monkeypatch.setattr(train_mod, "fit", counting)
    return calls


# ------------------------------------------------------------------------------------------------ ensemble
def test_ensemble_trains_resumes_and_selects_on_the_ensemble(tiny_zoo, tiny_config, tmp_path):
    import transferlab as tl

    cfg = _cfg(tiny_config, "ensemble")
    result = tl.run(cfg, out_dir=tmp_path / "a")
    assert {"train_ce_0", "train_ce_1"} <= set(result.history[-1])
    h = result.history[-1]
    assert h["train_loss"] == pytest.approx(h["train_ce_0"] + h["train_ce_1"], rel=1e-5)
    assert result.metrics["best_val"] == max(e["val_top1"] for e in result.history)
    assert result.extra["members"] == [f"{HUB}:test_tiny_digits", f"{HUB}:{SECOND}"]
    assert_resumes_exactly(cfg, tmp_path / "b", result)


def test_each_member_gets_exactly_the_gradient_of_its_own_fine_tuning(tiny_zoo, tiny_config):
    from transferlab.methods.finetune import FineTune

    method = _build(tiny_config, "ensemble").train()
    lone = [FineTune(copy.deepcopy(m), 4, FineTune.Config()).train() for m in method.backbone]
    x, y = _batch()
    out = method.loss(x, y)
    out["loss"].backward()
    assert set(out) == {"loss", "ce_0", "ce_1", "logits"}
    for i, single in enumerate(lone):
        ref = single.loss(x, y)["loss"]
        ref.backward()
        assert torch.equal(out[f"ce_{i}"], ref)
        for (name, p), q in zip(method.backbone[i].named_parameters(), single.backbone.parameters()):
            assert torch.equal(p.grad, q.grad), name
    heads = {id(p) for m in method.backbone for p in m.head.parameters()}
    assert {id(p) for p in method.new_parameters()} == heads


def test_ensemble_predicts_the_log_mean_softmax_or_the_mean_logits(tiny_zoo, tiny_config):
    x, _ = _batch()
    for combine in ("prob", "logits"):
        method = _build(tiny_config, "ensemble", combine=combine).eval()
        with torch.no_grad():
            z = [m(x) for m in method.backbone]
            got = method.predict(x)
        if combine == "prob":
            expected = torch.stack([F.softmax(t, 1) for t in z]).mean(0).log()
        else:
            expected = (z[0] + z[1]) / 2
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
    accs = method.member_accuracies([_batch()])
    assert len(accs) == 2 and all(0 <= a <= 100 for a in accs)


# ------------------------------------------------------------------------------------------------ feature_concat
def test_feature_concat_trains_only_its_head_and_resumes(tiny_zoo, tiny_config, tmp_path):
    from transferlab import experiment
    from transferlab.models.hub import HUBS

    cfg = _cfg(tiny_config, "feature_concat")
    method, result = experiment.train(cfg, tmp_path / "a")
    assert result.cost["trainable_params"] == (64 + 64) * 4 + 4
    groups = method.param_groups(cfg.optim)
    assert [g["name"] for g in groups] == ["new"] and groups[0]["params"] == list(method.head.parameters())
    method.train()
    assert not any(m.training for m in method.backbone.modules())  # BN stays in inference mode
    for member, name in zip(method.backbone, HUBS.get(HUB).names()):
        fresh = HUBS.get(HUB).load(name).state_dict()
        got = member.state_dict()
        assert set(got) == {k for k in fresh if not k.startswith("head.")}
        for k in got:  # bodies bit-identical, BN running statistics and counters included
            assert torch.equal(got[k], fresh[k]), k
    assert_resumes_exactly(cfg, tmp_path / "b", result)


@pytest.mark.parametrize("normalize", [True, False])
def test_feature_concat_features(normalize, tiny_zoo, tiny_config):
    method = _build(tiny_config, "feature_concat", normalize=normalize).eval()
    x, y = _batch()
    phi = method.features(x)
    assert phi.shape == (8, 128) and not phi.requires_grad
    with torch.no_grad():
        raw = [m.features(x) for m in method.backbone]
    for i, f in enumerate(raw):
        block = phi[:, 64 * i : 64 * (i + 1)]
        expected = F.normalize(f, dim=1) * 8.0 if normalize else f  # √64 = 8: unit RMS per coordinate
        torch.testing.assert_close(block, expected)
    out = method.loss(x, y)
    out["loss"].backward()
    assert all(p.grad is None for p in method.backbone.parameters())
    assert method.head.weight.grad is not None


# ------------------------------------------------------------------------------------------------ distill
def test_distill_trains_resumes_and_trains_its_teacher_once(
    tiny_zoo, tiny_config, tmp_path, count_teacher_fits
):
    import transferlab as tl

    cfg = _cfg(tiny_config, "distill")
    result = tl.run(cfg, out_dir=tmp_path / "a")
    assert len(count_teacher_fits) == 1
    assert {"train_ce", "train_kd"} <= set(result.history[-1])
    # the teacher is the ensemble run of the same cell: same initial weights, stream and selection
    ensemble = tl.run(_cfg(tiny_config, "ensemble"), out_dir=tmp_path / "ens")
    for k in ("best_val", "best_step", "test_at_best_val", "test_last"):
        assert result.extra[f"teacher_{k}"] == ensemble.metrics[k], k
    assert result.extra["student"] == "test_tiny_digits" and result.extra["teacher_iterations"] == 12
    # interrupted once, resumed once: the teacher is trained in the first attempt only
    assert_resumes_exactly(cfg, tmp_path / "b", result)
    assert len(count_teacher_fits) == 2
    assert (tmp_path / "b" / "teacher.pt").exists() and (tmp_path / "b" / "teacher" / "metrics.json").exists()


def test_distill_teacher_cache_is_reused_frozen_and_best_val(
    tiny_zoo, tiny_config, tmp_path, count_teacher_fits
):
    from transferlab.evaluate import evaluate
    from transferlab.experiment import prepared_method

    cfg = _cfg(tiny_config, "distill", student=SECOND, teacher_iterations=12)
    first, data = prepared_method(cfg, tmp_path)
    assert len(count_teacher_fits) == 1
    mtime = (tmp_path / "teacher.pt").stat().st_mtime_ns
    second, _ = prepared_method(cfg, tmp_path)
    assert len(count_teacher_fits) == 1 and (tmp_path / "teacher.pt").stat().st_mtime_ns == mtime
    for (k, a), b in zip(first.teacher.state_dict().items(), second.teacher.state_dict().values()):
        assert torch.equal(a, b), k
    assert second.teacher_info == first.teacher_info and second.artifacts()["teacher_iterations"] == 12
    # the kept weights are the best-validation ones (step 8 of 12 here), not the last: their validation numbers are
    # those the teacher's learning curve logged at its best step
    info = second.teacher_info
    curve = {
        e["step"]: e
        for e in map(json.loads, (tmp_path / "teacher" / "history.jsonl").read_text().splitlines())
    }
    assert info["teacher_best_step"] == 8 and info["teacher_last_step"] == 12
    val = evaluate(second.teacher.predict, data.val(), 4)
    assert val["top1"] == info["teacher_best_val"] == curve[8]["val_top1"]
    assert (
        val["loss"] == pytest.approx(curve[8]["val_loss"], rel=1e-12) and val["loss"] != curve[12]["val_loss"]
    )
    # frozen: no trainable parameter, eval mode whatever the method does, not in the optimiser
    second.train()
    assert not second.teacher.training and not any(m.training for m in second.teacher.modules())
    assert not any(p.requires_grad for p in second.teacher.parameters())
    params = {id(p) for g in second.param_groups(cfg.optim) for p in g["params"]}
    assert params == {id(p) for p in second.backbone.parameters()}
    assert second.student_name == SECOND
    # a cache written for other settings is deleted and the teacher trained again
    saved = torch.load(tmp_path / "teacher.pt", weights_only=True)
    torch.save({**saved, "key": "stale"}, tmp_path / "teacher.pt")
    prepared_method(cfg, tmp_path)
    assert len(count_teacher_fits) == 2


def test_distill_loss(tiny_zoo, tiny_config):
    from transferlab.methods.regularizers import kd_loss

    x, y = _batch()
    method = _build(tiny_config, "distill", alpha=0.0).train()
    out = method.loss(x, y)
    assert torch.equal(out["loss"], F.cross_entropy(method.backbone(x), y))
    out["loss"].backward()
    grads = [p.grad.clone() for p in method.backbone.parameters()]
    method.zero_grad()
    F.cross_entropy(method.backbone(x), y).backward()
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, method.backbone.parameters()))
    assert all(p.grad is None for p in method.teacher.parameters())
    # α = 0.3, soft targets: the mean of the members' tempered softmaxes (at T = 1, the ensemble's prediction)
    for targets in ("prob", "logits"):
        method = _build(tiny_config, "distill", alpha=0.3, temperature=2.0, soft_targets=targets).train()
        with torch.no_grad():
            z = [m(x) for m in method.teacher.backbone]
            s = method.backbone(x)
            if targets == "prob":
                p = torch.stack([F.softmax(t / 2.0, 1) for t in z]).mean(0)
            else:
                p = F.softmax((z[0] + z[1]) / 2 / 2.0, 1)
            torch.testing.assert_close(F.softmax(method.teacher_logits(x) / 2.0, 1), p)
            expected = 0.7 * F.cross_entropy(s, y) + 0.3 * kd_loss(s, method.teacher_logits(x), 2.0, True)
            torch.testing.assert_close(method.loss(x, y)["loss"], expected)
    one = _build(tiny_config, "distill", temperature=1.0)
    torch.testing.assert_close(one.teacher_logits(x), one.teacher.predict(x))


# ------------------------------------------------------------------------------------------------ errors
def test_bad_parameters_fail_before_training(tiny_zoo, tiny_hub, tiny_config, tmp_path, monkeypatch):
    import transferlab as tl
    from transferlab import experiment
    from transferlab.config import ConfigError

    monkeypatch.setattr(experiment, "fit", lambda *a, **k: pytest.fail("trained despite a bad parameter"))
    bad = [
        ("ensemble", {"combine": "median"}, "combine.*prob, logits"),
        ("feature_concat", {"normalize": "maybe"}, "normalize"),
        ("distill", {"temperature": 0}, "temperature"),
        ("distill", {"alpha": 1.5}, "alpha"),
        ("distill", {"soft_targets": "vote"}, "soft_targets.*prob, logits"),
        ("distill", {"teacher_iterations": -1}, "teacher_iterations"),
        ("distill", {"teacher": "x"}, "no parameter"),
    ]
    for method, params, match in bad:
        with pytest.raises(ConfigError, match=match):
            _cfg(tiny_config, method, **params)
    with pytest.raises(
        ConfigError, match=f"valid: test_tiny_digits, {SECOND}"
    ):  # checked when the hub is known
        tl.run(_cfg(tiny_config, "distill", student="nope"), out_dir=tmp_path / "s")
    assert not (tmp_path / "s" / "teacher.pt").exists()
    for method in ("ensemble", "feature_concat", "distill"):
        with pytest.raises(ConfigError, match=f"hub:{HUB}"):  # names the valid hubs
            tl.run(tiny_config(method=method, pretrained=f"mini:{tiny_hub}"), out_dir=tmp_path / method)
        with pytest.raises(ConfigError, match="backbone 'resnet18'"):
            tl.run(_cfg(tiny_config, method).replace(backbone="resnet18"), out_dir=tmp_path / f"{method}18")


def test_log_mean_softmax_helper():
    from transferlab.methods.hub_ensemble import combine_logits

    z = [torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)]
    expected = torch.log(sum(F.softmax(t, 1) for t in z) / 3)
    torch.testing.assert_close(combine_logits(z, "prob"), expected)
    assert combine_logits(z, "prob").exp().sum(1).sub(1).abs().max() < 1e-6
    assert math.isclose(combine_logits([z[0]], "logits").sub(z[0]).abs().max().item(), 0.0)
