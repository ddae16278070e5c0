"""Model hubs: the paper hub's key remapping for each checkpoint layout, checksums, offline errors, the mini hub
through the same interface, the one-architecture check and the ``hub check|fetch|list`` commands.

Only synthetic files: one random torchvision ResNet-50 is wrapped in each real layout (Mask / Keypoint R-CNN
``backbone.body.*`` with FrozenBN keys and FPN/RPN/ROI keys, DeepLabV3 ``backbone.*`` with its classifiers, MoCo
``module.encoder_q.*`` with key encoder and queue), each model shifted by its own constant, and saved under the real
file names. Their checksums cannot match the real ones, so the success path uses a copy of the hub that expects the
synthetic files' checksums. Downloads are monkeypatched to fail; nothing touches the network.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
import torch
import torchvision
from transferlab import cli, hubbuild
from transferlab.config import ConfigError
from transferlab.models import WeightsError, build_backbone, mini_hub
from transferlab.models.hub import HUBS, Hub, _check_fit, mini_hub_of
from transferlab.models.zoo_build import build_zoo_resnet

PAPER = HUBS.get("paper")
MODELS = (
    PAPER.names()
)  # IMAGENET1K_V1, moco_v1_200ep, maskrcnn_coco_v1, deeplabv3_coco_v1, keypointrcnn_coco_v1
EXTRA = {  # a few of the keys each layout carries besides the ResNet body (all must be dropped)
    "maskrcnn_coco_v1": ["backbone.fpn.inner_blocks.0.0.weight", "rpn.head.conv.0.0.weight",
                         "roi_heads.box_head.fc6.weight", "roi_heads.mask_predictor.mask_fcn_logits.weight"],
    "keypointrcnn_coco_v1": ["backbone.fpn.layer_blocks.3.0.bias", "rpn.head.cls_logits.weight",
                             "roi_heads.keypoint_predictor.kps_score_lowres.weight"],
    "deeplabv3_coco_v1": ["classifier.0.convs.0.0.weight", "classifier.4.weight", "aux_classifier.4.bias"],
}  # fmt: skip


def _synthetic(body: dict, name: str, shift: float) -> tuple[dict, dict]:
    """(checkpoint in ``name``'s real layout, the torchvision-keyed state it must remap to)."""
    state = {k: v + shift if v.is_floating_point() else v.clone() for k, v in body.items()}
    no_fc = {k: v for k, v in state.items() if not k.startswith("fc.")}
    extra = {k: torch.randn(4, 3) for k in EXTRA.get(name, [])}
    if name == "IMAGENET1K_V1":
        return state, state
    if name.startswith("moco"):
        ckpt = {f"module.encoder_q.{k}": v for k, v in no_fc.items()}
        ckpt.update(
            {
                "module.encoder_q.fc.weight": torch.randn(128, 2048),
                "module.encoder_q.fc.bias": torch.randn(128),
            }
        )
        ckpt.update(
            {"module.encoder_k.conv1.weight": torch.zeros(64, 3, 7, 7), "module.queue": torch.randn(128, 8)}
        )
        ckpt["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
        return {"epoch": 200, "arch": "resnet50", "state_dict": ckpt}, no_fc
    if name == "deeplabv3_coco_v1":
        return {**{f"backbone.{k}": v for k, v in no_fc.items()}, **extra}, no_fc
    frozen_bn = {k: v for k, v in no_fc.items() if not k.endswith("num_batches_tracked")}  # FrozenBatchNorm2d
    return {**{f"backbone.body.{k}": v for k, v in frozen_bn.items()}, **extra}, frozen_bn


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A weights dir with the paper hub's five files in their real layouts; name → expected remapped state."""
    torch.manual_seed(0)
    body = torchvision.models.resnet50().state_dict()
    for k, v in body.items():  # a random init has BN stats 0 / 1: make them tell the models apart
        if v.is_floating_point() and ("running" in k or k.startswith("bn") or ".bn" in k):
            v.copy_(torch.rand_like(v) + 0.5)
    wdir = tmp_path_factory.mktemp("hub_weights")
    expected = {}
    for i, m in enumerate(PAPER.models):
        ckpt, expected[m.name] = _synthetic(body, m.name, shift=float(i))
        torch.save(ckpt, wdir / m.weights.file)
    return wdir, expected


def _expecting_files_in(hub: Hub, wdir) -> Hub:
    """``hub`` with every expected checksum set to the synthetic file's (the real prefixes cannot match)."""
    models = []
    for m in hub.models:
        digest = hashlib.new(m.weights.checksum, (wdir / m.weights.file).read_bytes()).hexdigest()
        models.append(replace(m, weights=replace(m.weights, prefix=digest[:8])))
    return Hub(hub.name, hub.description, tuple(models))


@pytest.fixture(scope="module")
def trusting(synthetic):
    wdir, _ = synthetic
    return _expecting_files_in(PAPER, wdir)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch hub dir and a download that fails as it does offline."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch_hub"))

    def no_network(url, dst, *args, **kwargs):
        raise OSError(f"<urlopen error [Errno -3] Temporary failure in name resolution> ({url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.delenv("TRANSFERLAB_WEIGHTS_DIR", raising=False)
    return tmp_path / "torch_hub"


# ---------------------------------------------------------------------------------------------- the paper hub
def test_paper_hub_is_the_official_zoo_in_the_official_order():
    assert MODELS == [
        "IMAGENET1K_V1",
        "moco_v1_200ep",
        "maskrcnn_coco_v1",
        "deeplabv3_coco_v1",
        "keypointrcnn_coco_v1",
    ]
    files = [m.weights.file for m in PAPER.models]
    assert files == ["resnet50-0676ba61.pth", "moco_v1_200ep_pretrain.pth.tar", "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
                     "deeplabv3_resnet50_coco-cd0a2569.pth", "keypointrcnn_resnet50_fpn_coco-fc266e95.pth"]  # fmt: skip
    assert HUBS.get("paper_mocov2").names()[1] == "moco_v2_800ep"
    assert PAPER.require_identical_architectures("zoo_tuning") == "resnet50"
    manifest = {row["name"]: row for row in PAPER.manifest()}
    assert (
        manifest["moco_v1_200ep"]["checksum"] == "md5" and manifest["moco_v1_200ep"]["prefix"] == "b251726a"
    )
    assert "CC-BY-NC 4.0" in manifest["moco_v1_200ep"]["licence"]
    assert (
        manifest["maskrcnn_coco_v1"]["prefix"] == "bf2d0c1e"
        and "backbone.body." in manifest["maskrcnn_coco_v1"]["keys"]
    )
    assert all(row["url"].endswith(row["file"]) and row["provenance"] for row in manifest.values())


@pytest.mark.parametrize("name", MODELS)
def test_each_layout_remaps_to_the_synthetic_resnet50(synthetic, trusting, name):
    wdir, expected = synthetic
    state = trusting.state_dict(name, weights_dir=wdir)
    assert state.keys() == expected[name].keys()
    assert all(torch.equal(state[k], v) for k, v in expected[name].items())


def test_state_dicts_are_bodies_in_hub_order_and_backbones_hold_the_weights(synthetic, trusting):
    wdir, expected = synthetic
    bodies = trusting.state_dicts(weights_dir=wdir)
    assert list(bodies) == MODELS
    keys = {
        k for k in expected["maskrcnn_coco_v1"]
    }  # FrozenBN: the reference set without num_batches_tracked
    assert all(b.keys() == keys for b in bodies.values())
    shift = [
        float(bodies[n]["conv1.weight"][0, 0, 0, 0] - bodies[MODELS[0]]["conv1.weight"][0, 0, 0, 0])
        for n in MODELS
    ]
    assert shift == pytest.approx([0, 1, 2, 3, 4])  # each file's own weights, none mixed up
    net = trusting.load("keypointrcnn_coco_v1", weights_dir=wdir)
    ref = expected["keypointrcnn_coco_v1"]
    assert torch.equal(net.stem[0].weight, ref["conv1.weight"])
    assert torch.equal(net.stages[2][5].bn3.running_var, ref["layer3.5.bn3.running_var"])
    assert net.head.out_features == 1000 and net.hub_model == "paper:keypointrcnn_coco_v1"
    imagenet = trusting.load("IMAGENET1K_V1", weights_dir=wdir)  # the supervised model keeps its classifier
    assert torch.equal(imagenet.head.weight, expected["IMAGENET1K_V1"]["fc.weight"])


def test_real_checksums_refuse_the_synthetic_files(synthetic, offline):
    wdir, _ = synthetic
    for name, prefix in [("deeplabv3_coco_v1", "sha256 .* cd0a2569"), ("moco_v1_200ep", "md5 .* b251726a")]:
        with pytest.raises(
            WeightsError, match=f"checksum mismatch for .*{PAPER.model(name).weights.file}: {prefix}"
        ):
            PAPER.state_dict(name, weights_dir=wdir)
    statuses = PAPER.check(weights_dir=wdir)
    assert [s.status for s in statuses] == ["bad"] * 5
    assert all(s.path == wdir / s.file and "checksum mismatch" in s.detail for s in statuses)
    trusting = _expecting_files_in(PAPER, wdir)
    assert [s.status for s in trusting.check(weights_dir=wdir)] == ["ok"] * 5
    assert [s.path for s in trusting.fetch(weights_dir=wdir)] == [wdir / m.weights.file for m in PAPER.models]
    assert not offline.exists()  # found on disk: nothing was downloaded


def test_keys_that_do_not_fit_resnet50_are_named():
    body = {k: torch.zeros(s) for k, s in _shapes().items() if not k.startswith("fc.")}
    _check_fit(
        {k: v for k, v in body.items() if not k.endswith("num_batches_tracked")}, "resnet50", "x"
    )  # FrozenBN
    broken = {k: v for k, v in body.items() if k != "layer2.1.conv2.weight"}
    broken["fpn.inner_blocks.0.weight"] = torch.zeros(1)
    broken["layer1.0.conv1.weight"] = torch.zeros(3, 3)
    with pytest.raises(WeightsError) as err:
        _check_fit(broken, "resnet50", "hub 'paper' model 'maskrcnn_coco_v1'")
    msg = str(err.value)
    assert "maskrcnn_coco_v1" in msg and "missing keys ['layer2.1.conv2.weight']" in msg
    assert "unexpected keys ['fpn.inner_blocks.0.weight']" in msg and "layer1.0.conv1.weight [3, 3]" in msg
    with pytest.raises(WeightsError, match="no key starts with 'backbone.body.'"):
        PAPER.model("maskrcnn_coco_v1").weights.keys({"conv1.weight": torch.zeros(1)})


def _shapes():
    from transferlab.models.hub import _arch_shapes

    return _arch_shapes("resnet50")


def test_offline_errors_name_the_file_and_its_url(offline, tmp_path):
    for m in PAPER.models:
        with pytest.raises(WeightsError) as err:
            PAPER.state_dict(m.name)
        assert m.weights.file in str(err.value) and m.weights.url in str(err.value)
        assert "TRANSFERLAB_WEIGHTS_DIR" in str(err.value)
    fetched = PAPER.fetch(weights_dir=tmp_path / "mine")
    assert [s.status for s in fetched] == ["missing"] * 5
    assert all(s.source in s.detail and s.file in s.detail for s in fetched)
    checked = PAPER.check(weights_dir=tmp_path / "mine")
    assert all(s.status == "missing" and str(tmp_path / "mine") in s.detail for s in checked)
    assert not (offline / "checkpoints").exists() or not any((offline / "checkpoints").iterdir())


# ----------------------------------------------------------------------------------------------- the mini hub
def test_mini_hub_through_the_same_interface(tiny_hub):
    assert HUBS.get("mini").names() == ["clusters", "coarse", "rotation", "parity", "jigsaw"]
    hub = mini_hub_of([tiny_hub], name="tiny")
    assert hub.check()[0].status in ("missing", "ok")  # never pre-trains
    net = hub.load(tiny_hub)
    ref = mini_hub.load_hub_backbone(tiny_hub)
    assert all(
        torch.equal(a, b) for a, b in zip(net.state_dict().values(), ref.state_dict().values(), strict=True)
    )
    (status,) = hub.check()
    assert status.ok and status.path is not None and status.file.startswith(f"{tiny_hub}-")
    (row,) = hub.manifest()
    assert (
        row["prefix"] == hubbuild.ensure(tiny_hub, verbose=False)[1]["sha256"]
        and row["arch"] == "mini_resnet"
    )
    bodies = hub.state_dicts()
    assert "conv1.weight" in bodies[tiny_hub] and "layer3.0.conv1.weight" in bodies[tiny_hub]
    assert not any(k.startswith("fc.") or k.endswith("num_batches_tracked") for k in bodies[tiny_hub])
    zoo = build_zoo_resnet(
        list(bodies.values()) * 2, "mini_resnet", num_classes=3
    )  # what Zoo-Tuning consumes
    assert zoo.conv1.weight.shape[0] == 2


def test_mixed_architectures_are_allowed_but_refused_by_aggregating_methods(tiny_hub):
    mixed = Hub("mixed", "a test hub", (PAPER.model("IMAGENET1K_V1"), PAPER.model("maskrcnn_coco_v1"),
                                        mini_hub_of([tiny_hub]).model(tiny_hub)))  # fmt: skip
    assert mixed.architectures() == {
        "resnet50": ["IMAGENET1K_V1", "maskrcnn_coco_v1"],
        "mini_resnet": [tiny_hub],
    }
    with pytest.raises(ConfigError) as err:
        mixed.require_identical_architectures("zoo_tuning")
    msg = str(err.value)
    assert "zoo_tuning" in msg and "'mixed'" in msg
    assert "resnet50: IMAGENET1K_V1, maskrcnn_coco_v1" in msg and f"mini_resnet: {tiny_hub}" in msg
    with pytest.raises(WeightsError, match="no model 'nope'; its models: IMAGENET1K_V1"):
        mixed.load("nope")
    with pytest.raises(ValueError, match="twice"):
        Hub("dup", "", (PAPER.models[0], PAPER.models[0]))


# ------------------------------------------------------------------------------------------------------ CLI
def test_cli_check_and_fetch_report_every_missing_file(offline, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["hub", "check", "paper", "--weights-dir", str(empty)]) == 1
    out = capsys.readouterr().out
    assert "0 of 5 files ok" in out
    for m in PAPER.models:
        assert m.weights.file in out and m.weights.url in out
    assert out.count("missing ") >= 5
    assert cli.main(["hub", "fetch", "paper", "--weights-dir", str(empty)]) == 1
    out = capsys.readouterr().out
    assert (
        "0 of 5 files ok" in out
        and "could not be downloaded" in out
        and "moco_v1_200ep_pretrain.pth.tar" in out
    )


def test_cli_check_flags_bad_checksums_and_lists_hubs(synthetic, offline, capsys):
    wdir, _ = synthetic
    assert cli.main(["hub", "check", "paper", "--weights-dir", str(wdir)]) == 1
    out = capsys.readouterr().out
    assert out.count(" bad ") == 5 and "checksum mismatch" in out
    assert cli.main(["hub", "list"]) == 0
    out = capsys.readouterr().out
    assert "paper:" in out and "paper_mocov2:" in out and "mini:" in out and "jigsaw" in out
    assert cli.main(["hub", "list", "nope"]) == 2
    assert "unknown model hub 'nope'" in capsys.readouterr().err


def test_paper_hub_names_are_weights_of_their_architecture_only():
    from transferlab.models import check_weights
    from transferlab.refs import WeightsRef

    for name in ("maskrcnn_coco_v1", "deeplabv3_coco_v1", "keypointrcnn_coco_v1", "moco_v1_200ep"):
        check_weights("resnet50", WeightsRef.parse(name))
        with pytest.raises(ConfigError, match=f"weights '{name}' are not available for backbone 'resnet18'"):
            check_weights("resnet18", WeightsRef.parse(name))
    check_weights("resnet50", WeightsRef.parse("hub:paper"))
    with pytest.raises(ConfigError, match="Valid hubs: hub:demo, hub:mini, hub:paper, hub:paper_mocov2"):
        check_weights("resnet50", WeightsRef.parse("hub:nope"))
    with pytest.raises(ConfigError, match="Did you mean 'hub:paper'"):
        check_weights("resnet50", WeightsRef.parse("hub:papr"))
    with pytest.raises(WeightsError, match="resnet50 weights"):
        build_backbone("resnet18", "maskrcnn_coco_v1")


def test_pinned_weight_files_are_torchvisions_own():
    """The URLs kept as facts (so that transferlab need not import torchvision) are those torchvision's enums use."""
    from torchvision.models import ResNet18_Weights, ResNet34_Weights, ResNet50_Weights
    from torchvision.models.detection import KeypointRCNN_ResNet50_FPN_Weights, MaskRCNN_ResNet50_FPN_Weights
    from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights
    from transferlab.models import hub as hub_mod
    from transferlab.models.weights import TORCHVISION_WEIGHTS

    assert {
        "resnet18": {"IMAGENET1K_V1": ResNet18_Weights.IMAGENET1K_V1.url},
        "resnet34": {"IMAGENET1K_V1": ResNet34_Weights.IMAGENET1K_V1.url},
        "resnet50": {"IMAGENET1K_V1": ResNet50_Weights.IMAGENET1K_V1.url,
                     "IMAGENET1K_V2": ResNet50_Weights.IMAGENET1K_V2.url},
    } == TORCHVISION_WEIGHTS  # fmt: skip
    assert MaskRCNN_ResNet50_FPN_Weights.COCO_V1.url == hub_mod.MASKRCNN_URL
    assert DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1.url == hub_mod.DEEPLABV3_URL
    assert KeypointRCNN_ResNet50_FPN_Weights.COCO_V1.url == hub_mod.KEYPOINTRCNN_URL


def test_importing_the_suite_does_not_import_torchvision_or_the_report_stack():
    import subprocess
    import sys

    code = ("import sys, transferlab, transferlab.runner, transferlab.cli; "
            "print(sorted(m for m in ('torchvision', 'seaborn', 'matplotlib', 'sklearn', 'pandas') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
