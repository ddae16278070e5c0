"""The decoded-image cache and the device-side augmentation against the PIL path, on real JPEG files.

Bit-identity is the claim (``pipeline`` is a run-time option outside the config hash), so every check here compares
exactly: Pillow's resampling crop by crop, torchvision's crop boxes seed by seed, whole training and evaluation batches
path by path, and a short fit() run's numbers and weights. Then the cache's rules: corrupt, stale or half-written
caches are rebuilt, never used.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from fixtures_data import write_jpeg
from PIL import Image
from torchvision import transforms as T
from transferlab.config import ConfigError, RunConfig
from transferlab.data import cache as cache_mod
from transferlab.data import resample
from transferlab.data.base import DatasetSource
from transferlab.data.device_augment import DevicePathError, plan_of, resized_crop_box
from transferlab.data.folders import FolderDataset, read_image_folder
from transferlab.data.pipeline import EvalBatches, TrainStream
from transferlab.data.transforms import TRANSFORMS, Preset

SIZES = [(300, 200), (64, 80), (256, 256), (500, 375), (33, 47), (224, 224), (40, 300)]


def _tree(root, per_class=(6, 3), size=None):
    for part, n in zip(("train", "test"), per_class):
        for k, c in enumerate(("ant", "bee")):
            for i in range(n):
                write_jpeg(root / part / c / f"{i:03d}.jpg", size or SIZES[i % len(SIZES)], seed=50 * k + i)
    return root


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    p = read_image_folder(_tree(tmp_path_factory.mktemp("jpegs") / "tree"))
    return DatasetSource("jpeg_fixture", p.classes, p.train, p.test)


def test_resampling_is_pillows_bit_for_bit(monkeypatch):
    """Crops of every regime (enlarging, reducing, one axis only, both pass orders) against Image.crop().resize()."""
    rng = np.random.default_rng(0)
    img = np.clip(np.cumsum(rng.integers(-9, 10, (256, 256, 3)), 1) + 128, 0, 255).astype(np.uint8)
    img[::7] = rng.integers(0, 256, img[::7].shape)  # sharp rows: any rounding difference shows
    boxes = [(0, 0, 256, 256), (16, 16, 224, 224), (0, 0, 224, 256), (0, 0, 256, 224), (3, 5, 256 - 3, 239),
             (0, 0, 256, 100), (10, 0, 62, 83), (100, 100, 8, 8), (0, 7, 240, 231), (1, 0, 255, 240)]  # fmt: skip
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(8, 257, 2))
        boxes.append((int(rng.integers(0, 257 - h)), int(rng.integers(0, 257 - w)), h, w))
    boxes = np.array(boxes)
    rule = resample.pass_order_rule()  # the installed Pillow's (probed)
    assert resample.RULES["cost"](
        boxes[:, 2], boxes[:, 3], 224, 224
    ).any()  # the rules disagree on some crops
    x = torch.from_numpy(img).permute(2, 0, 1)[None].expand(len(boxes), -1, -1, -1)
    got = resample.resize_crops(x, boxes, (224, 224)).permute(0, 2, 3, 1).numpy()
    pil = Image.fromarray(img)
    refs = [np.asarray(pil.crop((left, top, left + w, top + h)).resize((224, 224), Image.BILINEAR))
            for top, left, h, w in boxes]  # fmt: skip
    for box, out, ref in zip(boxes, got, refs):
        assert np.array_equal(out, ref), (rule, box)
    other = next(r for r in resample.RULES if r != rule)  # the pass order matters: the other rule would fail
    monkeypatch.setattr(resample, "pass_order_rule", lambda: other)
    wrong = resample.resize_crops(x, boxes, (224, 224)).permute(0, 2, 3, 1).numpy()
    assert not all(np.array_equal(o, r) for o, r in zip(wrong, refs))


@pytest.mark.parametrize(
    "size, scale, ratio",
    [((256, 256), (0.08, 1.0), (3 / 4, 4 / 3)), ((10, 300), (0.08, 1.0), (3 / 4, 4 / 3)),
     ((300, 10), (0.08, 1.0), (3 / 4, 4 / 3)), ((60, 60), (1.5, 2.0), (3 / 4, 4 / 3)), ((37, 53), (0.3, 0.9), (0.5, 2.0))],
)  # fmt: skip
def test_crop_boxes_are_torchvisions(size, scale, ratio):
    """The same boxes as RandomResizedCrop.get_params under torch.manual_seed, fallbacks included."""
    image = torch.zeros(3, *size)
    for seed in range(400):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ref = T.RandomResizedCrop.get_params(image, list(scale), list(ratio))
        assert resized_crop_box(*size, scale, ratio, torch.Generator().manual_seed(seed)) == ref, seed


def _batches(src, preset, pipeline, workers=0, start=0, steps=4):
    stream = TrainStream(src.train, np.arange(len(src.train)), preset, 4, 7, "cpu", workers, pipeline)
    it = stream.batches(start)
    train = [next(it) for _ in range(steps)]  # 12 images, batch 4: crosses an epoch boundary
    test = EvalBatches(src.test, np.arange(len(src.test)), preset, 4, "cpu", False, workers, pipeline)
    out = train + list(test) + list(test)  # an EvalBatches object is iterable again (persistent loader)
    if preset.ten_crop is not None:
        out += list(
            EvalBatches(src.test, np.arange(len(src.test)), preset, 4, "cpu", True, workers, pipeline)
        )
    return out


@pytest.mark.parametrize("preset", ["imagenet224", "cifar32"])
def test_cache_and_device_paths_give_the_pil_inputs(jpegs, preset):
    preset = TRANSFORMS.get(preset)
    ref = _batches(jpegs, preset, "pil")
    for pipeline in ("cache", "device"):
        got = _batches(jpegs, preset, pipeline)
        assert len(got) == len(ref)
        for (xa, ya), (xb, yb) in zip(ref, got):
            assert xa.shape == xb.shape and torch.equal(xa, xb) and torch.equal(ya, yb), pipeline
    assert got[0][0].is_contiguous(memory_format=torch.channels_last)


def test_device_path_with_persistent_workers_resumes_mid_epoch(jpegs):
    preset = TRANSFORMS.get("imagenet224")
    one = _batches(jpegs, preset, "device", workers=0, start=2, steps=3)
    two = _batches(jpegs, preset, "device", workers=1, start=2, steps=3)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(one, two))


def test_fit_numbers_and_weights_are_the_same_on_every_pipeline(tmp_path, monkeypatch):
    """A short fit() on a JPEG tree (cifar32 preset, a 3-channel ResNet-32): identical history, metrics, weights."""
    from transferlab.data import DATASETS
    from transferlab.experiment import train

    root = tmp_path / "data"
    _tree(root / "test_jpeg_tree", per_class=(8, 4), size=(32, 32))
    ds = FolderDataset("test_jpeg_tree", "tests", preset="cifar32")
    monkeypatch.setitem(DATASETS._items, "test_jpeg_tree", ds.load)
    results, weights = {}, {}
    for pipeline in ("pil", "device"):
        cfg = RunConfig.from_flat({"method": "scratch", "backbone": "cifar_resnet32", "pretrained": "none",
                                   "dataset": "test_jpeg_tree", "data_root": str(root), "device": "cpu",
                                   "val_fraction": 0.25, "batch_size": 4, "eval_batch_size": 8, "iterations": 4,
                                   "eval_every": 2, "schedule": "constant", "pipeline": pipeline})  # fmt: skip
        method, results[pipeline] = train(cfg, tmp_path / pipeline)
        weights[pipeline] = method.state_dict()
    a, b = results["pil"], results["device"]
    assert a.config_hash == b.config_hash and a.history == b.history and a.metrics == b.metrics
    assert len(a.history) == 2 and a.metrics["test_last"] >= 0
    assert all(torch.equal(v, weights["device"][k]) for k, v in weights["pil"].items())


def test_unsupported_presets_and_pipelines_are_clear_errors():
    with pytest.raises(ConfigError, match="pipeline='gpu'.*pil, cache, device"):
        RunConfig.from_flat({"pipeline": "gpu"})
    with pytest.raises(ConfigError, match="compile"):
        RunConfig.from_flat({"compile": "fast"})
    base = TRANSFORMS.get("imagenet224")
    test = T.Compose([T.Resize((64, 64)), T.ToTensor(), T.Normalize(base.mean, base.std)])
    jitter = Preset("jitter", base.mean, base.std, T.Compose([T.Resize((64, 64)), T.ColorJitter(0.4), T.ToTensor()]),
                    test)  # fmt: skip
    with pytest.raises(DevicePathError, match="ColorJitter.*pipeline='cache'"):
        plan_of(jitter)
    keep_aspect = Preset("aspect", base.mean, base.std, T.Compose([T.Resize(64), T.ToTensor()]), base.test)
    with pytest.raises(DevicePathError, match="keeps the aspect ratio"):
        plan_of(keep_aspect)
    with pytest.raises(DevicePathError, match="in-memory"):
        plan_of(TRANSFORMS.get("mini"))


def test_pipeline_and_compile_leave_the_config_hash_unchanged():
    from transferlab.config import RUNTIME_FIELDS

    cfg = (
        RunConfig()
    )  # outside the hash, so the hashes of finished runs stay what they were before the fields
    assert {"pipeline", "compile"} <= RUNTIME_FIELDS and {"pipeline", "compile"} <= set(cfg.to_flat())
    assert cfg.replace(pipeline="device", compile="reduce-overhead").config_hash() == cfg.config_hash()


# ------------------------------------------------------------------------------------------------ the cache
def _open(src, workers=0, root=None):
    plan = plan_of(TRANSFORMS.get("imagenet224"))
    return cache_mod.open_cache(src.train, "imagenet224", plan.stage, plan.size, name=src.train.name,
                                workers=workers, root=root)  # fmt: skip


def test_cache_holds_the_stage_output_and_is_built_once(jpegs, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a first build is not a rebuild: no warning
        images = _open(jpegs, root=tmp_path)
    stage = plan_of(TRANSFORMS.get("imagenet224")).stage
    for i in (0, 5, 11):
        assert np.array_equal(images.rows([i])[0], np.asarray(stage(jpegs.train.dataset[i][0])))
    manifest = json.loads((images.path.parent / "manifest.json").read_text())
    assert manifest["shape"] == [12, 256, 256, 3] and manifest["name"] == "jpeg_fixture-train"
    assert manifest["pillow"] and manifest["kind"] == "files" and len(manifest["sha256"]) == 64
    mtime = images.path.stat().st_mtime_ns
    assert _open(jpegs, root=tmp_path).path.stat().st_mtime_ns == mtime  # reused, not rebuilt
    parallel = _open(jpegs, workers=2, root=tmp_path / "parallel")  # built by 2 worker processes
    assert np.array_equal(parallel.rows(range(12)), images.rows(range(12)))
    assert sorted(p.name for p in images.path.parent.iterdir()) == [".lock", "images.npy", "manifest.json"]


def test_corrupt_stale_or_uncommitted_caches_are_rebuilt(jpegs, tmp_path):
    first = _open(jpegs, root=tmp_path)
    good = np.array(first.rows(range(12)))
    folder = first.path.parent

    def reopen(why):
        cache_mod._VERIFIED.clear()  # as a new process would
        with pytest.warns(UserWarning, match=why):
            images = _open(jpegs, root=tmp_path)
        assert np.array_equal(images.rows(range(12)), good)

    with open(first.path, "r+b") as fh:  # one flipped bit inside the pixels
        fh.seek(first.path.stat().st_size - 1000)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 1]))
    reopen("corrupt")
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "pillow": "0.0"}))
    reopen(r"stale \(pillow changed\)")
    (folder / "manifest.json").unlink()  # a build killed between its two renames
    reopen("no manifest")
    (folder / "manifest.json").write_text("{")
    reopen("unreadable")


def test_a_changed_image_makes_the_cache_stale(tmp_path):
    root = _tree(tmp_path / "tree", per_class=(2, 1), size=(40, 30))
    p = read_image_folder(root)
    src = DatasetSource("changing", p.classes, p.train, p.test)
    before = np.array(_open(src, root=tmp_path / "cache").rows([0]))
    write_jpeg(root / "train" / "ant" / "000.jpg", (40, 30), seed=999)  # new content, new mtime
    with pytest.warns(UserWarning, match=r"stale \(digest changed\)"):
        after = _open(src, root=tmp_path / "cache").rows([0])
    assert not np.array_equal(before, after)


def test_in_memory_arrays_are_identified_by_their_bytes():
    class Arrays(torch.utils.data.Dataset):
        def __init__(self, data):
            self.data = data

        def __len__(self):
            return len(self.data)

    from transferlab.data.base import Part

    a = Arrays(np.zeros((3, 4, 4, 3), dtype=np.uint8))
    b = Arrays(np.ones((3, 4, 4, 3), dtype=np.uint8))
    ids = [cache_mod.identity(Part(d, np.zeros(3))) for d in (a, a, b)]
    assert ids[0] == ids[1] and ids[0]["digest"] != ids[2]["digest"] and ids[0]["kind"] == "array"
    with pytest.raises(cache_mod.CacheError, match="pipeline='pil'"):
        cache_mod.identity(Part(torch.utils.data.TensorDataset(torch.zeros(3)), np.zeros(3)))
