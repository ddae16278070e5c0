"""A released mini-hub build ($TRANSFERLAB_HUB_RELEASE): installed instead of trained when it is this recipe's,
checked, and replaceable."""

from __future__ import annotations

import shutil

import pytest
from transferlab import hubbuild
from transferlab.models import mini_hub
from transferlab.models.mini_hub import load_hub_backbone
from transferlab.models.weights import sha256_file


@pytest.fixture
def released(tiny_hub, tmp_path, monkeypatch):
    """A release folder holding the tiny model's built pair, and an empty private cache."""
    weights, meta = mini_hub.cached(tiny_hub)  # built once per session by the tiny_hub fixture
    release = tmp_path / "release"
    release.mkdir()
    shutil.copy2(weights, release / weights.name)
    shutil.copy2(weights.with_suffix(".json"), release / weights.with_suffix(".json").name)
    monkeypatch.setenv("TRANSFERLAB_HUB_RELEASE", str(release))
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    return release, weights.name, meta


def _refuse(*args, **kwargs):
    raise AssertionError("the released build should have been installed, not trained")


def test_a_missing_model_is_installed_from_the_released_build_not_trained(released, tiny_hub, monkeypatch):
    release, name, meta = released
    monkeypatch.setattr(hubbuild, "_pretrain", _refuse)
    lines = []
    metas = hubbuild.ensure_all([tiny_hub], jobs=1, out=lines.append)
    assert metas[tiny_hub]["sha256"] == meta["sha256"] and metas[tiny_hub]["installed_from"]
    assert "model 1 of 1" in lines[0] and "installed the released build" in lines[0]
    installed = mini_hub.cache_dir() / name
    assert sha256_file(installed) == meta["sha256"]
    assert load_hub_backbone(tiny_hub).weights_sha256 == meta["sha256"]
    hubbuild.ensure(tiny_hub, verbose=False)  # cached now: neither installed again nor trained


def test_from_scratch_trains_and_says_whether_it_equals_the_released_build(released, tiny_hub, monkeypatch):
    release, name, meta = released
    hubbuild.ensure_all([tiny_hub], jobs=1, out=lambda *_: None)  # installed
    calls, real = [], hubbuild._pretrain
    monkeypatch.setattr(hubbuild, "_pretrain", lambda *a, **k: calls.append(a) or real(*a, **k))
    lines = []
    metas = hubbuild.ensure_all([tiny_hub], jobs=1, out=lines.append, from_scratch=True)
    assert len(calls) == 1 and "installed_from" not in metas[tiny_hub]
    assert (
        "built" in lines[0] and "bit-identical to the released build" in lines[0]
    )  # one thread: deterministic
    hubbuild.ensure_all([tiny_hub], jobs=1, out=lambda *_: None, from_scratch=True)  # trained here: kept
    assert len(calls) == 1


def test_a_released_file_that_fails_its_checksum_is_never_used(released, tiny_hub, monkeypatch):
    release, name, meta = released
    data = bytearray((release / name).read_bytes())
    data[-64:] = bytes(64)
    (release / name).write_bytes(bytes(data))
    calls, real = [], hubbuild._pretrain
    monkeypatch.setattr(hubbuild, "_pretrain", lambda *a, **k: calls.append(a) or real(*a, **k))
    _, built = hubbuild.ensure(tiny_hub, verbose=False)
    assert len(calls) == 1 and "installed_from" not in built


def test_a_released_build_of_another_recipe_is_never_used(released, tiny_hub, monkeypatch):
    release, name, meta = released
    stem = name.rsplit("-", 1)[0]
    (release / name).rename(release / f"{stem}-0000000000.pt")
    (release / name.replace(".pt", ".json")).rename(release / f"{stem}-0000000000.json")
    assert mini_hub.released(tiny_hub) is None
