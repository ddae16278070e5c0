"""Backbones, weights, the training loop (determinism, resume, failure modes), the mini hub and method guards.

Every training run here is a few dozen steps on the 240-image ``test_tiny`` dataset (conftest), and the mini hub
is the 10-step ``test_tiny_digits`` stand-in: no test pre-trains the real hub or reads real weights.
"""

from __future__ import annotations

import functools
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import transferlab
from transferlab import experiment, hubbuild
from transferlab import results as results_mod
from transferlab import train as train_mod
from transferlab.config import ConfigError
from transferlab.data import DATASETS, DatasetSource, SplitIndices, TensorImages, make_splits
from transferlab.data import load as load_dataset
from transferlab.data.transforms import MINI_MEAN, MINI_STD, Preset
from transferlab.methods import METHODS
from transferlab.methods.scratch import Scratch
from transferlab.models import BACKBONES, Backbone, WeightsError, build_backbone, mini_hub
from transferlab.models.weights import hash_prefix, load_checked, sha256_file, torchvision_state_dict
from transferlab.results import Result, load_result
from transferlab.tasks.classification import Classification
from transferlab.train import NonFiniteLossError, fit

RESNET18_FILE = "resnet18-f37072fd.pth"
RESNET18_URL = f"https://download.pytorch.org/models/{RESNET18_FILE}"


def _backbone(name: str, num_classes: int = 10) -> Backbone:
    torch.manual_seed(0)
    return Backbone(BACKBONES.get(name)(num_classes), name).eval()


# --------------------------------------------------------------------------------------------------- backbones
def test_resnet18_shapes():
    net = _backbone("resnet18", 1000)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = net.feature_maps(x)
        feats = net.features(x)
        logits = net(x)
    assert [tuple(m.shape) for m in maps] == [
        (2, 64, 16, 16),
        (2, 64, 16, 16),
        (2, 128, 8, 8),
        (2, 256, 4, 4),
        (2, 512, 2, 2),
    ]
    assert feats.shape == (2, 512) and net.feature_dim == 512
    assert logits.shape == (2, 1000)
    assert torch.allclose(logits, net.head(feats))


def test_mini_resnet_shapes():
    net = _backbone("mini_resnet", 5)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        maps = net.feature_maps(x)
        feats = net.features(x)
    assert [tuple(m.shape) for m in maps] == [(3, 16, 14, 14), (3, 16, 14, 14), (3, 32, 7, 7), (3, 64, 4, 4)]
    assert feats.shape == (3, 64) and net(x).shape == (3, 5)
    assert len(net.stages) == 3
    assert sum(p.numel() for p in net.parameters()) < 100_000


def test_reset_head_keeps_source_and_initialises_new():
    net = _backbone("resnet18", 1000)
    old = net.head
    net.reset_head(200)
    assert net.source_head is old and old.out_features == 1000
    assert net.head is not old and (net.head.in_features, net.head.out_features) == (512, 200)
    w = net.head.weight.detach()
    assert torch.count_nonzero(net.head.bias) == 0
    assert abs(float(w.mean())) < 1e-3
    assert 0.009 < float(w.std()) < 0.011  # N(0, 0.01) over 102,400 weights
    body = {id(p) for p in net.body_parameters()}
    assert not body & {id(p) for p in [*net.head.parameters(), *net.source_head.parameters()]}
    net.reset_head(7, keep_source=False)
    assert net.source_head is None and net.head.out_features == 7


# ----------------------------------------------------------------------------------------------------- weights
@pytest.fixture(scope="module")
def synthetic_resnet18(tmp_path_factory) -> Path:
    """A randomly initialised resnet18 state dict saved under torchvision's IMAGENET1K_V1 file name."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / RESNET18_FILE
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    """An empty torch hub dir and a download that fails as it does offline (never touches the network)."""
    hub = tmp_path / "torch_hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))

    def no_network(url, dst, *args, **kwargs):
        raise OSError(f"<urlopen error [Errno -3] Temporary failure in name resolution> ({url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.delenv("TRANSFERLAB_WEIGHTS_DIR", raising=False)
    return hub


def test_hash_prefix():
    assert hash_prefix(RESNET18_FILE) == "f37072fd"
    assert hash_prefix("resnet50-0676ba61.pth") == "0676ba61"
    assert hash_prefix("plain.pth") is None


def test_weights_checksum_mismatch(synthetic_resnet18, offline_hub, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_WEIGHTS_DIR", str(synthetic_resnet18.parent))
    with pytest.raises(WeightsError) as err:
        torchvision_state_dict("resnet18", "IMAGENET1K_V1")
    msg = str(err.value)
    assert "checksum mismatch" in msg and RESNET18_FILE in msg and "f37072fd" in msg
    with pytest.raises(WeightsError, match="checksum mismatch"):
        build_backbone("resnet18", "IMAGENET1K_V1")
    with pytest.raises(WeightsError, match="checksum mismatch"):  # the explicit directory argument too
        torchvision_state_dict("resnet18", "IMAGENET1K_V1", weights_dir=synthetic_resnet18.parent)
    assert not offline_hub.exists()  # found on disk: no download was attempted


def test_load_checked_with_real_checksum_uses_weights_only(synthetic_resnet18, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    state = load_checked(synthetic_resnet18, sha256_file(synthetic_resnet18)[:8])
    assert calls and all(c.get("weights_only") is True for c in calls)
    net = torchvision.models.resnet18()
    net.load_state_dict(state, strict=True)
    torch.manual_seed(0)
    assert torch.equal(state["fc.weight"], torchvision.models.resnet18().state_dict()["fc.weight"])
    # the full digest works as a prefix too; a wrong one is refused
    load_checked(synthetic_resnet18, sha256_file(synthetic_resnet18))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_checked(synthetic_resnet18, "00000000")


class _NotAWeight:
    """Any pickled object other than tensors and containers: weights_only loading must refuse it."""

    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_load_checked_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "x": _NotAWeight()}, path)
    with pytest.raises(
        WeightsError, match=f"{path} holds pickled objects .* weights_only loading refuses"
    ) as err:
        load_checked(path, None)
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)  # refused by torch, kept for the log


def test_default_weights_refused():
    for backbone in ("resnet18", "resnet50"):
        with pytest.raises(ConfigError, match="'DEFAULT' is refused"):
            build_backbone(backbone, "DEFAULT")


def test_unknown_weights_name_lists_valid():
    with pytest.raises(WeightsError) as err:
        build_backbone("resnet50", "IMAGENET1K_V3")
    assert "IMAGENET1K_V1, IMAGENET1K_V2" in str(err.value)
    with pytest.raises(WeightsError, match="no torchvision weights"):
        build_backbone("mini_resnet", "IMAGENET1K_V1")


def test_missing_weights_offline_names_file_and_url(offline_hub):
    with pytest.raises(WeightsError) as err:
        build_backbone("resnet18", "IMAGENET1K_V1")
    msg = str(err.value)
    assert RESNET18_FILE in msg and RESNET18_URL in msg
    assert str(offline_hub / "checkpoints") in msg  # where to put it
    assert "TRANSFERLAB_WEIGHTS_DIR" in msg
    assert not (offline_hub / "checkpoints" / RESNET18_FILE).exists()


# --------------------------------------------------------------------------------------------------------- fit
def test_overfits_a_single_batch(tiny_config):
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8, generator=gen)
    y = torch.arange(16) % 4
    part = TensorImages(x, y).part()
    source = DatasetSource("one_batch", list("abcd"), part, part, preset="mini")
    every = np.arange(16)
    splits = SplitIndices(every, every, every)  # train = val = test: measures training accuracy
    no_aug = Preset("plain", MINI_MEAN, MINI_STD, train=None, test=None)
    cfg = tiny_config(optimizer="adam", lr=0.01, weight_decay=0, iterations=60, eval_every=20)
    torch.manual_seed(0)
    method = METHODS.get("scratch").build(cfg, Classification(4))
    result = fit(method, source, splits, no_aug, cfg)
    assert result.metrics["test_last"] == 100.0
    assert result.history[-1]["train_loss"] < 0.1
    assert result.cost["train_images"] == 16


@pytest.fixture(scope="module")
def finished(tiny_config, tmp_path_factory) -> tuple:
    """One uninterrupted run (12 steps, evaluations at 4/8/12, an lr drop at step 6): (cfg, run dir, result)."""
    cfg = tiny_config(schedule="multistep", milestones=[6], iterations=12, eval_every=4)
    out = tmp_path_factory.mktemp("runs") / "reference"
    return cfg, out, experiment.run(cfg, out)


def test_metrics_json_contents(finished):
    cfg, out, result = finished
    files = ["config.json", "history.jsonl", "metrics.json", "splits.json"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == files
    assert (out / ".lock").exists()  # the run folder's lock file (an OS lock while a process trains there)
    data = json.loads((out / "metrics.json").read_text())
    for key in ("test_at_best_val", "test_last", "best_step", "best_val", "per_class_at_best_val"):
        assert key in data["metrics"]
    assert data["metrics"]["best_step"] in (4, 8, 12)
    assert data["config_hash"] == cfg.config_hash() and data["config"] == cfg.to_flat()
    assert data["metrics"]["metric"] == "top1" and data["metrics"]["direction"] == "max"
    assert data["metrics"]["task"] == "classification"
    assert [h["step"] for h in data["history"]] == [4, 8, 12]
    assert [h["lr"] for h in data["history"]] == pytest.approx([0.05, 0.005, 0.005])
    assert all("val_top1" in h and "train_loss" in h for h in data["history"])
    assert data["cost"]["train_images"] + data["cost"]["val_images"] == 240
    assert data["cost"]["test_images"] == 80 and data["cost"]["params"] > 0
    assert "git_sha" in data["provenance"] and data["provenance"]["torch"] == torch.__version__
    assert data["extra"]["pretrained_sha256"] is None  # scratch: no pre-trained weights
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert history == data["history"]
    splits = json.loads((out / "splits.json").read_text())
    assert sorted(splits["train"] + splits["val"]) == list(range(240)) and splits["test"] == list(range(80))
    assert load_result(out).to_json() == Result.from_json(data).to_json()
    assert "test_tiny" in result.summary()


def test_same_seed_same_result(finished, tmp_path):
    cfg, _, first = finished
    again = experiment.run(cfg, tmp_path / "again")
    assert again.metrics == first.metrics
    assert again.history == first.history
    other = experiment.run(cfg.replace(seed=1), tmp_path / "other_seed")
    assert other.history != first.history


class _Interrupted(Exception):
    pass


def test_interrupted_run_resumes_exactly(finished, tmp_path, monkeypatch, capsys):
    cfg, _, reference = finished
    out = tmp_path / "interrupted"

    def interrupt(step: int, out_: dict) -> None:
        if step == 6:  # after the checkpoint at step 4, before the one at 8
            raise _Interrupted

    monkeypatch.setattr(experiment, "fit", functools.partial(train_mod.fit, on_step=interrupt))
    with pytest.raises(_Interrupted):
        experiment.run(cfg, out)
    assert (out / train_mod.CHECKPOINT).exists() and not (out / "metrics.json").exists()
    ckpt = torch.load(out / train_mod.CHECKPOINT, map_location="cpu", weights_only=True)
    assert ckpt["next_step"] == 4 and ckpt["config_hash"] == cfg.config_hash()
    monkeypatch.undo()

    capsys.readouterr()
    resumed = experiment.run(cfg, out)
    assert "resumed from" in capsys.readouterr().out
    assert resumed.metrics == reference.metrics
    assert resumed.history == reference.history
    assert (out / "metrics.json").exists()
    assert not (out / train_mod.CHECKPOINT).exists()  # removed once metrics.json is written


def test_checkpoint_of_another_config_is_refused(finished, tmp_path, monkeypatch):
    cfg, _, _ = finished
    out = tmp_path / "stale"

    def interrupt(step: int, out_: dict) -> None:
        if step == 5:
            raise _Interrupted

    monkeypatch.setattr(experiment, "fit", functools.partial(train_mod.fit, on_step=interrupt))
    with pytest.raises(_Interrupted):
        experiment.run(cfg, out)
    monkeypatch.undo()
    other = cfg.replace(lr=0.02)
    result = experiment.train(other, out)[
        1
    ]  # the stale checkpoint is moved aside, named, and the run starts over
    aside = list(out.glob("checkpoint.pt.bad-*"))
    assert len(aside) == 1 and result.config_hash == other.config_hash()
    assert experiment.run(other, tmp_path / "clean").metrics == result.metrics


def test_an_unreadable_checkpoint_is_moved_aside_and_the_run_starts_over(finished, tmp_path, capsys):
    cfg, _, reference = finished
    out = tmp_path / "bad_ckpt"
    out.mkdir()
    (out / train_mod.CHECKPOINT).write_bytes(b"not a checkpoint")
    result = experiment.run(cfg, out)
    said = capsys.readouterr().out
    assert (
        "could not be used" in said
        and "checkpoint.pt.bad-" in said
        and "starting this run from step 0" in said
    )
    assert result.metrics == reference.metrics
    assert [p.read_bytes() for p in out.glob("checkpoint.pt.bad-*")] == [b"not a checkpoint"]


def test_run_returns_stored_result(finished, monkeypatch):
    cfg, out, result = finished
    calls = []

    def no_training(*args, **kwargs):
        calls.append(args)
        raise _Interrupted

    monkeypatch.setattr(experiment, "train", no_training)
    stored = experiment.run(cfg, out)
    assert not calls
    assert stored.to_json() == json.loads(json.dumps(result.to_json(), default=float))
    with pytest.raises(_Interrupted):  # force re-trains
        experiment.run(cfg, out, force=True)
    with pytest.raises(_Interrupted):  # a different config in the same place re-trains too
        experiment.run(cfg.replace(lr=0.07), out)
    assert len(calls) == 2


class _NanLoss(Scratch):
    def loss(self, x, y):
        out = super().loss(x, y)
        return {**out, "loss": out["loss"] * float("nan")}


def test_nan_loss_raises(tiny_config, tmp_path):
    cfg = tiny_config(iterations=6, eval_every=3)
    source = load_dataset(cfg.data.dataset, cfg.data.data_root)
    splits = make_splits(source.train.targets, len(source.test), cfg.data, cfg.seed)
    method = _NanLoss.build(cfg, Classification(source.num_classes))
    with pytest.raises(NonFiniteLossError, match=r"non-finite training loss .*nan.*lower the learning rate"):
        fit(method, source, splits, transferlab.data.TRANSFORMS.get("mini"), cfg, out_dir=tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_huge_lr_raises(tiny_config, tmp_path):
    cfg = tiny_config(lr=1e6, iterations=12, eval_every=2)
    with pytest.raises(NonFiniteLossError, match=r"lr=1000000\.0"):
        experiment.run(cfg, tmp_path / "huge_lr")
    assert not (tmp_path / "huge_lr" / "metrics.json").exists()
    assert issubclass(NonFiniteLossError, FloatingPointError)


# --------------------------------------------------------------------------------------------- mini hub
@pytest.fixture(scope="module")
def hub_cache(tiny_hub, tmp_path_factory):
    """A private ``TRANSFERLAB_CACHE`` for this module's hub tests, with the tiny hub model pre-trained once."""
    cache = tmp_path_factory.mktemp("hub_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_CACHE", str(cache))
        assert not (cache / "mini_hub").exists()
        weights, meta = hubbuild.ensure(tiny_hub, verbose=False)
        yield cache, weights, meta


def test_hub_ensure_writes_weights_and_manifest(hub_cache, tiny_hub, monkeypatch):
    cache, weights, meta = hub_cache
    manifest = weights.with_suffix(".json")
    assert weights.parent == cache / "mini_hub" and weights.name.startswith(f"{tiny_hub}-")
    assert weights.is_file() and manifest.is_file()
    assert json.loads(manifest.read_text()) == json.loads(json.dumps(meta, default=float))
    assert meta["sha256"] == sha256_file(weights)
    assert meta["name"] == tiny_hub and meta["classes"] == 10
    assert meta["recipe"]["iterations"] == 10 and meta["recipe"]["dataset"] == "mini_hub_digits"

    def no_pretraining(*args, **kwargs):
        raise AssertionError("the cached model should have been reused")

    monkeypatch.setattr(hubbuild, "_pretrain", no_pretraining)
    again_weights, again_meta = hubbuild.ensure(tiny_hub, verbose=False)
    assert again_weights == weights and again_meta == json.loads(manifest.read_text())


def test_hub_corrupt_file_is_retrained(hub_cache, tiny_hub, tmp_path, monkeypatch):
    _, weights, meta = hub_cache
    private = tmp_path / "cache"
    shutil.copytree(weights.parent, private / "mini_hub")
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(private))
    copy = private / "mini_hub" / weights.name
    data = bytearray(copy.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = bytes(16)
    copy.write_bytes(bytes(data))

    calls = []
    real = hubbuild._pretrain
    monkeypatch.setattr(hubbuild, "_pretrain", lambda *a, **k: calls.append(a) or real(*a, **k))
    with pytest.warns(UserWarning, match="checksum mismatch; deleting it and building it again"):
        new_weights, new_meta = hubbuild.ensure(tiny_hub, verbose=False)
    assert len(calls) == 1
    assert new_weights == copy and new_meta["sha256"] == sha256_file(copy)
    assert torch.load(copy, weights_only=True).keys() == torch.load(weights, weights_only=True).keys()


def test_load_hub_backbone(hub_cache, tiny_hub, monkeypatch):
    _, weights, meta = hub_cache
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    net = build_backbone("mini_resnet", f"mini:{tiny_hub}")
    assert calls and all(c.get("weights_only") is True for c in calls)
    assert net.weights_sha256 == meta["sha256"] and net.head.out_features == 10
    saved = real_load(weights, weights_only=True)
    for k, v in net.state_dict().items():
        assert torch.equal(v, saved[k]), k


def test_hub_wrong_backbone_refused(tiny_hub, monkeypatch):
    monkeypatch.setattr(mini_hub, "cached", lambda *a, **k: pytest.fail("must refuse before loading"))
    with pytest.raises(WeightsError, match=f"{tiny_hub}.*is a mini_resnet.*'resnet18'"):
        mini_hub.load_hub_backbone(tiny_hub, backbone="resnet18")
    with pytest.raises(WeightsError):
        build_backbone("resnet18", f"mini:{tiny_hub}")


def test_finetune_from_tiny_hub(hub_cache, tiny_hub, tiny_config, tmp_path):
    _, _, meta = hub_cache
    cfg = tiny_config(method="finetune", pretrained=f"mini:{tiny_hub}", iterations=4, eval_every=4)
    result = experiment.run(cfg, tmp_path / "ft")
    assert result.extra["pretrained_sha256"] == meta["sha256"]
    assert len(result.metrics["per_class_last"]) == 4


# ------------------------------------------------------------------------------------------------ method guards
def test_finetune_refuses_no_pretraining(tiny_config):
    with pytest.raises(ConfigError, match="fine-tunes one pre-trained model.*is method 'scratch'"):
        tiny_config(method="finetune", pretrained="none")


def test_scratch_refuses_pretrained_weights(tiny_config, tiny_hub, monkeypatch):
    monkeypatch.setattr(mini_hub, "cached", lambda *a, **k: pytest.fail("must refuse before loading weights"))
    for pretrained in (f"mini:{tiny_hub}", "IMAGENET1K_V1"):
        with pytest.raises(ConfigError, match="set pretrained='none'"):
            tiny_config(method="scratch", pretrained=pretrained, backbone="mini_resnet" if "mini" in pretrained
                        else "resnet18")  # fmt: skip


def test_a_hub_model_that_is_not_built_names_the_command(tiny_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path))
    with pytest.raises(WeightsError, match="not pre-trained yet.*transferlab hub build mini"):
        build_backbone("mini_resnet", f"mini:{tiny_hub}")


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("bad", [{"dataset": "no_such_dataset"}, {"sample_rate": 0}, {"sample_rate": 1.5}])
def test_bad_inputs_fail_before_training(bad, tiny_config, session_dir, monkeypatch):
    root = Path(results_mod.RESULTS_DIR)
    # conftest keeps results out of the user's tree
    assert root.resolve().is_relative_to(session_dir.resolve())
    before = _listing(root)
    monkeypatch.setattr(experiment, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(ConfigError):
        transferlab.run(tiny_config(**bad))
    with pytest.raises(ConfigError):
        transferlab.run(transferlab.RunConfig.from_flat(bad))
    assert _listing(root) == before
    assert "no_such_dataset" not in DATASETS


def test_channels_last_gives_module_to_strides_and_skips_5d_tensors():
    """1×1 kernels have two valid channels_last layouts; fit() must keep Module.to's (results depend on it)."""
    from transferlab.train import channels_last

    a, b = torch.nn.Conv2d(16, 32, 1), torch.nn.Conv2d(16, 32, 1)
    b.load_state_dict(a.state_dict())
    channels_last(a)
    b.to(memory_format=torch.channels_last)
    assert a.weight.stride() == b.weight.stride()
    holder = torch.nn.Module()
    holder.kernels = torch.nn.Parameter(torch.randn(2, 4, 3, 3, 3))  # 5-D: left as it is
    channels_last(holder)
    assert holder.kernels.is_contiguous()
