"""Pure building blocks: registries, RunConfig, lr schedules, splits, batch augmentation and evaluation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transferlab.config import (
    RUNTIME_FIELDS,
    ConfigError,
    DataConfig,
    OptimConfig,
    RunConfig,
    flat_field_names,
)
from transferlab.data import DATASETS, TRANSFORMS
from transferlab.data.splits import SplitIndices, make_splits, per_class_sample
from transferlab.data.transforms import MINI_MEAN, MINI_STD, Preset
from transferlab.experiment import check
from transferlab.registry import Registry, RegistryError
from transferlab.schedules import lr_factor
from transferlab.tasks.classification import Classification


# ----------------------------------------------------------------------------------------------------- registry
@pytest.fixture
def widgets() -> Registry:
    reg: Registry[int] = Registry("widget")
    reg.register("alpha")(1)
    reg.register("beta")(2)
    reg.register("gamma_ray")(3)
    return reg


def test_registry_lookup(widgets):
    assert widgets.get("beta") == 2
    assert widgets.names() == ["alpha", "beta", "gamma_ray"]
    assert list(widgets) == widgets.names()
    assert "alpha" in widgets and "delta" not in widgets
    assert len(widgets) == 3
    widgets.check("alpha")  # no error


def test_registry_unknown_lists_valid_names_and_suggests(widgets):
    with pytest.raises(RegistryError) as err:
        widgets.get("alpah")
    msg = str(err.value)
    assert "unknown widget 'alpah'" in msg
    assert "Did you mean 'alpha'?" in msg
    assert "Valid widgets: alpha, beta, gamma_ray" in msg
    assert isinstance(err.value, KeyError)
    assert not msg.startswith('"')  # readable, not KeyError's quoted repr


def test_registry_unknown_without_close_match(widgets):
    with pytest.raises(RegistryError) as err:
        widgets.check("zzzzzz")
    assert "Did you mean" not in str(err.value)
    assert "alpha, beta, gamma_ray" in str(err.value)


def test_registry_refuses_duplicates(widgets):
    with pytest.raises(RegistryError, match="registered twice"):
        widgets.register("alpha")(9)
    assert widgets.get("alpha") == 1


def test_real_registry_suggests_dataset():
    with pytest.raises(RegistryError, match="Did you mean 'mini_fmnist'"):
        DATASETS.get("mini_fmnst")


# ------------------------------------------------------------------------------------------------------ config
def test_default_config_is_valid():
    cfg = RunConfig()
    assert cfg.data == DataConfig() and cfg.optim == OptimConfig()
    assert RunConfig.from_flat({}) == cfg
    assert set(cfg.to_flat()) == set(flat_field_names())
    assert len(flat_field_names()) == len(set(flat_field_names()))  # flat keys are unique


def _custom(tiny_config) -> RunConfig:
    return tiny_config(
        seed=3,
        sample_rate=0.3,
        schedule="multistep",
        milestones=[5, 9],
        warmup_steps=2,
        nesterov=False,
        ten_crop=False,
        precision="fp32",
    )


def test_flat_round_trip(tiny_config):
    for cfg in (RunConfig(), _custom(tiny_config)):
        flat = cfg.to_flat()
        assert json.loads(json.dumps(flat)) == flat  # JSON-friendly (tuples became lists)
        again = RunConfig.from_flat(json.loads(json.dumps(flat)))
        assert again == cfg
        assert again.to_flat() == flat
        assert again.config_hash() == cfg.config_hash()
    assert _custom(tiny_config).optim.milestones == (5, 9)


def test_config_hash_stable_and_sensitive(tiny_config):
    cfg = _custom(tiny_config)
    h = cfg.config_hash()
    assert len(h) == 16 and int(h, 16) >= 0
    assert _custom(tiny_config).config_hash() == h  # built twice
    reordered = dict(reversed(list(cfg.to_flat().items())))
    assert RunConfig.from_flat(reordered).config_hash() == h  # key order does not matter
    assert cfg.replace(lr=0.02).config_hash() != h
    assert cfg.replace(seed=4).config_hash() != h
    assert cfg.replace(sample_rate=0.5).config_hash() != h
    assert h[:8] in cfg.run_id() and "r30" in cfg.run_id() and "s3" in cfg.run_id()


def test_runtime_fields_excluded_from_hash(tiny_config):
    cfg = _custom(tiny_config)
    assert {"data_root", "num_workers", "device"} <= RUNTIME_FIELDS
    moved = cfg.replace(data_root="/elsewhere/data", num_workers=4, device="cuda:1", checkpoint_every=3)
    assert moved != cfg
    assert moved.config_hash() == cfg.config_hash()
    assert moved.run_id() == cfg.run_id()


def test_coercion_of_papermill_values(tiny_config):
    cfg = tiny_config(
        lr=1, momentum="0.5", iterations=20.0, milestones="4, 8,12", nesterov="true", ten_crop="False"
    )
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.momentum == 0.5
    assert cfg.optim.iterations == 20 and isinstance(cfg.optim.iterations, int)
    assert cfg.optim.milestones == (4, 8, 12)
    assert cfg.optim.nesterov is True and cfg.data.ten_crop is False
    assert tiny_config(milestones=[3, 6]).optim.milestones == (3, 6)
    assert tiny_config(milestones=7).optim.milestones == (7,)
    assert tiny_config(milestones="").optim.milestones == ()
    assert tiny_config(nesterov=0).optim.nesterov is False
    assert tiny_config(method_params="{}").method_params == {}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("iterations", 2.5),
        ("lr", "fast"),
        ("nesterov", "maybe"),
        ("dataset", 3),
        ("milestones", "a,b"),
        ("seed", True),
    ],
)
def test_coercion_refuses_wrong_types(tiny_config, key, value):
    with pytest.raises(ConfigError, match=f"{key}=.*wrong type"):
        tiny_config(**{key: value})


@pytest.mark.parametrize(
    ("key", "value", "names"),
    [
        ("dataset", "mini_fmnst", ["mini_fmnist", "mini_digits", "Did you mean 'mini_fmnist'"]),
        ("method", "fine_tune", ["finetune", "scratch"]),
        ("backbone", "resnet_18", ["resnet18", "resnet50", "mini_resnet"]),
    ],
)
def test_unknown_names_are_config_errors_listing_valid(key, value, names):
    with pytest.raises(ConfigError) as err:
        check(RunConfig.from_flat({key: value}))
    for name in names:
        assert name in str(err.value)


@pytest.mark.parametrize("rate", [0, 0.0, 1.5, -0.1])
def test_sample_rate_out_of_range(rate):
    with pytest.raises(ConfigError, match=r"sample_rate=.* must lie in \(0, 1\]"):
        RunConfig.from_flat({"sample_rate": rate})


def test_shots_and_sample_rate_exclusive():
    with pytest.raises(ConfigError, match="either shots .* or sample_rate"):
        RunConfig.from_flat({"shots": 5, "sample_rate": 0.5})
    assert RunConfig.from_flat({"shots": 5}).data.shots == 5
    with pytest.raises(ConfigError, match="shots"):
        RunConfig.from_flat({"shots": -1})


def test_unknown_flat_key_lists_valid_parameters():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_flat({"learning_rate": 0.1})
    msg = str(err.value)
    assert "learning_rate" in msg and "valid parameters" in msg
    assert "lr" in msg and "sample_rate" in msg


def test_unknown_method_param():
    with pytest.raises(ConfigError, match=r"method 'finetune' has no parameter\(s\) \['alpha'\]"):
        check(RunConfig.from_flat({"method_params": {"alpha": 0.1}}))


@pytest.mark.parametrize(
    ("key", "value", "valid"),
    [
        ("protocol", "full", "mini, paper, demo"),
        ("optimizer", "rmsprop", "sgd, adam"),
        ("schedule", "step", "constant, multistep, cosine"),
        ("precision", "fp16", "auto, bf16, fp32"),
    ],
)
def test_bad_choices_name_valid_values(key, value, valid):
    with pytest.raises(ConfigError, match=f"{key}='{value}' is not valid; choose one of: {valid}"):
        RunConfig.from_flat({key: value})


@pytest.mark.parametrize(
    "flat",
    [
        {"lr": 0},
        {"iterations": 0},
        {"milestones": "8,4"},
        {"val_fraction": 1.0},
        {"batch_size": 0},
        {"device": "tpu"},
        {"lr": float("nan")},
        {"lr": float("inf")},
        {"seed": -1},
        {"sample_rate": "abc"},
        {"pretrained": "mini:"},
        {"pretrained": "hbu:mini"},
        {"pretrained": "DEFAULT"},
    ],
)
def test_other_bad_values(flat):
    with pytest.raises(ConfigError):
        RunConfig.from_flat(flat)


# --------------------------------------------------------------------------------------------------- schedules
def test_multistep_schedule():
    o = OptimConfig(schedule="multistep", milestones=(3, 6), gamma=0.1, iterations=10)
    got = [lr_factor(o, s) for s in range(10)]
    want = [1.0] * 3 + [0.1] * 3 + [0.01] * 4
    assert got == pytest.approx(want, rel=1e-12)
    assert lr_factor(OptimConfig(schedule="multistep"), 999) == 1.0  # no milestones: constant


def test_cosine_schedule():
    o = OptimConfig(schedule="cosine", iterations=10)
    for s in range(11):
        assert lr_factor(o, s) == pytest.approx(0.5 * (1 + math.cos(math.pi * s / 10)), abs=1e-12)
    assert lr_factor(o, 0) == 1.0
    assert lr_factor(o, 5) == pytest.approx(0.5)
    assert lr_factor(o, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(o, 50) == pytest.approx(0.0, abs=1e-12)  # clamped past the end


def test_warmup():
    const = OptimConfig(schedule="constant", warmup_steps=4, iterations=10)
    assert [lr_factor(const, s) for s in range(6)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    cos = OptimConfig(schedule="cosine", warmup_steps=2, iterations=10)
    assert lr_factor(cos, 0) == pytest.approx(0.5)  # warm-up × cosine at t = 0
    assert lr_factor(cos, 1) == pytest.approx(1.0)
    assert lr_factor(cos, 2) == pytest.approx(1.0)  # the cosine starts after warm-up
    assert lr_factor(cos, 6) == pytest.approx(0.5)  # halfway through the 8 post-warm-up steps
    multi = OptimConfig(schedule="multistep", milestones=(1,), warmup_steps=2, iterations=10)
    assert lr_factor(multi, 1) == pytest.approx(0.1 * 1.0)
    assert lr_factor(multi, 0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        lr_factor(const, -1)


# ------------------------------------------------------------------------------------------------------ splits
CLASS_SIZES = [100, 37, 10, 1]


def _targets(seed: int = 0) -> np.ndarray:
    t = np.concatenate([np.full(n, c) for c, n in enumerate(CLASS_SIZES)])
    return np.random.default_rng(seed).permutation(t)


@pytest.mark.parametrize(
    ("rate", "counts"),
    [(0.15, [15, 6, 2, 1]), (0.3, [30, 12, 3, 1]), (0.5, [50, 19, 5, 1]), (1.0, [100, 37, 10, 1])],
)
def test_per_class_sampling_rates(rate, counts):
    t = _targets()
    idx = per_class_sample(t, np.random.default_rng(0), rate=rate)
    assert np.bincount(t[idx], minlength=4).tolist() == counts
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)


def test_per_class_k_shot():
    t = _targets()
    idx = per_class_sample(t, np.random.default_rng(0), shots=5)
    assert np.bincount(t[idx], minlength=4).tolist() == [5, 5, 5, 1]


def _check_split(s: SplitIndices, t: np.ndarray, n_test: int) -> None:
    assert len(np.intersect1d(s.train, s.val)) == 0
    assert s.train.max() < len(t) and s.val.max() < len(t)  # both index the train part
    assert s.test.tolist() == list(range(n_test))  # the whole test part, untouched
    assert set(t[s.train]) == set(range(4))  # every class trains


@pytest.mark.parametrize(
    ("rate", "counts"), [(0.15, [15, 6, 2, 1]), (0.5, [50, 19, 5, 1]), (1.0, CLASS_SIZES)]
)
def test_make_splits_carves_val_from_sample(rate, counts):
    t = _targets()
    s = make_splits(t, 25, DataConfig(sample_rate=rate, val_fraction=0.2), seed=0)
    _check_split(s, t, 25)
    pool = np.concatenate([s.train, s.val])
    assert np.bincount(t[pool], minlength=4).tolist() == counts
    n_val = np.bincount(t[s.val], minlength=4)
    for c, n in enumerate(counts):
        want = 0 if n < 2 else min(max(1, round(0.2 * n)), n - 1)
        assert n_val[c] == want
    # every class with two or more images validates
    assert set(t[s.val]) == {c for c, n in enumerate(counts) if n >= 2}


def test_make_splits_k_shot_and_no_val():
    t = _targets()
    s = make_splits(t, 10, DataConfig(shots=4, val_fraction=0.25), seed=1)
    _check_split(s, t, 10)
    assert np.bincount(t[s.train], minlength=4).tolist() == [3, 3, 3, 1]
    assert np.bincount(t[s.val], minlength=4).tolist() == [1, 1, 1, 0]
    s0 = make_splits(t, 10, DataConfig(sample_rate=0.5, val_fraction=0.0), seed=1)
    assert len(s0.val) == 0 and len(s0.train) == 50 + 19 + 5 + 1


def test_make_splits_seeding():
    t = _targets()
    cfg = DataConfig(sample_rate=0.3, val_fraction=0.2)
    a, b, c = make_splits(t, 5, cfg, 0), make_splits(t, 5, cfg, 0), make_splits(t, 5, cfg, 1)
    assert a.to_json() == b.to_json()
    assert a.train.tolist() != c.train.tolist()
    # val_fraction changes only the carving, never which images are sampled
    d = make_splits(t, 5, DataConfig(sample_rate=0.3, val_fraction=0.4), 0)
    assert np.array_equal(np.union1d(a.train, a.val), np.union1d(d.train, d.val))


def test_split_indices_json_round_trip():
    s = make_splits(_targets(), 7, DataConfig(sample_rate=0.5), seed=2)
    again = SplitIndices.from_json(json.loads(json.dumps(s.to_json())))
    for k in ("train", "val", "test"):
        assert np.array_equal(getattr(again, k), getattr(s, k))
        assert getattr(again, k).dtype == np.int64
    assert again.to_json() == s.to_json()


# -------------------------------------------------------------------------------------------------- transforms
def _batch(b: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (b, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_augment_batch_is_a_function_of_the_generator_seed():
    preset = TRANSFORMS.get("mini")
    x = _batch()
    before = x.clone()
    a = preset.augment_batch(x, torch.Generator().manual_seed(5))
    b = preset.augment_batch(x, torch.Generator().manual_seed(5))
    c = preset.augment_batch(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(x, before)  # the input is not modified
    assert a.dtype == torch.uint8 and a.shape == x.shape
    torch.manual_seed(0)
    d = preset.augment_batch(x, torch.Generator().manual_seed(5))
    torch.manual_seed(1)
    # the global RNG is irrelevant
    assert torch.equal(d, preset.augment_batch(x, torch.Generator().manual_seed(5)))


def _shifted(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """out[r, c] = img[r + dy, c + dx], zero outside (a crop of the zero-padded image)."""
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    for r in range(h):
        for c in range(w):
            if 0 <= r + dy < h and 0 <= c + dx < w:
                out[..., r, c] = img[..., r + dy, c + dx]
    return out


def test_augment_batch_shifts():
    preset = TRANSFORMS.get("mini_noflip")
    assert preset.shift == 2 and not preset.flip
    x = _batch(16)
    out = preset.augment_batch(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # the same draws, in the documented order (dy, then dx)
    dy = torch.randint(0, 5, (16,), generator=g) - 2
    dx = torch.randint(0, 5, (16,), generator=g) - 2
    assert len(set(zip(dy.tolist(), dx.tolist()))) > 3
    for i in range(16):
        assert torch.equal(out[i], _shifted(x[i], int(dy[i]), int(dx[i])))


def test_augment_batch_flips():
    preset = Preset("flip_only", MINI_MEAN, MINI_STD, train=None, test=None, shift=0, flip=True)
    x = _batch(32)
    out = preset.augment_batch(x, torch.Generator().manual_seed(4))
    flipped = torch.rand(32, generator=torch.Generator().manual_seed(4)) < 0.5
    assert 0 < int(flipped.sum()) < 32
    for i in range(32):
        assert torch.equal(out[i], x[i].flip(-1) if flipped[i] else x[i])
    none = Preset("none", MINI_MEAN, MINI_STD, train=None, test=None)
    assert torch.equal(none.augment_batch(x, torch.Generator().manual_seed(4)), x)


def test_normalize():
    preset = TRANSFORMS.get("mini")
    x = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    y = preset.normalize(x).flatten()
    assert y.tolist() == pytest.approx([(0 - MINI_MEAN[0]) / MINI_STD[0], (1 - MINI_MEAN[0]) / MINI_STD[0]])


# ---------------------------------------------------------------------------------------------------- evaluate
def _identity(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)  # the "input" is the logits themselves


def evaluate(predict, batches, num_classes):
    r = Classification(num_classes).evaluate(predict, batches)
    return {"top1": r["value"], "loss": r["loss"], "n": r["n"], **r["extras"]}


def test_evaluate_top1_per_class_and_loss():
    logits = torch.tensor(
        [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    )
    y = torch.tensor([0, 1, 1, 1, 0])  # correct: 0, 1; wrong: 2, 3; sample 4 ties → argmax 0 → correct
    batches = [(logits[:2], y[:2]), (logits[2:], y[2:])]
    r = evaluate(_identity, batches, num_classes=4)
    assert r["n"] == 5
    assert r["top1"] == pytest.approx(60.0)
    assert r["per_class"] == [100.0, pytest.approx(33.3333, abs=1e-4), None, None]
    p_right = math.exp(2) / (math.exp(2) + 2)
    want_loss = (-math.log(p_right) * 2 - math.log(1 / (math.exp(2) + 2)) * 2 + math.log(3)) / 5
    assert r["loss"] == pytest.approx(want_loss, rel=1e-6)
    assert r["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)


def test_evaluate_ten_crop_sums_logits():
    # Nine crops lean slightly to class 0, one crop strongly to class 1: the sum [9, 10] picks class 1 (a majority
    # vote would pick class 0); the loss is that of the summed logits, not of their mean ([0.9, 1.0]).
    crops = torch.zeros(2, 10, 2, 1, 1)
    crops[0, :9, 0] = 1.0
    crops[0, 9, 1] = 10.0
    crops[1, :, 0] = 0.2  # all crops agree on class 0: sum [2, 0]
    y = torch.tensor([1, 0])
    r = evaluate(_identity, [(crops, y)], num_classes=2)
    assert r["top1"] == 100.0
    assert r["per_class"] == [100.0, 100.0]
    want = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-2.0))) / 2
    assert r["loss"] == pytest.approx(want, rel=1e-5)


def test_evaluate_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        evaluate(_identity, [], num_classes=3)


def test_a_killed_writers_temporary_is_removed_and_a_live_ones_is_kept(tmp_path):
    import os
    import subprocess
    import sys

    from transferlab.results import atomic_write_json, remove_stale_temporaries

    atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    assert list(tmp_path.glob(".*.tmp")) == []  # a completed write leaves nothing behind
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    killed = tmp_path / f".history.jsonl.{int(dead.stdout)}.abc123.tmp"
    live = tmp_path / f".history.jsonl.{os.getpid()}.def456.tmp"
    for p in (killed, live):
        p.write_text("partial")
    assert remove_stale_temporaries(tmp_path) == [killed]
    assert live.exists() and (tmp_path / "metrics.json").exists()
