"""Facial landmark datasets: 300W (68 points), WFLW (98), COFW (29), in their distributed layouts or HRNet's.

Each builder indexes the annotations (never the images) and returns a :class:`DatasetSource` of task
``landmarks``: ``dataset[i] → (RGB PIL image, {"points": [L, 2], "box": (cx, cy, side)})``, turned into the
256 × 256 face crop and its coordinates by the dataset's preset (:class:`~transferlab.data.keypoints.FaceCrop`).
Coordinates are 0-based pixel indices of the photograph (the iBUG ``.pts`` and COFW's MATLAB values are 1-based:
1 is subtracted; WFLW's and HRNet's CSV values are taken as they are). The face box, unless HRNet's CSV gives one,
is the square around the landmarks (HRNet ``cofw.py``'s rule, :func:`~transferlab.data.keypoints.box_from_points`).

Layouts (under ``<data_root>``; the distributed one is tried first):

- **300W** — ``300w/{afw,helen/trainset,lfpw/trainset}`` (train, 3,148) and ``300w/{helen/testset,lfpw/testset,
  ibug}`` (test: the "full" set, 689 = common 554 + challenging 135), each image beside its ``.pts`` (iBUG,
  https://ibug.doc.ic.ac.uk/resources/300-W/); or HRNet's ``300w/face_landmarks_300w_{train,valid}.csv`` +
  ``300w/images/`` (``valid`` is HRNet's name for the full test set).
- **WFLW** — ``wflw/WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt`` (each
  line: 196 coordinates, the face rectangle, 6 attribute flags, the image path) and ``wflw/WFLW_images/``
  (7,500 / 2,500; https://wywu.github.io/projects/LAB/WFLW.html); or HRNet's ``wflw/face_landmarks_wflw_{train,
  test}.csv`` + ``wflw/images/``.
- **COFW** — ``cofw/COFW_{train,test}_color.mat`` (MATLAB v7.3 = HDF5, read with h5py: ``IsTr``/``IsT`` images,
  ``phisTr``/``phisT`` 29 x, 29 y, 29 occlusion flags; 1,345 / 507; https://data.caltech.edu/records/20099). HRNet
  reads the same two files.

NME normalisers (HRNet ``lib/core/evaluation.py``): outer eye corners 36–45 (300W), 60–72 (WFLW), points 8–9 (COFW).
Heat-map σ (HRNet's experiment configs): 1.0 (300W), 1.5 (WFLW, COFW). Left/right pairs for flips: HRNet
``lib/utils/transforms.py`` ``MATCHED_PARTS``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from transferlab.data.base import DatasetNotFoundError, DatasetSource, Part, register_dataset
from transferlab.data.keypoints import box_from_points, face_preset, pairs_to_flip_index
from transferlab.data.transforms import TRANSFORMS

FACE_TASK = {"input_size": [256, 256], "head": "heatmap", "deconv_layers": 3, "deconv_channels": 256}
# fmt: off
W300_PAIRS = ((1, 17), (2, 16), (3, 15), (4, 14), (5, 13), (6, 12), (7, 11), (8, 10), (18, 27), (19, 26),
    (20, 25), (21, 24), (22, 23), (32, 36), (33, 35), (37, 46), (38, 45), (39, 44), (40, 43), (41, 48),
    (42, 47), (49, 55), (50, 54), (51, 53), (62, 64), (61, 65), (68, 66), (59, 57), (60, 56))  # 1-based
WFLW_PAIRS = ((0, 32), (1, 31), (2, 30), (3, 29), (4, 28), (5, 27), (6, 26), (7, 25), (8, 24), (9, 23),
    (10, 22), (11, 21), (12, 20), (13, 19), (14, 18), (15, 17), (33, 46), (34, 45), (35, 44), (36, 43),
    (37, 42), (38, 50), (39, 49), (40, 48), (41, 47), (60, 72), (61, 71), (62, 70), (63, 69), (64, 68),
    (65, 75), (66, 74), (67, 73), (55, 59), (56, 58), (76, 82), (77, 81), (78, 80), (87, 83), (86, 84),
    (88, 92), (89, 91), (95, 93), (96, 97))  # 0-based
COFW_PAIRS = ((1, 2), (5, 7), (3, 4), (6, 8), (9, 10), (11, 12), (13, 15), (17, 18), (14, 16), (19, 20),
    (23, 24))  # 1-based
# fmt: on
FACES = {  # name: (landmarks, flip pairs, their base, normaliser, σ)
    "300w": (68, W300_PAIRS, 1, (36, 45), 1.0),
    "wflw": (98, WFLW_PAIRS, 0, (60, 72), 1.5),
    "cofw": (29, COFW_PAIRS, 1, (8, 9), 1.5),
}
W300_TRAIN, W300_TEST = ("afw", "helen/trainset", "lfpw/trainset"), ("helen/testset", "lfpw/testset", "ibug")
WFLW_LISTS = "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{}.txt"
IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg", ".JPG", ".PNG")

LAYOUTS = {
    "300w": """\
  (a) iBUG release: <data_root>/300w/{afw,helen/trainset,lfpw/trainset}/*.{jpg,png} + *.pts   (train, 3,148)
                    <data_root>/300w/{helen/testset,lfpw/testset,ibug}/*.{jpg,png} + *.pts    (test, full 689)
  (b) HRNet CSVs:   <data_root>/300w/face_landmarks_300w_{train,valid}.csv  and  <data_root>/300w/images/...""",
    "wflw": """\
  (a) WFLW release: <data_root>/wflw/WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt
                    <data_root>/wflw/WFLW_images/<event>/*.jpg
  (b) HRNet CSVs:   <data_root>/wflw/face_landmarks_wflw_{train,test}.csv  and  <data_root>/wflw/images/...""",
    "cofw": "  <data_root>/cofw/COFW_train_color.mat  <data_root>/cofw/COFW_test_color.mat   (MATLAB v7.3 / HDF5)",
}
SOURCES = {
    "300w": "https://ibug.doc.ic.ac.uk/resources/300-W/ (accept the iBUG terms; AFW, HELEN, LFPW, IBUG with .pts); "
    "HRNet's CSVs: https://github.com/HRNet/HRNet-Facial-Landmark-Detection (README, Data). `transferlab data fetch "
    "300w` prints the steps",
    "wflw": "https://wywu.github.io/projects/LAB/WFLW.html (WFLW_annotations.tar.gz; WFLW_images.tar.gz from the "
    "page's Google Drive link); `transferlab data fetch wflw` downloads the annotations and prints the rest",
    "cofw": "https://data.caltech.edu/records/20099 (COFW_color.zip); `transferlab data fetch cofw`",
}


class FaceImages(Dataset):
    """Photographs on disk, opened lazily: ``dataset[i] → (RGB PIL image, {"points", "box"})``."""

    def __init__(self, paths: list[str], points: np.ndarray, boxes: np.ndarray):
        self.paths, self.points, self.boxes = [str(p) for p in paths], points.astype(np.float32), boxes
        if not len(self.paths) == len(self.points) == len(self.boxes):
            raise ValueError(
                f"{len(self.paths)} images, {len(self.points)} landmark sets, {len(self.boxes)} boxes"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int) -> Image.Image:
        with Image.open(self.paths[i]) as im:
            return im.convert("RGB")

    def __getitem__(self, i: int):
        return self.load(i), {"points": self.points[i], "box": tuple(self.boxes[i])}


class CofwImages(FaceImages):
    """COFW's images, stored in the .mat file itself: each read lazily through its HDF5 object reference."""

    def __init__(self, mat: Path, key: str, points: np.ndarray, boxes: np.ndarray):
        super().__init__([f"{mat}#{key}[{i}]" for i in range(len(points))], points, boxes)
        self.mat, self.key, self._file, self._pid = str(mat), key, None, None

    def __getstate__(self) -> dict:  # an open HDF5 handle does not cross to DataLoader workers
        return {**self.__dict__, "_file": None, "_pid": None}

    def load(self, i: int) -> Image.Image:
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.mat, "r"), os.getpid()
        ref = self._file[self.key][()].reshape(-1)[i]
        pixels = np.asarray(self._file[ref][()]).T  # MATLAB is column-major: HDF5 holds [C, W, H] for H×W×C
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)  # COFW has grey images too (HRNet repeats them)
        return Image.fromarray(np.ascontiguousarray(pixels.astype(np.uint8)))


def _error(name: str, root: Path, detail: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(name, root, LAYOUTS[name], SOURCES[name], detail=detail)


def _boxes(points: np.ndarray) -> np.ndarray:
    return np.array([box_from_points(p) for p in points], dtype=np.float64).reshape(-1, 3)


def _source(name: str, train: FaceImages, test: FaceImages, info: dict) -> DatasetSource:
    landmarks, pairs, base, normaliser, sigma = FACES[name]
    params = {**FACE_TASK, "normaliser": list(normaliser), "sigma": sigma}
    parts = [Part(d, np.zeros(len(d), dtype=np.int64)) for d in (train, test)]  # one group: no classes
    return DatasetSource(name, [str(i) for i in range(landmarks)], *parts, preset=f"faces_{name}", info=info,
                         task="landmarks", task_params=params)  # fmt: skip


def read_pts(path: Path) -> np.ndarray:
    """The points [n, 2] of an iBUG ``.pts`` file (``version: 1``, ``n_points: n``, ``{``, n lines ``x y``, ``}``),
    converted from 1-based to 0-based pixel indices."""
    lines = [
        ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()
    ]
    try:
        n = int(next(ln for ln in lines if ln.startswith("n_points")).split(":")[1])
        body = lines[lines.index("{") + 1 : lines.index("}")]
        points = np.array([[float(v) for v in ln.split()[:2]] for ln in body], dtype=np.float64)
    except (StopIteration, ValueError, IndexError) as err:
        raise ValueError(f"{path}: not an iBUG .pts file ({type(err).__name__}: {err})") from None
    if points.shape != (n, 2):
        raise ValueError(f"{path}: n_points is {n} but {len(points)} points are listed")
    return points - 1.0


def _pts_folders(root: Path, base: Path, folders: tuple[str, ...], landmarks: int) -> tuple[list, np.ndarray]:
    paths, points = [], []
    for folder in folders:
        d = base / folder
        if not d.is_dir():
            raise _error("300w", root, f"missing folder {d}")
        for pts in sorted(d.glob("*.pts")):
            image = next((pts.with_suffix(s) for s in IMAGE_SUFFIXES if pts.with_suffix(s).is_file()), None)
            if image is None:
                raise _error("300w", root, f"{pts} has no image beside it (.jpg or .png)")
            p = read_pts(pts)
            if len(p) != landmarks:
                raise _error("300w", root, f"{pts} has {len(p)} points, not {landmarks}")
            paths.append(image)
            points.append(p)
    if not paths:
        raise _error("300w", root, f"no .pts files in {', '.join(str(base / f) for f in folders)}")
    return paths, np.stack(points)


def read_hrnet_csv(path: Path, images: Path, landmarks: int) -> FaceImages:
    """HRNet's CSV (header; ``image_name, scale, center_w, center_h, x0, y0, …``): the box is the centre and the
    side scale × 200 (HRNet then enlarges it 1.25×, as :class:`FaceCrop` does)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    if not rows:
        raise ValueError(f"{path} lists no images")
    bad = [i + 2 for i, r in enumerate(rows) if len(r) != 4 + 2 * landmarks]
    if bad:
        raise ValueError(f"{path}: line {bad[0]} has not 4 + {2 * landmarks} fields")
    points = np.array([[float(v) for v in r[4:]] for r in rows]).reshape(len(rows), landmarks, 2)
    boxes = np.array([[float(r[2]), float(r[3]), 200.0 * float(r[1])] for r in rows])
    return FaceImages([images / r[0] for r in rows], points, boxes)


def _hrnet(name: str, root: Path, test: str) -> DatasetSource | None:
    d = root / name
    files = [d / f"face_landmarks_{name}_{part}.csv" for part in ("train", test)]
    if not all(f.is_file() for f in files):
        return None
    try:
        parts = [read_hrnet_csv(f, d / "images", FACES[name][0]) for f in files]
    except ValueError as err:
        raise _error(name, root, str(err)) from None
    _first_image(name, root, parts)
    return _source(name, parts[0], parts[1], {"source": SOURCES[name], "layout": "hrnet_csv", "test": test})


def _first_image(name: str, root: Path, parts: list[FaceImages]) -> None:
    for part in parts:
        if not Path(part.paths[0]).is_file():
            raise _error(name, root, f"the first listed image {part.paths[0]} does not exist")


@register_dataset("300w", task="landmarks")
def face_300w(root: Path) -> DatasetSource:
    """300W: train = AFW + HELEN train + LFPW train (3,148); test = the full set (HELEN test + LFPW test + IBUG, 689)."""
    base = root / "300w"
    if (base / "afw").is_dir() or (base / "ibug").is_dir():
        tr, te = (_pts_folders(root, base, f, 68) for f in (W300_TRAIN, W300_TEST))
        parts = [FaceImages(p, pts, _boxes(pts)) for p, pts in (tr, te)]
        info = {"source": SOURCES["300w"], "layout": "ibug", "test": "full (common + challenging)"}
        return _source("300w", parts[0], parts[1], info)
    found = _hrnet("300w", root, "valid")
    if found is None:
        raise _error("300w", root, "neither the iBUG folders nor HRNet's CSVs")
    return found


def read_wflw_list(path: Path, images: Path) -> FaceImages:
    """A WFLW list file: per line 196 coordinates (x0 y0 … x97 y97), x_min y_min x_max y_max, 6 attribute flags
    (pose, expression, illumination, make-up, occlusion, blur) and the image path under ``WFLW_images/``."""
    paths, points = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 207:
            raise ValueError(
                f"{path}:{n}: {len(fields)} fields, expected 196 coordinates + 4 + 6 + the image path"
            )
        points.append(np.array(fields[:196], dtype=np.float64).reshape(98, 2))
        paths.append(images / fields[206])
    if not paths:
        raise ValueError(f"{path} lists no images")
    pts = np.stack(points)
    return FaceImages(paths, pts, _boxes(pts))


@register_dataset("wflw", task="landmarks")
def face_wflw(root: Path) -> DatasetSource:
    """WFLW: 7,500 train / 2,500 test faces with 98 landmarks."""
    base = root / "wflw"
    lists = [base / WFLW_LISTS.format(part) for part in ("train", "test")]
    if any(f.exists() for f in lists) or (base / "WFLW_images").exists():
        missing = [str(p) for p in [*lists, base / "WFLW_images"] if not p.exists()]
        if missing:
            raise _error("wflw", root, f"missing: {', '.join(missing)}")
        try:
            parts = [read_wflw_list(f, base / "WFLW_images") for f in lists]
        except ValueError as err:
            raise _error("wflw", root, str(err)) from None
        _first_image("wflw", root, parts)
        return _source("wflw", parts[0], parts[1], {"source": SOURCES["wflw"], "layout": "wflw"})
    found = _hrnet("wflw", root, "test")
    if found is None:
        raise _error("wflw", root, "neither the WFLW release nor HRNet's CSVs")
    return found


def read_cofw(mat: Path, train: bool) -> CofwImages:
    """One COFW .mat file: the 29 landmarks of every face (1-based → 0-based), images left in the file."""
    import h5py

    keys = ("IsTr", "phisTr") if train else ("IsT", "phisT")
    if not h5py.is_hdf5(mat):
        raise ValueError(f"{mat} is not a MATLAB v7.3 (HDF5) file")
    with h5py.File(mat, "r") as f:
        if any(k not in f for k in keys):
            raise ValueError(f"{mat} holds {sorted(f.keys())}, not {list(keys)}")
        phis = np.asarray(f[keys[1]][()]).T  # HDF5 stores MATLAB's N×87 as 87×N
        count = f[keys[0]].size
    if phis.ndim != 2 or phis.shape[1] < 58 or len(phis) != count:
        raise ValueError(f"{mat}: {keys[1]} has shape {phis.shape}, expected [{count}, 87]")
    points = np.stack([phis[:, :29], phis[:, 29:58]], axis=2) - 1.0
    return CofwImages(mat, keys[0], points, _boxes(points))


@register_dataset("cofw", task="landmarks")
def face_cofw(root: Path) -> DatasetSource:
    """COFW (colour): 1,345 train / 507 test occluded faces with 29 landmarks (occlusion flags not used by NME)."""
    files = [root / "cofw" / f"COFW_{part}_color.mat" for part in ("train", "test")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise _error("cofw", root, f"missing: {', '.join(missing)}")
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise _error("cofw", root, "h5py is not installed (pip install h5py==3.16.0)") from None
    try:
        parts = [read_cofw(f, train) for f, train in zip(files, (True, False))]
    except (ValueError, OSError) as err:
        raise _error("cofw", root, str(err)) from None
    return _source("cofw", parts[0], parts[1], {"source": SOURCES["cofw"], "layout": "cofw_mat"})


for _name, (_landmarks, _pairs, _base, _norm, _sigma) in FACES.items():
    TRANSFORMS.register(f"faces_{_name}")(
        face_preset(f"faces_{_name}", pairs_to_flip_index(_pairs, _landmarks, _base))
    )

__all__ = ["FACES", "LAYOUTS", "CofwImages", "FaceImages", "read_cofw", "read_hrnet_csv", "read_pts",
           "read_wflw_list"]  # fmt: skip
