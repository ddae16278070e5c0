"""The suite's environment variables, read in one place: a variable that is set must point somewhere valid.

A variable that names a folder that does not exist, a number that is not one, or a word the suite does not know is
a :class:`~transferlab.errors.ConfigError` naming the variable, its value and the fix, never a silent fall-back to
a default (``TRANSFERLAB_FASHION_MNIST=/typo`` must not quietly read another copy of the data). Unset or empty
variables take their defaults. ``check()`` validates every variable at once (the command line calls it before
doing anything); each reader also validates the variable it reads, so the Python API gets the same answers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from transferlab.errors import ConfigError


@dataclass(frozen=True)
class Variable:
    name: str
    kind: str  # folder (must exist) | root (created on demand; must not be a file) | int | choice | url
    meaning: str
    choices: tuple[str, ...] = ()


VARIABLES = {v.name: v for v in (
    Variable("TRANSFERLAB_CACHE", "root", "a writable folder for the cache (the mini hub)"),
    Variable("TRANSFERLAB_RESULTS", "root", "a writable results folder"),
    Variable("TRANSFERLAB_WEIGHTS_DIR", "folder", "a folder with pre-trained weight files"),
    Variable("TRANSFERLAB_HUB_RELEASE", "folder", "a folder holding a mini-hub build (<name>-<hash>.pt and .json)"),
    Variable("TRANSFERLAB_FASHION_MNIST", "folder", "a folder holding the four Fashion-MNIST idx files"),
    Variable("TRANSFERLAB_NOTEBOOKS", "folder", "a folder holding the paper notebooks (default: notebooks/)"),
    Variable("TRANSFERLAB_THREADS", "int", "a number of CPU threads per run (0: automatic)"),
    Variable("TRANSFERLAB_PROGRESS", "choice", "one of auto, text, off", ("auto", "text", "off")),
    Variable("TRANSFERLAB_DATA_MIRROR", "url", "an http(s) base URL"),
)}  # fmt: skip


def _raw(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _bad(var: Variable, value: str, why: str) -> ConfigError:
    return ConfigError(f"{var.name}={value!r} {why}: set it to {var.meaning}, or unset it")


def folder(name: str) -> Path | None:
    """The folder ``$name`` points to (None when unset); ConfigError if it is set but is not an existing folder
    (kind ``folder``) or is a file (kind ``root``, created on demand)."""
    var, value = VARIABLES[name], _raw(name)
    if value is None:
        return None
    path = Path(value).expanduser()
    if var.kind == "folder" and not path.is_dir():
        raise _bad(var, value, "is a file, not a folder" if path.exists() else "points to no folder")
    if var.kind == "root" and path.exists() and not path.is_dir():
        raise _bad(var, value, "is a file, not a folder")
    return path


def integer(name: str, default: int = 0, minimum: int = 0) -> int:
    var, value = VARIABLES[name], _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _bad(var, value, "is not an integer") from None
    if number < minimum:
        raise _bad(var, value, f"must be >= {minimum}")
    return number


def choice(name: str, default: str) -> str:
    var, value = VARIABLES[name], _raw(name)
    if value is None:
        return default
    if value not in var.choices:
        raise _bad(var, value, "is not a valid choice")
    return value


def url(name: str) -> str | None:
    var, value = VARIABLES[name], _raw(name)
    if value is not None and not value.startswith(("http://", "https://")):
        raise _bad(var, value, "is not an http(s) URL")
    return value


def check() -> None:
    """Validate every variable that is set (the first bad one is a ConfigError)."""
    for var in VARIABLES.values():
        if var.kind in ("folder", "root"):
            folder(var.name)
        elif var.kind == "int":
            integer(var.name)
        elif var.kind == "choice":
            choice(var.name, var.choices[0])
        else:
            url(var.name)


__all__ = ["VARIABLES", "Variable", "check", "choice", "folder", "integer", "url"]
