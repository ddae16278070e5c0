"""Golden checks of Co-Tuning's pieces against the official code's outputs (``../shared/anchors``, README §1).

Skipped cleanly where the anchors folder is absent (a user's machine). Tolerances are the anchors README's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from golden import anchor
from transferlab.methods.relationship import (
    C_GRID,
    T_CAL,
    calibrate,
    direct_relationship,
    reverse_relationship,
    soft_label_loss,
)


def test_golden_soft_label_loss_value_and_gradients():
    a = anchor("co_tuning_loss")
    logits = torch.tensor(a["logits"], requires_grad=True)
    target = torch.tensor(a["target"], requires_grad=True)
    loss = soft_label_loss(logits, target)
    loss.backward()
    np.testing.assert_allclose(loss.item(), a["loss"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(logits.grad.numpy(), a["grad_logits"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(target.grad.numpy(), a["grad_target"], rtol=1e-10, atol=1e-12)


def test_golden_direct_relationship_official_and_tllib_variants():
    a = anchor("co_tuning_direct")
    both = np.concatenate([a["train_logits"], a["val_logits"]])
    labels = np.concatenate([a["train_labels"], a["val_labels"]])
    official = direct_relationship(both, labels, temperature=float(a["temperature"]))
    tllib = direct_relationship(a["train_logits"], a["train_labels"], temperature=1.0)
    np.testing.assert_allclose(official, a["R_official_direct"], rtol=1e-12, atol=1e-14, equal_nan=True)
    np.testing.assert_allclose(tllib, a["R_tllib_direct"], rtol=1e-12, atol=1e-14, equal_nan=True)
    assert float(a["temperature"]) == T_CAL


@pytest.mark.parametrize("case", ["a", "b", "c"])
def test_golden_calibration_scale_and_lbfgs_trajectory(case):
    a = anchor("co_tuning_calibrate")
    scale, log = calibrate(a[f"{case}_logits"], a[f"{case}_labels"], return_log=True)
    np.testing.assert_allclose(scale, a[f"{case}_scale"], rtol=1e-6)
    assert len(log) == int(a[f"{case}_n_step_calls"])  # the early-stop rule (case c: all 20 calls)
    np.testing.assert_allclose(log, a[f"{case}_lbfgs_log"], rtol=1e-6)


@pytest.mark.parametrize("case", ["a", "b"])
def test_golden_reverse_relationship_on_the_planted_datasets(case):
    a = anchor("co_tuning_relationship")
    out = reverse_relationship(
        a[f"{case}_train_logits"], a[f"{case}_train_labels"], a[f"{case}_val_logits"], a[f"{case}_val_labels"]
    )
    np.testing.assert_array_equal(np.array(C_GRID), a[f"{case}_C_grid"])
    np.testing.assert_array_equal(out["val_acc"], a[f"{case}_val_acc"])
    assert out["chosen_index"] == int(a[f"{case}_chosen_index"])
    np.testing.assert_allclose(out["coef"], a[f"{case}_coef"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(out["scale"], a[f"{case}_scale"], rtol=1e-6)
    np.testing.assert_allclose(out["source_marginal"], a[f"{case}_source_marginal"], rtol=1e-10)
    np.testing.assert_allclose(
        out["p_target_given_source"], a[f"{case}_p_target_given_source"], rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(out["R"], a[f"{case}_R"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(out["R"].sum(1), 1.0, rtol=1e-12)
    if case == "a":  # the known answer on the planted structure
        assert out["R"].argmax(1).tolist() == [3, 9, 13, 16]


def test_relationship_rows_are_distributions_and_binary_targets_work():
    rng = np.random.default_rng(0)
    train, val = rng.normal(size=(40, 6)), rng.normal(size=(20, 6))
    ytr, yva = np.arange(40) % 2, np.arange(20) % 2
    train[ytr == 1, :3] += 2.0
    val[yva == 1, :3] += 2.0
    out = reverse_relationship(train, ytr, val, yva)
    assert out["R"].shape == (2, 6) and np.allclose(out["R"].sum(1), 1.0)
    assert out["R"][1, :3].sum() > out["R"][0, :3].sum()  # class 1 relates to the lifted source classes


# ---------------------------------------------------------------------------------------------- the method
import transferlab as tl  # noqa: E402
from transferlab.config import ConfigError  # noqa: E402
from transferlab.methods import co_tuning as co_tuning_module  # noqa: E402
from transferlab.tasks.classification import Classification  # noqa: E402


def _co_tuning(tiny_config, tiny_hub, **params):
    return tiny_config(
        method="co_tuning", pretrained=f"mini:{tiny_hub}", head_lr_mult=10.0, method_params=params
    )


def test_co_tuning_trains_both_heads_and_saves_its_relationship(tiny_config, tiny_hub, tmp_path):
    cfg = _co_tuning(tiny_config, tiny_hub)
    result = tl.run(cfg, out_dir=tmp_path)
    info = result.extra["co_tuning"]
    assert info["relationship"] == "reverse" and info["chosen_C"] in C_GRID
    assert {"train_ce", "train_co_tuning", "train_loss"} <= set(result.history[-1])
    with np.load(tmp_path / co_tuning_module.RELATIONSHIP_FILE) as saved:
        r = saved["R"]
    assert r.shape == (4, 10) and np.allclose(r.sum(1), 1.0)  # 4 tiny classes × the 10-way digits source head


def test_the_relationship_is_reused_only_when_it_was_made_by_the_same_inputs(
    tiny_config, tiny_hub, tmp_path, monkeypatch
):
    from transferlab import data as tl_data
    from transferlab.data.splits import make_splits
    from transferlab.experiment import PrepareData
    from transferlab.methods import METHODS

    cfg = _co_tuning(tiny_config, tiny_hub, relationship="direct")
    source = tl_data.load(cfg.data.dataset, cfg.data.data_root)
    splits = make_splits(source.train.targets, len(source.test), cfg.data, cfg.seed)
    preset = tl_data.TRANSFORMS.get(source.preset)

    def prepared(cfg, splits):
        method = METHODS.get("co_tuning").build(cfg, Classification(source.num_classes)).eval()
        method.prepare(PrepareData(source, splits, preset, cfg, "cpu", tmp_path))
        return method

    first = prepared(cfg, splits).relationship.clone()
    calls = []
    real = co_tuning_module.direct_relationship
    monkeypatch.setattr(
        co_tuning_module, "direct_relationship", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    assert torch.equal(prepared(cfg, splits).relationship, first) and not calls  # same inputs: reused
    other = make_splits(source.train.targets, len(source.test), cfg.data, seed=cfg.seed + 1)
    prepared(cfg, other)
    assert calls  # other training images: recomputed, never the stale file


def test_co_tuning_parameters_and_weights_are_checked_before_training(tiny_config, tiny_hub):
    with pytest.raises(ConfigError, match="reverse, direct or file"):
        _co_tuning(tiny_config, tiny_hub, relationship="bayes")
    with pytest.raises(ConfigError, match="trade_off"):
        _co_tuning(tiny_config, tiny_hub, trade_off=-1)
    with pytest.raises(ConfigError, match="fine-tunes one pre-trained model"):
        tiny_config(method="co_tuning", pretrained="none")
    from transferlab.methods import METHODS
    from transferlab.models import build_backbone

    headless = build_backbone("mini_resnet", f"mini:{tiny_hub}")  # weights whose classifier was not kept
    headless.reset_head(4, keep_source=False)
    with pytest.raises(ConfigError, match="source head"):
        METHODS.get("co_tuning")(headless, Classification(4), METHODS.get("co_tuning").Config())


def test_bad_relationships_labels_and_validation_splits_are_clear_errors(tiny_config, tiny_hub, tmp_path):
    from transferlab.methods.relationship import check_relationship, check_validation

    with pytest.raises(ValueError, match=r"shape \(3, 10\).*\[4, 10\]"):
        check_relationship(np.full((3, 10), 0.1), 4, 10)
    nan_row = np.full((4, 10), 0.1)
    nan_row[2] = np.nan
    with pytest.raises(ValueError, match=r"rows \[2\]"):
        check_relationship(nan_row, 4, 10)
    with pytest.raises(ValueError, match="too few to choose C"):
        check_validation(np.array([0, 0, 1]), 4)
    check_validation(np.array([0, 1, 2, 2]), 4)
    with pytest.raises(ConfigError, match="relationship_file"):
        _co_tuning(tiny_config, tiny_hub, relationship="file")
    # a relationship of the wrong shape given as a file fails in prepare(), before any training step
    bad = tmp_path / "r.npy"
    np.save(bad, np.full((4, 7), 1 / 7))
    cfg = _co_tuning(tiny_config, tiny_hub, relationship="file", relationship_file=str(bad))
    with pytest.raises(ValueError, match=r"shape \(4, 7\)"):
        tl.run(cfg, out_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    good = tmp_path / "good.npy"
    np.save(good, np.full((4, 10), 0.1))
    result = tl.run(_co_tuning(tiny_config, tiny_hub, relationship="file", relationship_file=str(good)),
                    out_dir=tmp_path / "run2")  # fmt: skip
    assert result.extra["co_tuning"]["relationship"].startswith("file")


def test_a_target_label_outside_the_head_is_a_clear_error(tiny_config, tiny_hub, tmp_path):
    from transferlab import data as tl_data
    from transferlab.data.splits import make_splits
    from transferlab.experiment import PrepareData
    from transferlab.methods import METHODS

    cfg = _co_tuning(tiny_config, tiny_hub)
    source = tl_data.load(cfg.data.dataset, cfg.data.data_root)
    splits = make_splits(source.train.targets, len(source.test), cfg.data, cfg.seed)
    method = (
        METHODS.get("co_tuning").build(cfg, Classification(3)).eval()
    )  # a 3-way head for a 4-class dataset
    with pytest.raises(ValueError, match="outside the 3-way head"):
        method.prepare(
            PrepareData(source, splits, tl_data.TRANSFORMS.get(source.preset), cfg, "cpu", tmp_path)
        )


def test_the_exploration_notebook_runs_and_draws_both_relationships(tmp_path, tiny_hub):
    """``notebooks/explore_co_tuning.py`` executed by papermill as a user would (a digits source and target). The
    kernel is its own process: a ``sitecustomize`` registers the session's tiny hub model there too (pre-trained
    and cached already), so the test never pre-trains the real hub."""
    import json
    import os

    from transferlab import nbexec

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "from transferlab.models.mini_hub import MINI_HUB, HubModel\n"
        f"MINI_HUB.register({tiny_hub!r})(HubModel({tiny_hub!r}, 'test stand-in', 'mini_hub_digits', 'supervised', "
        "'scikit-learn digits', iterations=10, batch_size=32))\n"
    )
    path = nbexec.pythonpath_with_lib(os.environ.get("PYTHONPATH"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), path])}
    ipynb = nbexec.notebook_ipynb("explore_co_tuning", tmp_path)
    code, tail = nbexec.execute_notebook(
        ipynb,
        tmp_path / "out.ipynb",
        {"source": f"mini:{tiny_hub}", "dataset": "mini_digits"},
        env,
        tmp_path / "log",
    )
    assert code == 0, tail
    cells = json.loads((tmp_path / "out.ipynb").read_text())["cells"]
    images = [o for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the reverse and the direct heat maps
    text = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    assert "chosen_C" in text and "largest absolute difference" in text
