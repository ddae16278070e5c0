"""The row types of the sources table (:mod:`transferlab.data.sources`): a file to download, and a dataset's source.

Frozen, so the table cannot be changed by accident at run time; tests and ``$TRANSFERLAB_DATA_MIRROR`` derive
modified copies with ``dataclasses.replace`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.data.download import Checksum
from transferlab.data.extract import kind_of
from transferlab.data.prepare import Prepare


@dataclass(frozen=True)
class Download:
    name: str  # the file's name on disk and under a mirror
    urls: tuple[str, ...]  # tried in order: the primary URL, then mirrors
    checksums: tuple[Checksum, ...] = ()  # all must match; () = none published (ours is recorded)
    size: int = 0  # bytes, for display
    unpack: str = ""  # tar | zip | copy | keep (left for the prepare step); "" = from the file name
    into: str = ""  # sub-folder of the dataset folder

    def kind(self) -> str:
        return self.unpack or kind_of(self.name)


@dataclass(frozen=True)
class Source:
    key: str  # the registered dataset name, or "<name>:<variant>" for an alternative source
    title: str
    page: str  # the dataset's own page
    licence: str
    layout: str  # what fetch leaves under <data_root> (manual rows: what the user must build)
    downloads: tuple[Download, ...] = ()
    manual: str = ""  # steps a person must take (instead of, or on top of, the downloads)
    prepare: Prepare | None = None  # run on the unpacked files (transferlab.data.prepare)
    folder: str = ""  # under <data_root>; default: the dataset name
    expect: tuple[str, ...] = ()  # paths (under folder) checked when no loader is registered
    notes: str = ""

    @property
    def dataset(self) -> str:
        return self.key.partition(":")[0]

    @property
    def where(self) -> str:
        return self.folder or self.dataset

    @property
    def how(self) -> str:
        """auto (all files downloadable) | manual (none) | partly (some files need a person)."""
        return "manual" if not self.downloads else "partly" if self.manual else "auto"

    @property
    def size(self) -> int:
        return sum(d.size for d in self.downloads)
