"""Shared set-up of the bad-input tests (``test_bad_inputs*.py``): a tiny paper, an in-process executor, the CLI.

- ``paper``: the paper ``tests_bad``, one mini table ``t`` of two cells on conftest's ``test_tiny`` data (fine-tuning
  conftest's tiny hub model, and training from scratch; 8 steps, a checkpoint every 4), registered for one test;
- ``in_process``: the local executor's warm worker processes replaced by the same cell code run in this process
  (``runner.cell.execute``, its output in the cell's ``run.log``), so the command line, the runner, the cells'
  logs, failure lines and files are the real ones without a process start per test;
- ``no_execution``: fails the test if any cell would run or any hub model would be pre-trained;
- ``read_only(path)``: a folder nobody may write in (mode 0555; as root, which ignores permission bits, writes
  under it are refused in this process the way the kernel refuses them for other users);
- ``cli(capsys, *argv)`` → (exit status, stdout, stderr) of ``transferlab.cli.main``;
  ``one_line(err, pattern)`` asserts an answer without a traceback whose ``transferlab: error:`` line matches.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import re
import sys
from pathlib import Path

import pytest
from transferlab import cli as cli_mod
from transferlab import hubbuild
from transferlab.papers import PAPERS, Paper, Table
from transferlab.runner import cell as cell_mod
from transferlab.runner import table as table_mod

PAPER, TABLE = "tests_bad", "t"
BASE = {"backbone": "mini_resnet", "device": "cpu", "val_fraction": 0.2, "batch_size": 16, "eval_batch_size": 128,
        "iterations": 8, "eval_every": 4, "schedule": "constant", "lr": 0.05}  # fmt: skip


@pytest.fixture
def paper(tiny_dataset, tiny_hub, monkeypatch) -> str:
    table = Table(name=TABLE, title="bad-input tests", protocol="mini", base={**BASE, "dataset": tiny_dataset},
                  grid={"method": ["finetune", "scratch"]}, seeds=(0,), provenance="tests",
                  method_overrides={"finetune": {"pretrained": f"mini:{tiny_hub}", "head_lr_mult": 1.0},
                                    "scratch": {"pretrained": "none"}})  # fmt: skip
    spec = Paper(PAPER, "bad-input tests", "https://example.org", "finetune", {(TABLE, "mini"): table})
    monkeypatch.setitem(PAPERS._items, PAPER, spec)
    return PAPER


@pytest.fixture
def in_process(monkeypatch) -> list[Path]:
    """Cells run in this process; returns the run folders in the order they ran."""
    ran: list[Path] = []

    def pool(todo, jobs, root, on_result, notebooks=None, threads=0):
        counts = {"done": 0, "failed": 0}
        for p in todo:
            ran.append(p.run_dir)
            # the real file descriptors, as in a worker: the cell's output goes to its run.log
            with contextlib.redirect_stdout(sys.__stdout__), contextlib.redirect_stderr(sys.__stderr__):
                reply = cell_mod.execute(p.cfg, p.run_dir, Path(root))
            counts["done" if reply["status"] == "done" else "failed"] += 1
            on_result(p, reply)
        return counts

    monkeypatch.setattr(table_mod, "run_pool", pool)
    return ran


@pytest.fixture
def no_execution(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("nothing may run or be pre-trained here")

    monkeypatch.setattr(table_mod, "run_pool", refuse)
    monkeypatch.setattr(hubbuild, "_pretrain", refuse)


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(path)`` makes ``path`` (created if needed) a folder no one can write in; returns it."""
    made: list[Path] = []

    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o555)
        made.append(path)
        if os.geteuid() == 0:
            _refuse_writes_under(path, monkeypatch)
        return path

    yield make
    for path in made:
        path.chmod(0o755)  # so that pytest can remove it


def _refuse_writes_under(folder: Path, monkeypatch) -> None:
    """As root (permission bits do not apply): refuse, in this process, what the kernel refuses other users."""
    real_open, real_mkdir, real_bopen = os.open, os.mkdir, builtins.open
    top = os.path.abspath(folder)

    def inside(p) -> bool:
        p = os.path.abspath(os.fspath(p))
        return p == top or p.startswith(top + os.sep)

    def denied(p) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(p))

    def guarded_open(p, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(p):
            raise denied(p)
        return real_open(p, flags, *args, **kwargs)

    def guarded_mkdir(p, *args, **kwargs):
        if inside(p) and not os.path.exists(p):
            raise denied(p)
        return real_mkdir(p, *args, **kwargs)

    def guarded_bopen(file, mode="r", *args, **kwargs):
        if isinstance(file, str | os.PathLike) and set(mode) & set("wax+") and inside(file):
            raise denied(file)
        return real_bopen(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    monkeypatch.setattr(builtins, "open", guarded_bopen)
    monkeypatch.setattr(io, "open", guarded_bopen)


class Payload:
    """A pickle that would create the folder ``marker`` when loaded: ``weights_only`` loading must refuse to run it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``transferlab <argv>`` run in this process."""
    try:
        code = cli_mod.main([str(a) for a in argv])
    except SystemExit as stop:  # argparse's own checks (choices, types)
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, pattern: str) -> str:
    """The error line of ``err``: no traceback, and its last line is ``transferlab...: error: <pattern>``."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if "error:" in ln]
    assert lines, err
    assert re.match(r"transferlab( \w+)?: error: ", lines[-1]), err
    assert re.search(pattern, lines[-1]), f"{pattern!r} not in {lines[-1]!r}"
    return lines[-1]


def run_folders(root: Path) -> list[Path]:
    """The run folders under ``root`` (``<paper>/<protocol>/<run id>``); [] when nothing was created for any cell."""
    return sorted(p for p in Path(root).glob("*/*/*") if p.is_dir() and not p.name.startswith("."))
