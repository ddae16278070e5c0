"""MoCo checkpoints: key remapping, md5 checks, offline errors and the ResNet-50 they build (synthetic files only)."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision
from transferlab.config import ConfigError
from transferlab.models import WeightsError, build_backbone, check_weights, weights
from transferlab.refs import WeightsRef


@pytest.fixture(scope="module")
def moco_file(tmp_path_factory):
    """A MoCo-v2-layout checkpoint of a random ResNet-50: query and key encoders, an MLP projection, the queue."""
    torch.manual_seed(0)
    body = torchvision.models.resnet50().state_dict()
    state = {}
    for k, v in body.items():
        if not k.startswith("fc."):
            state[f"module.encoder_q.{k}"] = v
            state[f"module.encoder_k.{k}"] = torch.zeros_like(v)
    for enc in ("encoder_q", "encoder_k"):
        state[f"module.{enc}.fc.0.weight"] = torch.randn(2048, 2048)
        state[f"module.{enc}.fc.2.weight"] = torch.randn(128, 2048)
    state["module.queue"] = torch.randn(128, 16)
    state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    path = tmp_path_factory.mktemp("moco") / "moco_v2_800ep_pretrain.pth.tar"
    torch.save({"epoch": 800, "arch": "resnet50", "state_dict": state}, path)
    return path, body


def test_remap_keeps_the_query_encoder_without_its_projection(moco_file):
    path, body = moco_file
    raw = torch.load(path, weights_only=True)["state_dict"]
    remapped = weights.remap_moco(raw)
    assert set(remapped) == {k for k in body if not k.startswith("fc.")}
    assert torch.equal(remapped["conv1.weight"], body["conv1.weight"])
    with pytest.raises(WeightsError, match="not a MoCo checkpoint"):
        weights.remap_moco({"conv1.weight": torch.zeros(1)})


def test_md5_is_checked_and_a_matching_file_builds_resnet50(moco_file, monkeypatch):
    path, body = moco_file
    monkeypatch.setenv("TRANSFERLAB_WEIGHTS_DIR", str(path.parent))
    with pytest.raises(WeightsError, match="checksum mismatch.*a04e12f8"):
        weights.moco_state_dict("moco_v2_800ep")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(weights.MOCO_MD5, "moco_v2_800ep", md5[:8])
    net = build_backbone("resnet50", "moco_v2_800ep")
    assert torch.equal(net.stem[0].weight, body["conv1.weight"])
    assert torch.equal(net.stages[3][2].conv3.weight, body["layer4.2.conv3.weight"])
    with pytest.raises(WeightsError, match="ResNet-50 weights"):
        build_backbone("resnet18", "moco_v2_800ep")


def test_the_source_head_of_moco_runs_is_the_supervised_imagenet_fc(moco_file, monkeypatch):
    path, _ = moco_file
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(weights.MOCO_MD5, "moco_v2_800ep", md5[:8])
    monkeypatch.setenv("TRANSFERLAB_WEIGHTS_DIR", str(path.parent))
    fc = {"fc.weight": torch.randn(1000, 2048), "fc.bias": torch.randn(1000)}
    asked = []
    monkeypatch.setattr(weights, "torchvision_state_dict", lambda b, n, d=None: asked.append((b, n)) or fc)
    net = build_backbone("resnet50", "moco_v2_800ep", source_head=True)
    assert asked == [("resnet50", "IMAGENET1K_V1")] and torch.equal(net.head.weight, fc["fc.weight"])
    build_backbone("resnet50", "moco_v2_800ep")
    assert len(asked) == 1  # methods without a source head never need the ImageNet file


def test_offline_and_unknown_moco_weights_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("TRANSFERLAB_WEIGHTS_DIR", raising=False)

    def no_network(url, dst, *args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsError) as err:
        weights.moco_state_dict("moco_v1_200ep")
    msg = str(err.value)
    assert "moco_v1_200ep_pretrain.pth.tar" in msg and "dl.fbaipublicfiles.com/moco" in msg
    assert "TRANSFERLAB_WEIGHTS_DIR" in msg
    with pytest.raises(WeightsError, match="valid: moco_v1_200ep, moco_v2_200ep, moco_v2_800ep"):
        weights.moco_state_dict("moco_v3")
    check_weights("resnet50", WeightsRef.parse("moco_v2_800ep"))  # a valid configuration: no error
    with pytest.raises(ConfigError, match="not available for backbone 'resnet18'"):
        check_weights("resnet18", WeightsRef.parse("moco_v2_800ep"))
