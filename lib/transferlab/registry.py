"""A tiny name → object registry whose errors list the valid names (and a "did you mean").

Every pluggable thing in transferlab (datasets, backbones, methods, papers) lives in one of these, so a typo in a
papermill parameter or on the command line fails at once with the list of what exists.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from transferlab.errors import TransferlabError

T = TypeVar("T")


class RegistryError(TransferlabError, KeyError):
    """Unknown or duplicate name; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@DATASETS.register("cifar10")``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(self.unknown(name)) from None

    def unknown(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self._items, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Valid {self.kind}s: {', '.join(self.names())}"

    def check(self, name: str) -> None:
        if name not in self._items:
            raise RegistryError(self.unknown(name))

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
