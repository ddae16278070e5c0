"""``transferlab data fetch``: download, verify, unpack into the loader's layout, and record what was done.

A fetch of one dataset (a row of :mod:`transferlab.data.sources`) goes through stages that each leave the tree in a
state ``transferlab data list`` can name:

1. every file is downloaded into ``<folder>/.transferlab-downloads/`` (``.part`` until verified: see
   :mod:`transferlab.data.download`);
2. all of them are unpacked into ``<folder>/.transferlab-staging/`` and the row's prepare step runs there;
3. the staged entries are moved into ``<folder>``. Entries already there that an earlier fetch did not create (the
   manifest lists those it did) are the user's: the fetch stops before touching anything and says which;
4. the loader's own layout check runs (``transferlab.data.load``; for rows without a loader, the row's paths), and
   the manifest ``<folder>/.transferlab-fetch.json`` is written: source, date, URLs, sizes, md5 and sha256 of every
   file, which digests were checked and who published them, the entries created.

Rows with no automatic source raise :class:`ManualSteps` (exit 2 from the CLI) with the steps and the layout: a
fetch never leaves a silent partial tree. The manifest is marked complete only when the layout check passes.
"""

from __future__ import annotations

import datetime
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from transferlab.data.base import DATASETS, DatasetNotFoundError
from transferlab.data.download import DEFAULT_RETRY, Checksum, FetchError, Retry, download
from transferlab.data.extract import unpack
from transferlab.data.source_row import Source
from transferlab.data.sources import lookup
from transferlab.results import atomic_write_json

MANIFEST = ".transferlab-fetch.json"
DOWNLOADS = ".transferlab-downloads"
STAGING = ".transferlab-staging"
OURS = "ours: sha256 recorded at the first download ({date}); none published"


class ManualSteps(FetchError):
    """The dataset (or part of it) has no automatic public source; the message gives the steps and the layout."""


def manual_message(src: Source, root: Path, why: str = "") -> str:
    head = why or f"{src.key}: no automatic public download ({src.page})"
    text = f"{head}.\nManual steps:\n" + "\n".join(f"  {line}" for line in src.manual.splitlines())
    text += f"\nExpected layout (<data_root> = {root}):\n{src.layout}"
    text += f"\nNote: {src.notes}" if src.notes else ""
    return text + f"\nThen: transferlab data check {src.dataset} --root {root}"


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_layout(src: Source, root: Path) -> tuple[bool, str]:
    """(ok, detail): the registered loader's verdict, or the row's ``expect`` paths when there is no loader."""
    if src.dataset in DATASETS:
        try:
            ds = DATASETS.get(src.dataset)(Path(root))
        except DatasetNotFoundError as err:
            return False, str(err).splitlines()[0]
        except Exception as err:  # a loader's own bug must not stop `data list`: report it as the detail
            return False, f"the {src.dataset} loader failed: {type(err).__name__}: {err}"
        kind = "landmarks" if ds.task == "landmarks" else "classes"
        return True, f"{ds.num_classes} {kind}, {len(ds.train)} train / {len(ds.test)} test"
    folder = Path(root) / src.where
    missing = [p for p in src.expect if not (folder / p).exists()]
    if not src.expect or missing:
        return False, f"missing under {folder}: {', '.join(missing) or 'everything (no loader)'}"
    return True, "expected paths present (no loader registered yet)"


def _rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _recorded(old: dict | None, name: str) -> tuple[Checksum, ...]:
    """The sha256 recorded as ours at an earlier download of ``name`` (when none is published), if any."""
    for f in (old or {}).get("files", []):
        if f.get("name") == name and f.get("recorded"):
            return (Checksum("sha256", f["recorded"]["value"], f["recorded"]["origin"]),)
    return ()


def _place(folder: Path, staging: Path, manifest: dict, old: dict | None) -> None:
    """Move the staged entries into ``folder``, replacing only entries an earlier fetch created."""
    entries = sorted(e.name for e in staging.iterdir())
    owned = set((old or {}).get("entries", []))
    theirs = [n for n in entries if (folder / n).exists() and n not in owned]
    if theirs:
        raise FetchError(
            f"{folder} already holds {', '.join(theirs)}, not made by `transferlab data fetch`: nothing was changed. "
            "Move it away (or check it with `transferlab data check`) and fetch again"
        )
    manifest["entries"] = sorted(owned | set(entries))
    atomic_write_json(folder / MANIFEST, {**manifest, "complete": False})  # a kill from here on: still ours
    for name in entries:
        _rm(folder / name)
        (staging / name).rename(folder / name)
    staging.rmdir()


def fetch(
    key: str,
    root: str | Path,
    sources: dict[str, Source] | None = None,
    force: bool = False,
    keep_archives: bool = False,
    retry: Retry = DEFAULT_RETRY,
    progress: bool = True,
    log=print,
) -> dict:
    """Fetch the dataset ``key`` (``name`` or ``name:variant``) under ``root``; its manifest.

    Already verified (manifest complete and layout check passing), or present without a manifest (the user's own
    copy), it is left alone unless ``force``. ``sources`` replaces the table (tests; see ``sources_table``).
    """
    src, root = lookup(key, sources), Path(root)
    folder = root / src.where
    old = read_manifest(folder)
    if old and old.get("source") != src.key and old.get("entries"):
        raise FetchError(
            f"{folder} holds {old.get('source')!r} (fetched {old.get('fetched_at')}); fetch {src.key!r} into "
            "another --root"
        )
    ok, detail = check_layout(src, root)
    if ok and not force:
        if old and old.get("source") == src.key and not old.get("complete"):  # the manual part has been added
            old.update(complete=True, layout_check=detail)
            atomic_write_json(folder / MANIFEST, old)
        state = (
            "verified" if old and old.get("complete") else "present (not fetched by transferlab: unverified)"
        )
        log(f"{src.key}: {state} under {folder}, {detail}; nothing to do (--force fetches again)")
        return old or {}
    if not src.downloads:
        raise ManualSteps(manual_message(src, root))
    manifest = {"schema": 1, "source": src.key, "dataset": src.dataset, "title": src.title, "page": src.page,
                "licence": src.licence, "notes": src.notes, "fetched_at": _now(), "folder": str(folder),
                "files": []}  # fmt: skip
    paths = {}
    for d in src.downloads:
        log(f"{src.key}: {d.name} ({d.urls[0]})")
        expected = d.checksums or _recorded(old, d.name)
        path = folder / DOWNLOADS / d.name
        got = download(d.urls, path, expected, retry, progress)
        record = {"name": d.name, **got, "checked": [asdict(c) for c in expected]}
        if not d.checksums:
            origin = expected[0].origin if expected else OURS.format(date=manifest["fetched_at"])
            record["recorded"] = {"kind": "sha256", "value": got["sha256"], "origin": origin}
        manifest["files"].append(record)
        paths[d.name] = path
    staging = folder / STAGING
    _rm(staging)
    try:
        for d, record in zip(src.downloads, manifest["files"]):
            if d.kind() != "keep":
                log(f"{src.key}: unpacking {d.name}")
                record["unpacked"] = unpack(paths[d.name], staging / d.into, d.kind())
        staging.mkdir(parents=True, exist_ok=True)
        if src.prepare is not None:
            manifest["prepared"] = src.prepare(staging, paths)
        _place(folder, staging, manifest, old)
    finally:
        if staging.exists():
            _rm(staging)
    ok, detail = check_layout(src, root)
    manifest.update(complete=ok, layout_check=detail)
    atomic_write_json(folder / MANIFEST, manifest)
    if not ok:
        why = f"{src.key}: downloaded and unpacked, but the layout check fails ({detail})"
        raise ManualSteps(manual_message(src, root, why)) if src.manual else FetchError(why)
    if not keep_archives:
        _rm(folder / DOWNLOADS)
    log(f"{src.key}: verified under {folder}, {detail}")
    return manifest
