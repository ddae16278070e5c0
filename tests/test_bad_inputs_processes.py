"""Bad inputs and faults that need real processes (issue 15): Ctrl-C and ``kill -9`` in the middle of a run, and the
real ``transferlab`` entry point.

The runs use ``test_runner.py``'s test paper (``tests_runner``, registered in every child process through its
``sitecustomize``) and its ``kill`` table: a fine-tuning cell, and a cell that checkpoints at step 20 of 60 and then
waits for a gate file, so the test can interrupt it at a known point. After the fault, the next ``transferlab run``
must resume the cell from its checkpoint and give exactly the numbers of an uninterrupted run. The other two
process faults are in ``test_runner.py``: a killed runner takes its workers along (case 13, no orphan keeps
training) and two runners on the same cells train each once (case 14, the run-folder lock).
"""
# ruff: noqa: F811  (the fixture imported from test_runner is the tests' argument)

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_runner import PAPER, _comparable, _workers_of, test_paper  # noqa: F401  test_paper: a fixture
from transferlab.nbexec import REPO
from transferlab.runner import plan, run_table


def _transferlab(*argv, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transferlab.cli", *map(str, argv)], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=env, **kwargs)  # fmt: skip


def test_the_real_command_answers_a_bad_value_in_one_line_with_exit_2(tmp_path):
    """Case 6 through the installed entry point: the exit status and the message reach the shell."""
    done = _transferlab("run", "finetune", "--seeds", "-1", "--results", tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "transferlab: error: --seeds must be integers >= 0, got [-1]\n"


@pytest.mark.slow  # four entry-point processes: ~20 s on 2 cores
def test_a_new_user_meets_no_traceback(tmp_path):
    nowhere = {**os.environ, "TRANSFERLAB_FASHION_MNIST": "/nonexistent"}
    for argv, env, code, message in [
        (["--version"], None, 0, "transferlab "),
        (["report", "finetune", "--results", tmp_path / "none"], None, 2, "results folder"),
        (
            ["data", "check", "mini_fmnist"],
            nowhere,
            2,
            "TRANSFERLAB_FASHION_MNIST='/nonexistent' points to no folder",
        ),
        (["run", "finetune", "--set", "lr=NaN"], None, 2, "lr=nan must be a finite number"),
    ]:
        done = _transferlab(*argv, env=env)
        assert done.returncode == code and message in done.stdout + done.stderr, (argv, done.stderr)
        assert "Traceback" not in done.stderr


@pytest.fixture
def reference(test_paper, tmp_path, monkeypatch):
    """The ``kill`` table run without interruption (gate open): what every resumed run must reproduce."""
    (tmp_path / "open").touch()
    monkeypatch.setenv("TRANSFERLAB_TEST_GATE", str(tmp_path / "open"))
    counts = run_table(PAPER, "kill", "mini", jobs=1, root=tmp_path / "reference", out=lambda *_: None)
    assert counts["done"] == 2
    monkeypatch.setenv("TRANSFERLAB_TEST_GATE", str(tmp_path / "gate"))  # closed for the test's own runs
    return {
        p.cfg.method: p.run_dir / "metrics.json"
        for p in plan(PAPER, "kill", "mini", root=tmp_path / "reference")
    }


def _start_and_wait_for_the_gate(root: Path) -> tuple[subprocess.Popen, list]:
    """A runner in its own process group (as a terminal starts it), once the gated cell has checkpointed."""
    proc = subprocess.Popen([sys.executable, "-m", "transferlab.cli", "run", PAPER, "--table", "kill", "--jobs", "1",
                             "--results", str(root)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    planned = plan(PAPER, "kill", "mini", root=root)
    while not all((p.run_dir / name).exists() for p, name in zip(planned, ("metrics.json", "checkpoint.pt"))):
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    return proc, planned


def _resume_and_compare(root: Path, reference: dict, gate: Path) -> None:
    gate.touch()
    again = _transferlab("run", PAPER, "--table", "kill", "--jobs", "1", "--results", root)
    assert again.returncode == 0 and "2 cells, 1 already finished" in again.stdout, (
        again.stdout + again.stderr
    )
    for p in plan(PAPER, "kill", "mini", root=root):
        assert p.status == "done"
        assert _comparable(p.run_dir / "metrics.json") == _comparable(reference[p.cfg.method]), p.cfg.method
    gated = plan(PAPER, "kill", "mini", root=root)[1].run_dir
    assert "resumed from" in (gated / "run.log").read_text()
    assert list(root.rglob("checkpoint.pt")) == [] and list(root.rglob("*.tmp")) == []


@pytest.mark.slow  # three runs of a 60-step table in worker processes: ~60 s on 2 cores
def test_ctrl_c_stops_the_runner_and_its_workers_and_the_next_run_resumes_exactly(
    reference, tmp_path
):  # case 19
    proc, _ = _start_and_wait_for_the_gate(tmp_path / "r")
    workers = _workers_of(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted; finished cells are kept and the next run resumes the others" in out
    assert not any(Path(f"/proc/{w}").exists() and "zombie" not in Path(f"/proc/{w}/status").read_text().lower()
                   for w in workers)  # fmt: skip
    _resume_and_compare(tmp_path / "r", reference, tmp_path / "gate")


@pytest.mark.slow  # three runs of a 60-step table in worker processes: ~60 s on 2 cores
def test_a_cell_killed_mid_run_is_recorded_and_resumes_exactly(reference, tmp_path):  # case 20
    proc, planned = _start_and_wait_for_the_gate(tmp_path / "r")
    (worker,) = _workers_of(proc.pid)
    os.kill(worker, signal.SIGKILL)  # the cell's process, as the out-of-memory killer would
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out  # the table goes on; the cell is recorded as failed, with the cause
    assert "the worker process died (signal 9) while running this cell" in out
    assert (planned[1].run_dir / "failed.json").exists() and (planned[1].run_dir / "checkpoint.pt").exists()
    _resume_and_compare(tmp_path / "r", reference, tmp_path / "gate")
