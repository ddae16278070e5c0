"""What ``transferlab data list`` shows: every dataset's state under a data root, and whether fetch can get it.

States, from the fetch manifest and the loader's own layout check (nothing is downloaded or written):

- ``verified``: the layout check passes and a complete manifest records the checksums verified at download;
- ``present``: the layout check passes but transferlab did not fetch it (the user's copy: checksums unknown);
- ``partial``: the folder exists but the layout check fails (an interrupted fetch, a manual step left to do, or
  a broken copy; the detail says what is missing);
- ``missing``: nothing there; the detail says how much there is to download and what it is checked against;
- ``built in``: the mini protocol's in-memory datasets, which need no data root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transferlab.data.base import DATASET_TASKS, DATASETS
from transferlab.data.fetch import check_layout, read_manifest
from transferlab.data.source_row import Source
from transferlab.data.sources import sources_table


@dataclass(frozen=True)
class Status:
    name: str
    state: str  # verified | present | partial | missing | built in | unknown
    how: str  # auto | partly | manual | -
    detail: str


def human(size: float) -> str:
    """Bytes in decimal units, three significant digits (``1.15 GB``)."""
    unit = "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            break
        size /= 1000
    return f"{size:.0f} B" if unit == "B" else f"{size:.3g} {unit}"


def summary(src: Source) -> str:
    """A missing dataset's line in ``data list``: how much to download and what it is checked against."""
    if not src.downloads:
        return f"manual steps: `transferlab data fetch {src.key}` prints them"
    kinds = sorted({c.kind for d in src.downloads for c in d.checksums})
    if all(d.checksums for d in src.downloads):
        checked = f"{'+'.join(kinds)} checked"
    else:
        checked = "no published checksum" + (" for some files" if kinds else "") + " (ours is recorded)"
    if all(d.size for d in src.downloads):
        size = human(src.size)
    else:  # some sizes are not published
        size = f"≥ {human(src.size)}" if src.size else "size unknown"
    return f"{size} to download, {checked}" + ("; plus manual steps" if src.manual else "")


def status(name: str, root: str | Path, sources: dict[str, Source] | None = None) -> Status:
    """What ``transferlab data list`` shows for one dataset: the manifest and the layout check, no download."""
    table, root = sources_table(sources), Path(root)
    if name not in table:
        if DATASET_TASKS.get(name) == "rl":
            return Status(name, "built in", "-", "Atari environment: the ROM ships inside ale-py (offline)")
        if name.startswith("mini_"):
            return Status(
                name,
                "built in",
                "-",
                "mini protocol: in memory (Fashion-MNIST, scikit-learn digits, the constructed NER set)",
            )
        return Status(name, "unknown", "-", "no row in transferlab/data/sources.py")
    src = table[name]
    folder = root / src.where
    ok, detail = check_layout(src, root)
    manifest = read_manifest(folder)
    if ok:
        state = "verified" if manifest and manifest.get("complete") else "present"
    else:
        state = "partial" if folder.is_dir() and any(folder.iterdir()) else "missing"
        detail = summary(src) if state == "missing" else detail.rstrip(".")
    variants = [k for k in table if k.startswith(f"{name}:")]
    if src.dataset not in DATASETS:
        detail = f"no loader yet; {detail}"
    if manifest and manifest.get("source") != name:
        detail += f"; fetched as {manifest.get('source')}"
    if variants:
        detail += f"; also: {', '.join(variants)}"
    return Status(name, state, src.how, detail)


def catalog(root: str | Path, sources: dict[str, Source] | None = None) -> list[Status]:
    """Every registered dataset and every source row (variants are named under their dataset)."""
    table = sources_table(sources)
    names = sorted(set(DATASETS.names()) | {k for k in table if ":" not in k})
    return [status(n, root, sources) for n in names]
