"""Steps run after unpacking, turning an official release into a layout the loader reads (``folders.py``).

Several releases ship their split as separate index files rather than as folders. Instead of copying tens of
thousands of images into ``train/<class>/`` folders, these steps write the image lists of layout (a) of
:mod:`transferlab.data.folders` — ``train.txt``, ``test.txt``, ``classes.txt`` next to the untouched images — so the
official split is used exactly and every image path can be traced back to the archive. DMLab is the exception: its
only public form is TFRecord shards, whose JPEG bytes are written out as an ImageFolder tree.

Each step takes the staging folder (already holding the unpacked archives) and the downloaded files by name, writes
into the staging folder only, and returns counts for the manifest. A step that finds an index inconsistent with the
images raises :class:`PrepareError`; the staging folder is then discarded, so no half-converted tree is left.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from pathlib import Path

from transferlab.data.download import FetchError
from transferlab.data.tfrecord import example, records

Prepare = Callable[[Path, dict[str, Path]], dict]


class PrepareError(FetchError):
    """An official index file does not match the unpacked images (or is missing)."""


def _need(path: Path) -> Path:
    if not path.exists():
        raise PrepareError(f"expected {path.name} after unpacking, in {path.parent}: the archive changed?")
    return path


def write_lists(staging: Path, parts: dict[str, list[tuple[str, str]]], classes: list[str]) -> dict:
    """``<part>.txt`` (``relative/path.jpg <label>``) for each part and ``classes.txt``; the first image must exist."""
    index = {c: k for k, c in enumerate(classes)}
    counts = {"classes": len(classes)}
    for part, rows in parts.items():
        if not rows:
            raise PrepareError(f"the official {part} split lists no images")
        _need(staging / rows[0][0])
        text = "".join(f"{path} {index[cls]}\n" for path, cls in rows)
        (staging / f"{part}.txt").write_text(text, encoding="utf-8")
        counts[part] = len(rows)
    (staging / "classes.txt").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    return counts


def hoist(staging: Path, archives: dict[str, Path]) -> dict:
    """Move the contents of a lone top-level folder up one level (archives that wrap everything in one folder)."""
    entries = list(staging.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        inner = entries[0].rename(staging / ".hoisted")
        for e in inner.iterdir():
            e.rename(staging / e.name)
        inner.rmdir()
    return {}


def indoor67_lists(staging: Path, archives: dict[str, Path]) -> dict:
    """MIT Indoor 67: ``Images/<scene>/*.jpg`` + the official ``TrainImages.txt`` / ``TestImages.txt`` (80/20 per
    class, lines ``<scene>/<file>.jpg``) → lists with paths under ``Images/``; classes sorted by name."""
    parts = {}
    for part, name in (("train", "TrainImages.txt"), ("test", "TestImages.txt")):
        lines = _need(staging / name).read_text(encoding="utf-8", errors="replace").splitlines()
        parts[part] = [(f"Images/{ln.strip()}", ln.strip().split("/")[0]) for ln in lines if ln.strip()]
    classes = sorted({c for rows in parts.values() for _, c in rows})
    return write_lists(staging, parts, classes)


def stanford40_lists(staging: Path, archives: dict[str, Path]) -> dict:
    """Stanford 40 Actions: ``JPEGImages/*.jpg`` + ``ImageSplits/<action>_{train,test}.txt`` (100 train images per
    action, the rest test) → lists with paths under ``JPEGImages/``; classes are the action names, sorted."""
    splits = _need(staging / "ImageSplits")
    actions = sorted(p.name[: -len("_train.txt")] for p in splits.glob("*_train.txt"))
    parts: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for action in actions:
        for part in parts:
            lines = _need(splits / f"{action}_{part}.txt").read_text(encoding="utf-8").split()
            parts[part] += [(f"JPEGImages/{name}", action) for name in lines]
    return write_lists(staging, parts, actions)


def _mat_str(x) -> str:
    """The string inside MATLAB's nested cell arrays as scipy returns them (``array([array(['a/b.jpg'])])``)."""
    while not isinstance(x, str):
        x = x.ravel()[0] if hasattr(x, "ravel") else x[0]
    return x


def stanford_dogs_lists(staging: Path, archives: dict[str, Path]) -> dict:
    """Stanford Dogs: ``Images/<synset>-<breed>/*.jpg`` + ``train_list.mat`` / ``test_list.mat`` (``file_list``,
    1-based ``labels``) → lists under ``Images/``; class k is the breed folder of label k+1 (12,000 / 8,580)."""
    import scipy.io

    parts, names = {}, {}
    for part in ("train", "test"):
        mat = scipy.io.loadmat(_need(staging / f"{part}_list.mat"))
        files = [_mat_str(f) for f in mat["file_list"].ravel()]
        labels = [int(y) for y in mat["labels"].ravel()]
        for f, y in zip(files, labels):
            if names.setdefault(y, f.split("/")[0]) != f.split("/")[0]:
                raise PrepareError(
                    f"{part}_list.mat: label {y} names two folders, {names[y]} and {f.split('/')[0]}"
                )
        parts[part] = [(f"Images/{f}", f.split("/")[0]) for f in files]
    classes = [names[y] for y in sorted(names)]
    return write_lists(staging, parts, classes)


DMLAB_SHARD = re.compile(r"dmlab-(train|validation|test)\.tfrecord")
DMLAB_PARTS = {"train": "train", "validation": "val", "test": "test"}


def dmlab_images(staging: Path, archives: dict[str, Path]) -> dict:
    """DMLab: the TFRecord shards of ``dmlab.tar.gz`` (read as a stream, never unpacked to disk) → ImageFolder
    ``{train,val,test}/<label>/<n>.jpg`` with the JPEG bytes unchanged; TFDS's ``validation`` becomes ``val/``."""
    counts = dict.fromkeys(DMLAB_PARTS.values(), 0)
    with tarfile.open(archives["dmlab.tar.gz"], "r|*") as tf:
        for member in tf:
            m = DMLAB_SHARD.search(member.name.rsplit("/", 1)[-1])
            fh = tf.extractfile(member) if m and member.isfile() else None
            if fh is None:
                continue
            part = DMLAB_PARTS[m.group(1)]
            for rec in records(fh):
                ex = example(rec)
                if not ex.get("image") or not ex.get("label"):
                    raise PrepareError(f"{member.name}: a record without image or label ({sorted(ex)})")
                out = staging / part / str(ex["label"][0]) / f"{counts[part]:06d}.jpg"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(ex["image"][0])
                counts[part] += 1
    if not counts["train"] or not counts["test"]:
        raise PrepareError(f"dmlab.tar.gz held no train or no test TFRecord shard (counts: {counts})")
    return counts
