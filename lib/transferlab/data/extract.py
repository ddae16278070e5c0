"""Safe unpacking of downloaded archives (tar in any compression, zip) into a staging folder.

An archive is data from the internet: a member named ``../../.bashrc`` or ``/etc/passwd``, or a link pointing out
of the target, must not write outside it. Every member is checked *before* it is written (the target is our own
staging folder, so a refusal half-way leaves nothing in the dataset tree: the caller deletes the staging folder).
Device files and FIFOs are refused too. Where Python has it, tarfile's own ``data`` filter runs as well.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from transferlab.data.download import FetchError

_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # Python >= 3.10.12 only


class UnsafeArchive(FetchError):
    """An archive member would land outside the target folder (path traversal) or is not a plain file/folder."""


def _inside(dest: Path, name: str, archive: Path, what: str = "member") -> Path:
    """``dest/name``, after refusing absolute names, drive letters, ``..`` and anything resolving outside ``dest``."""
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
        raise UnsafeArchive(
            f"{archive.name}: {what} {name!r} points outside the target folder; nothing was kept"
        )
    target = (dest / posix).resolve()
    if target != dest.resolve() and dest.resolve() not in target.parents:
        raise UnsafeArchive(f"{archive.name}: {what} {name!r} resolves outside {dest}; nothing was kept")
    return target


def _link_target(dest: Path, name: str, target: str, archive: Path) -> None:
    """A link's target, relative to the link's folder (symlink) or the archive root (hard link), stays inside."""
    joined = posixpath.normpath(target.replace("\\", "/"))
    if target.startswith("/") or joined == ".." or joined.startswith("../"):
        raise UnsafeArchive(f"{archive.name}: link {name!r} points to {target!r}, outside the target folder")
    _inside(dest, joined, archive, "link target")


def _untar(archive: Path, dest: Path) -> int:
    count = 0
    with tarfile.open(archive, "r:*") as tf:
        for m in tf:
            _inside(dest, m.name, archive)
            if m.issym():
                if m.linkname.startswith("/"):
                    raise UnsafeArchive(
                        f"{archive.name}: link {m.name!r} points to the absolute {m.linkname!r}"
                    )
                folder = posixpath.dirname(m.name.replace("\\", "/"))
                _link_target(dest, m.name, posixpath.join(folder, m.linkname), archive)
            elif m.islnk():
                _link_target(dest, m.name, m.linkname, archive)
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchive(
                    f"{archive.name}: member {m.name!r} is a device or FIFO; nothing was kept"
                )
            try:
                if hasattr(tarfile, "data_filter"):
                    tf.extract(m, dest, filter="data")
                else:  # Python < 3.10.12: the checks above are the whole defence
                    tf.extract(m, dest)
            except _FILTER_ERROR as err:
                raise UnsafeArchive(f"{archive.name}: {err}; nothing was kept") from None
            count += m.isfile()
    return count


def _unzip(archive: Path, dest: Path) -> int:
    count = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = _inside(dest, info.filename, archive)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            count += 1
    return count


def kind_of(name: str) -> str:
    """``tar`` or ``zip`` by the file name; anything else is ``copy`` (placed as is)."""
    low = name.lower()
    if low.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    return "zip" if low.endswith(".zip") else "copy"


def unpack(archive: Path, dest: Path, kind: str) -> int:
    """Unpack (``tar``/``zip``) or place (``copy``) ``archive`` into ``dest``; the number of files written."""
    dest.mkdir(parents=True, exist_ok=True)
    if kind == "tar":
        return _untar(archive, dest)
    if kind == "zip":
        return _unzip(archive, dest)
    if kind == "copy":
        target = dest / archive.name
        try:
            os.link(archive, target)  # same file system: no second copy of a large file
        except OSError:
            shutil.copy2(archive, target)
        return 1
    raise ValueError(f"unknown unpack kind {kind!r} (tar, zip, copy)")
