"""Decoded-image cache: a preset's deterministic first stage, decoded once per dataset × part × preset.

The paper presets start with ``RGB → Resize((256, 256))`` (``imagenet224``) or ``Resize((32, 32))`` (``cifar32``):
the same pixels every epoch, and about half of the PIL path's CPU time per image (decode ≈ 1.0 ms, resize ≈ 0.9 ms of
3.3–3.7 ms, issue #19). Here they are computed once, by the preset's own PIL transforms, and kept as a memory-mapped
uint8 array ``[N, H, W, 3]``, so the rest of the pipeline starts from exactly the bytes it would have computed.

Layout: ``$TRANSFERLAB_CACHE/decoded/<dataset>-<part>-<preset>-<where>/`` (default cache ``~/.cache/transferlab``;
``<where>``: a short hash of the images' folder, so two data roots never share a cache) holding ``images.npy`` (a numpy
``.npy`` file) and ``manifest.json``: format, dataset, part, preset, the cached stage (the transforms' ``repr``),
the Pillow version, the image list's digest (paths, sizes and modification times of the files, or the bytes of an
in-memory array; and the labels), N, the shape, and the sha256 of ``images.npy``.

Rules:
- used only when the manifest equals the one the current data and preset would produce **and** the file's sha256
  matches (checked once per process and file); anything else — a changed image, another Pillow, a truncated or
  flipped byte, a missing manifest — is rebuilt, with a warning saying why, never used;
- built under a file lock (a second process waits, then finds it built), into temporary files renamed into place,
  the data file first and the manifest last: a killed build leaves nothing that could be mistaken for a cache;
- decoded in DataLoader worker processes when ``workers`` > 0 (in order; the parent writes the rows).

Size on disk: N × H × W × 3 bytes (CUB-200's 5,994 training images at 256 × 256: 1.2 GB; CIFAR-10 at 32 × 32: 150 MB).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
import torch
from torch.utils.data import DataLoader, Dataset

from transferlab.data.base import Part

FORMAT = 1
_VERIFIED: dict[tuple, bool] = {}  # (path, size, mtime_ns, sha256) already checked in this process


class CacheError(ValueError):
    """The part's images cannot be cached (no way to tell when they change)."""


def cache_root() -> Path:
    return Path(os.environ.get("TRANSFERLAB_CACHE", Path.home() / ".cache" / "transferlab")) / "decoded"


# ------------------------------------------------------------------------------------------------ identity
def _image_paths(dataset) -> list[str] | None:
    """The image files behind a dataset, in index order, for the loaders this package uses (ImageFiles,
    torchvision's ImageFolder / FGVCAircraft / StanfordCars), or None."""
    if hasattr(dataset, "paths"):
        return [str(p) for p in dataset.paths]
    for attr in ("samples", "_samples"):
        if isinstance(getattr(dataset, attr, None), list):
            return [str(s[0]) for s in getattr(dataset, attr)]
    if isinstance(getattr(dataset, "_image_files", None), list):
        return [str(p) for p in dataset._image_files]
    return None


def identity(part: Part) -> dict:
    """What the cached pixels depend on besides the preset: the image list (or array) and the labels."""
    ds, h = part.dataset, hashlib.sha256()
    paths = _image_paths(ds)
    if paths is not None:
        if len(paths) != len(part):
            raise CacheError(f"{type(ds).__name__} lists {len(paths)} files for {len(part)} labels")
        for p in paths:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        kind, where = "files", os.path.commonpath(paths) if paths else ""
    elif isinstance(getattr(ds, "data", None), np.ndarray | torch.Tensor):
        data = ds.data.numpy() if torch.is_tensor(ds.data) else ds.data
        h.update(np.ascontiguousarray(data).tobytes())
        kind, where = "array", f"{type(ds).__name__}:{getattr(ds, 'root', '')}"
    else:
        raise CacheError(
            f"the decoded-image cache cannot tell when the images of a {type(ds).__name__} change (it needs image "
            "files or an in-memory .data array); use pipeline='pil' for this dataset"
        )
    h.update(np.asarray(part.targets, dtype=np.int64).tobytes())
    return {"kind": kind, "images": len(part), "digest": h.hexdigest(), "where": where}


# --------------------------------------------------------------------------------------------- the images
@dataclass
class DecodedImages:
    """A built cache: ``rows(idx)`` → uint8 [len(idx), H, W, 3]; the memory map is opened lazily in each process
    (DataLoader workers receive the path, not the pages)."""

    path: Path
    shape: tuple[int, ...]
    manifest: dict

    def __post_init__(self) -> None:
        self._array: np.ndarray | None = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "shape": self.shape, "manifest": self.manifest}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._array = None

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, idx) -> np.ndarray:
        return self.array[np.asarray(idx, dtype=np.int64)]


class _Decode(Dataset):
    def __init__(self, part: Part, stage):
        self.part, self.stage = part, stage

    def __len__(self) -> int:
        return len(self.part)

    def __getitem__(self, i: int) -> np.ndarray:
        image, _ = self.part.dataset[i]
        return np.asarray(self.stage(image), dtype=np.uint8)


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    return np.stack(rows)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _check(folder: Path, expected: dict) -> tuple[dict | None, str]:
    """(manifest, "") if the cache in ``folder`` is what ``expected`` describes and intact; (None, why) otherwise."""
    manifest, data = folder / "manifest.json", folder / "images.npy"
    if not manifest.exists():
        return None, "no manifest" if data.exists() else ""
    try:
        found = json.loads(manifest.read_text())
        if {k: found.get(k) for k in expected} != expected:
            changed = sorted(k for k in expected if found.get(k) != expected[k])
            return None, f"stale ({', '.join(changed)} changed)"
        st = data.stat()
        key = (str(data), st.st_size, st.st_mtime_ns, found["sha256"])
        if not _VERIFIED.get(key):
            if _sha256(data) != found["sha256"]:
                return None, "corrupt (sha256 mismatch)"
            _VERIFIED[key] = True
        return found, ""
    except (OSError, ValueError, KeyError) as err:
        return None, f"unreadable ({type(err).__name__})"


@contextlib.contextmanager
def _locked(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(folder: Path, part: Part, stage, expected: dict, size: tuple[int, int], workers: int) -> dict:
    n, (h, w) = len(part), size
    tmp = folder / f".images.{os.getpid()}.npy.tmp"
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, h, w, 3))
        loader = DataLoader(_Decode(part, stage), batch_size=64, num_workers=workers, collate_fn=_stack)
        start = 0
        for rows in loader:
            if rows.shape[1:] != (h, w, 3):
                raise CacheError(f"the cached stage produced {rows.shape[1:]} images, expected {(h, w, 3)}")
            out[start : start + len(rows)] = rows
            start += len(rows)
        out.flush()
        del out
        manifest = {**expected, "shape": [n, h, w, 3], "sha256": _sha256(tmp)}
        os.replace(tmp, folder / "images.npy")  # data first, manifest last: the manifest commits the cache
        mtmp = folder / f".manifest.{os.getpid()}.json.tmp"
        mtmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        os.replace(mtmp, folder / "manifest.json")
        return manifest
    finally:
        tmp.unlink(missing_ok=True)


def open_cache(part: Part, preset: str, stage, size: tuple[int, int], *, name: str = "", workers: int = 0,
               root: Path | None = None) -> DecodedImages:  # fmt: skip
    """The decoded images of ``part`` after ``stage`` (the preset's deterministic PIL transforms, ending in a resize to
    ``size`` = (H, W)), built now if missing, stale or corrupt. ``name``: ``<dataset>-<part>`` for the folder."""
    ident = identity(part)
    where = hashlib.sha256(ident["where"].encode()).hexdigest()[:8]
    folder = (root or cache_root()) / f"{name or 'part'}-{preset}-{where}"
    expected = {"format": FORMAT, "name": name, "preset": preset, "stage": repr(stage), "pillow": PIL.__version__,
                **{k: ident[k] for k in ("kind", "images", "digest")}}  # fmt: skip
    with _locked(folder):
        manifest, why = _check(folder, expected)
        if manifest is None:
            if why:
                warnings.warn(f"decoded-image cache {folder}: {why}; rebuilding it", stacklevel=2)
            manifest = _build(folder, part, stage, expected, size, workers)
    return DecodedImages(folder / "images.npy", tuple(manifest["shape"]), manifest)


class CachedPart(Dataset):
    """``dataset[i]`` → (the cached image i as an RGB PIL image, label): a drop-in for the part's own dataset whose
    images are the cached stage's output, for the PIL transforms that follow it."""

    def __init__(self, images: DecodedImages, targets: np.ndarray):
        self.images, self.targets = images, np.asarray(targets, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        from PIL import Image

        return Image.fromarray(np.asarray(self.images.rows([i])[0])), int(self.targets[i])


__all__ = ["CacheError", "CachedPart", "DecodedImages", "FORMAT", "cache_root", "identity", "open_cache"]
