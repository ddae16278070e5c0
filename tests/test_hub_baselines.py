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
from transferlab.tasks.classification import Classification


def _cfg(tiny_config, method, **params):
    return tiny_config(method=method, pretrained=f"hub:{HUB}", method_params=params)


def _build(tiny_config, method, **params):
    from transferlab.methods import METHODS

    torch.manual_seed(0)
    return METHODS.get(method).build(_cfg(tiny_config, method, **params), Classification(4))


def _batch(n=8):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 28, 28, generator=g), torch.arange(n) % 4


@pytest.fixture
def count_teacher_fits(monkeypatch):
    """Counts fit() calls that train an ``ensemble`` (distillation's teacher is the ensemble cell)."""
    from transferlab import experiment
    from transferlab.methods.hub_ensemble import HubEnsemble

    calls = []
    real = experiment.fit

    def counting(method, *args, **kwargs):
        if isinstance(method, HubEnsemble):
            calls.append(method)
        return real(method, *args, **kwargs)

    monkeypatch.setattr(experiment, "fit", counting)
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
    lone = [FineTune(copy.deepcopy(m), Classification(4), FineTune.Config()).train() for m in method.backbone]
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
def test_distill_uses_the_finished_ensemble_cell_as_its_teacher(
    tiny_zoo, tiny_config, tmp_path, count_teacher_fits
):
    import transferlab as tl
    from transferlab.experiment import run_dir

    cfg = _cfg(tiny_config, "distill")
    result = tl.run(cfg, root=tmp_path)  # trains the ensemble cell first, into its own run folder
    assert len(count_teacher_fits) == 1
    assert {"train_ce", "train_kd"} <= set(result.history[-1])
    teacher_cfg = _cfg(tiny_config, "ensemble")
    teacher_dir = run_dir(teacher_cfg, tmp_path)
    assert result.extra["teacher_run"] == str(teacher_dir) and (teacher_dir / "weights.pt").exists()
    ensemble = tl.run(
        teacher_cfg, root=tmp_path
    )  # the table's ensemble cell: already finished, not trained again
    assert len(count_teacher_fits) == 1
    for k in ("best_val", "best_step", "test_at_best_val", "test_last"):
        assert result.extra[f"teacher_{k}"] == ensemble.metrics[k], k
    assert result.extra["student"] == "test_tiny_digits" and result.extra["teacher_iterations"] == 12
    # interrupted once, resumed once: the teacher (found finished) is never trained again
    assert_resumes_exactly(cfg, tmp_path / "b", result, root=tmp_path)
    assert len(count_teacher_fits) == 1


def test_the_teacher_holds_the_ensembles_best_validation_weights_frozen(tiny_zoo, tiny_config, tmp_path,
                                                                        count_teacher_fits):  # fmt: skip
    import transferlab as tl

    cfg = _cfg(tiny_config, "distill", student=SECOND, teacher_iterations=12)
    method, data = tl.prepared_method(cfg, root=tmp_path)
    info = method.teacher_info
    teacher_dir = tmp_path / info["teacher_run"].split(str(tmp_path) + "/", 1)[1]
    curve = {e["step"]: e for e in map(json.loads, (teacher_dir / "history.jsonl").read_text().splitlines())}
    best = max(curve, key=lambda k: (curve[k]["val_top1"], -k))
    assert info["teacher_best_step"] == best and info["teacher_last_step"] == 12
    saved = torch.load(teacher_dir / "weights.pt", weights_only=True)
    for k, v in method.teacher.state_dict().items():
        assert torch.equal(v, saved[k]), k
    val = Classification(4).evaluate(method.teacher.predict, data.val())
    assert val["value"] == info["teacher_best_val"] == curve[best]["val_top1"]
    # the same weights on the same images; float32 sums in another batch grouping differ in the 7th digit
    assert val["loss"] == pytest.approx(curve[best]["val_loss"], rel=1e-6)
    # frozen: no trainable parameter, eval mode whatever the method does, not in the optimiser
    method.train()
    assert not method.teacher.training and not any(m.training for m in method.teacher.modules())
    assert not any(p.requires_grad for p in method.teacher.parameters())
    params = {id(p) for g in method.param_groups(cfg.optim) for p in g["params"]}
    assert params == {id(p) for p in method.backbone.parameters()}
    assert method.student_name == SECOND
    tl.prepared_method(cfg, root=tmp_path)  # a second look finds the same finished teacher
    assert len(count_teacher_fits) == 1


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
        _cfg(tiny_config, "distill", student="nope")
    for method in ("ensemble", "feature_concat", "distill"):
        with pytest.raises(ConfigError, match=f"hub:{HUB}"):  # names the valid hubs
            tl.run(tiny_config(method=method, pretrained=f"mini:{tiny_hub}"), out_dir=tmp_path / method)
        with pytest.raises(ConfigError, match="backbone 'resnet18'"):
            tl.run(_cfg(tiny_config, method).replace(backbone="resnet18"), out_dir=tmp_path / f"{method}18")


def test_log_mean_softmax_helper():
    combine_logits = Classification(5).combine
    z = [torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)]
    expected = torch.log(sum(F.softmax(t, 1) for t in z) / 3)
    torch.testing.assert_close(combine_logits(z, "prob"), expected)
    assert combine_logits(z, "prob").exp().sum(1).sub(1).abs().max() < 1e-6
    assert math.isclose(combine_logits([z[0]], "logits").sub(z[0]).abs().max().item(), 0.0)
