"""Shared set-up of the bad-input tests (``test_bad_inputs*.py``): a tiny paper, an in-process executor, the CLI.

The 41 cases of issue 15 and where each is tried (``B`` = test_bad_inputs.py, ``F`` = test_bad_inputs_files.py,
``P`` = test_bad_inputs_processes.py, ``R`` = test_runner.py; parametrised cases by their message):

| # | case | test |
|---|---|---|
| 1 | truncated metrics.json, then the report | B test_a_truncated_metrics_file_is_not_finished_named_and_run_again |
| 2 | the same, then `transferlab run` of that cell | B (same test) |
| 3 | `--set method=fintune` | B test_a_bad_name_or_value_is_one_line_with_exit_2_and_nothing_runs |
| 4 | a dataset or backbone typo in `--set` | B (same) |
| 5 | `--set pretrained=mini:<typo>` | B (same) |
| 6 | `--seeds -1` | B (same); P test_the_real_command_answers_a_bad_value_in_one_line_with_exit_2 |
| 7 | `--set lr=NaN` (and lr <= 0, iterations 0, a rate outside (0, 1]) | B (same) |
| 8 | hub file with wrong shapes but a matching manifest | F test_a_hub_file_that_matches_its_manifest_but_not_the_network_stops_the_grid |
| 9 | a bad checkpoint.pt in a run folder | B test_a_bad_checkpoint_is_moved_aside_named_and_the_run_starts_over |
| 10 | `DataConfig(sample_rate="abc")` in Python | B test_values_are_checked_when_a_configuration_is_made_in_python |
| 11 | a read-only results folder | B test_a_read_only_results_folder_is_one_line_before_anything_runs |
| 12 | a read-only `--out` | B test_a_read_only_report_folder_is_one_line_before_papermill |
| 13 | `kill -9` of the runner only (orphans) | R test_a_killed_runner_takes_its_workers_along_and_the_next_run_resumes_every_cell_once |
| 14 | two `transferlab run` of the same cell at once | R test_two_runners_on_the_same_cells_train_each_cell_once |
| 15 | a notebook parameter that does not exist (`-p learning_rate 0.1`) | F test_a_notebook_parameter_that_does_not_exist_is_an_error |
| 16 | `report --results /nonexistent` | B test_unknown_papers_tables_and_results_folders |
| 17 | `TRANSFERLAB_FASHION_MNIST=/nonexistent` | F test_fashion_mnist_variable_pointing_nowhere_is_an_error_never_a_fall_back |
| 18 | a notebook run from another folder (`make lab`) | F test_a_notebook_run_from_another_folder_writes_under_the_repository |
| 19 | Ctrl-C in the middle of a run | B test_ctrl_c_in_a_run_exits_130_and_the_next_run_resumes_to_the_same_numbers; P test_ctrl_c_stops_the_runner_and_its_workers_and_the_next_run_resumes_exactly |
| 20 | `kill -9` of a cell's process in the middle of a run | P test_a_cell_killed_mid_run_is_recorded_and_resumes_exactly |
| 21 | disk full during a write | B test_a_full_disk_leaves_no_partial_file_says_which_file_and_the_run_resumes |
| 22 | a pickle payload in a checkpoint | B test_a_bad_checkpoint_is_moved_aside_named_and_the_run_starts_over[pickle] |
| 23 | a pickle payload in a weights or hub file | F test_a_weights_file_with_a_pickle_payload_is_refused, test_a_hub_file_..._stops_the_grid[pickle] |
| 24 | unknown paper | B test_unknown_papers_tables_and_results_folders |
| 25 | unknown table | B (same) |
| 26 | unknown protocol | B test_a_bad_name_or_value_is_one_line_with_exit_2_and_nothing_runs |
| 27 | unknown executor | B (same) |
| 28 | bad `--jobs` (0, a word) | B (same) |
| 29 | seeds that are not integers | B (same) |
| 30 | an unknown `--set` / `--where` field | B (same) |
| 31 | a `--where` value no cell has | B (same) |
| 32 | an unknown method parameter | B (same) |
| 33 | weights of another backbone | B (same) |
| 34 | `pretrained=DEFAULT` | B (same) |
| 35 | no Fashion-MNIST anywhere, offline | F test_no_fashion_mnist_anywhere_offline_says_where_to_get_it |
| 36 | a paper-protocol dataset missing | F test_a_missing_paper_dataset_stops_the_grid_before_it_starts |
| 37 | a corrupt or truncated IDX file | F test_a_corrupt_idx_file_is_named_with_the_fix |
| 38 | a truncated hub file (checksum differs from its manifest) | F test_a_truncated_hub_file_is_deleted_said_and_pre_trained_again |
| 39 | a weights file with the wrong checksum | F test_a_weights_file_with_the_wrong_checksum_is_named_with_the_fix |
| 40 | a weights file missing, offline | F test_a_missing_weights_file_offline_names_the_file_the_url_and_where_to_put_it |
| 41 | a missing notebook | F test_a_missing_notebook_stops_the_run_before_any_cell |

Beyond the 41: other environment variables pointing nowhere (F test_an_environment_variable_pointing_nowhere_is_an_
error), an unwritable mini-hub cache (F test_the_mini_hub_cache_must_be_a_writable_folder), a device the machine
lacks, a diverging run in Python, OS errors and bugs at the command line (B), the real entry point (P).

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
