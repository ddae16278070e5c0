"""Bad inputs and faults, tried as a new user would (issue 15): names, values, results files, checkpoints, folders.

Each case answers clearly — one ``transferlab: error:`` line naming the value, file or folder and the fix, exit
status 2, before anything trains — or, for faults inside a run, recovers without losing anything. The 41 cases are
numbered as in the catalogue in ``bad_inputs.py``; each test says which it covers. Data, weights, hub and
environment cases are in ``test_bad_inputs_files.py``; those that need real processes (Ctrl-C, ``kill -9``, two
runners, orphans) in ``test_bad_inputs_processes.py`` and ``test_runner.py``. Set-up (a tiny paper ``tests_bad``,
cells run in this process): ``bad_inputs.py``.
"""
# ruff: noqa: F811  (the fixtures imported from bad_inputs are the tests' arguments)

from __future__ import annotations

import errno
import functools
import json
import math
import os

import pytest
import transferlab as tl
from bad_inputs import (  # noqa: F401  fixtures
    PAPER,
    TABLE,
    Payload,
    cli,
    in_process,
    no_execution,
    one_line,
    paper,
    read_only,
    run_folders,
)
from transferlab import experiment, publish, report_view, results
from transferlab import train as train_mod
from transferlab.config import DataConfig, OptimConfig, RunConfig
from transferlab.runner import plan


# ------------------------------------------------------------------ cases 3-7, 24-34: names and values, exit 2
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "method=fintune"], r"unknown method 'fintune'\. Did you mean 'finetune'\?"),  # 3
        (["--set", "dataset=test_tin"], r"unknown dataset 'test_tin'\. Did you mean 'test_tiny'\?"),  # 4
        (["--set", "backbone=mini_resnt"], r"unknown backbone 'mini_resnt'\. Did you mean 'mini_resnet'\?"),  # 4
        (["--set", "pretrained=mini:test_tiny_digit"], r"mini hub model 'test_tiny_digit' does not exist\. Did you mean "
                                                        r"'mini:test_tiny_digits'\?"),  # 5
        (["--seeds", "-1"], r"--seeds must be integers >= 0, got \[-1\]"),  # 6
        (["--set", "lr=NaN"], r"lr=nan must be a finite number"),  # 7
        (["--set", "lr=0"], r"lr=0\.0 must be > 0"),  # 7
        (["--set", "iterations=0"], r"iterations and eval_every must be >= 1"),  # 7
        (["--set", "sample_rate=1.5"], r"sample_rate=1\.5 must lie in \(0, 1\]"),  # 7
        (["--protocol", "big"], r"argument --protocol: invalid choice: 'big'"),  # 26
        (["--executor", "pbs"], r"argument --executor: invalid choice: 'pbs'"),  # 27
        (["--jobs", "0"], r"--jobs must be >= 1, got 0"),  # 28
        (["--jobs", "two"], r"argument --jobs: invalid int value: 'two'"),  # 28
        (["--seeds", "0", "one"], r"seeds must be integers like '0 1 2' or '0,1,2', got 'one'"),  # 29
        (["--set", "learning_rate=0.1"], r"--set: unknown field\(s\) \['learning_rate'\]; valid fields: .*\blr\b"),  # 30
        (["--where", "rate=0.1"], r"--where: unknown field\(s\) \['rate'\]; valid fields: .*sample_rate"),  # 30
        (["--where", "method=nope"], r"no cell has method in \['nope'\]; the table's values of 'method': finetune, scratch"),  # 31
        (["--where", "method=scratch", "--set", 'method_params={"lamda": 1}'],
         r"method 'scratch' has no parameter\(s\) \['lamda'\].* --where method=<name> keeps only some"),  # 32
        (["--set", "pretrained=IMAGENET1K_V1"], r"weights 'IMAGENET1K_V1' are not available for backbone 'mini_resnet'"),  # 33
        (["--where", "method=finetune", "--set", "backbone=resnet18"],
         r"mini hub model 'test_tiny_digits' is a mini_resnet; the run asks for backbone 'resnet18'"),  # 33
        (["--set", "pretrained=DEFAULT"], r"pretrained='DEFAULT' is refused: name the weights explicitly"),  # 34
        (["--via-notebook", "--set", "lr=0.1"], r"--via-notebook runs the tables as they are"),
    ],
)  # fmt: skip
def test_a_bad_name_or_value_is_one_line_with_exit_2_and_nothing_runs(paper, no_execution, tmp_path, capsys, argv,
                                                                       message):  # fmt: skip
    code, _, err = cli(capsys, "run", PAPER, "--table", TABLE, "--results", tmp_path, *argv)
    assert code == 2
    one_line(err, message)
    assert list(tmp_path.iterdir()) == []  # no results folder, no run folder


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "finetun"], r"unknown paper 'finetun'\. Did you mean 'finetune'\? Valid papers: .*zoo_tuning"),  # 24
        (["run", "finetune", "--table", "nope"], r"paper 'finetune' has no table 'nope' for protocol 'mini'; its mini tables: sampling"),  # 25
        (["run", "all", "--table", "sampling"], r"--table needs one paper, not 'all'"),
        (["report"], r"name a paper or pass --all; papers: co_tuning, finetune"),
        (["report", "finetun"], r"unknown paper 'finetun'\. Did you mean 'finetune'\?"),
        (["report", "finetune", "--results", "/nonexistent"],
         r"results folder /nonexistent does not exist; run a table first .*or pass --results"),  # 16
    ],
)  # fmt: skip
def test_unknown_papers_tables_and_results_folders(no_execution, capsys, argv, message):
    code, _, err = cli(capsys, *argv)
    assert code == 2
    one_line(err, message)


def test_a_device_this_machine_lacks_is_refused_before_any_cell(paper, no_execution, tmp_path, capsys):
    if train_mod.torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = cli(capsys, "run", PAPER, "--results", tmp_path, "--set", "device=cuda")
    assert code == 2
    one_line(err, r"device='cuda' but no CUDA device is visible; use device='cpu' or 'auto'")
    assert run_folders(tmp_path) == []


def test_values_are_checked_when_a_configuration_is_made_in_python(paper, tmp_path):  # case 10
    with pytest.raises(tl.ConfigError, match=r"sample_rate='abc' has the wrong type; expected float"):
        DataConfig(sample_rate="abc")
    with pytest.raises(tl.ConfigError, match=r"seed=-1 must be an integer >= 0"):
        RunConfig(seed=-1)
    with pytest.raises(tl.ConfigError, match=r"lr=nan must be a finite number"):
        OptimConfig(lr=math.nan)
    with pytest.raises(tl.ConfigError, match=r"unknown method 'fintune'\. Did you mean 'finetune'\?"):
        tl.run(
            RunConfig(method="fintune"), root=tmp_path
        )  # names are checked against the registries by run()
    assert list(tmp_path.iterdir()) == []
    assert issubclass(tl.ConfigError, tl.TransferlabError) and issubclass(tl.WriteError, tl.TransferlabError)


def test_a_run_that_diverges_raises_a_clear_type_in_python(paper, tmp_path):
    cfg = plan(PAPER, TABLE, "mini", root=tmp_path)[1].cfg.replace(lr=1e6)
    with pytest.raises(
        tl.NonFiniteLossError, match=r"non-finite training loss .* lower the learning rate \(lr=1000000"
    ):
        tl.run(cfg, root=tmp_path)
    assert issubclass(tl.NonFiniteLossError, tl.TransferlabError)


def test_os_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    from transferlab.data import inventory

    def broken_disk(root):
        raise OSError(errno.EIO, os.strerror(errno.EIO), "/data/cub200/images.txt")

    monkeypatch.setattr(inventory, "catalog", broken_disk)
    code, _, err = cli(capsys, "data", "list")
    assert code == 2
    one_line(
        err, r"Input/output error: /data/cub200/images.txt \(set TRANSFERLAB_DEBUG=1 to see the traceback\)"
    )
    monkeypatch.setenv("TRANSFERLAB_DEBUG", "1")
    with pytest.raises(OSError):
        cli(capsys, "data", "list")
    monkeypatch.delenv("TRANSFERLAB_DEBUG")
    monkeypatch.setattr(inventory, "catalog", lambda root: 1 / 0)  # a bug: never dressed up as a user error
    with pytest.raises(ZeroDivisionError):
        cli(capsys, "data", "list")


# ------------------------------------------------------------------------ cases 1, 2: a partial metrics.json
def _run_table(capsys, root):
    code, out, err = cli(capsys, "run", PAPER, "--results", root)
    assert code == 0, out + err
    return {p.cfg.method: p for p in plan(PAPER, TABLE, "mini", root=root)}, out


def test_a_truncated_metrics_file_is_not_finished_named_and_run_again(paper, in_process, tmp_path, capsys):
    cells, out = _run_table(capsys, tmp_path)
    assert out.count(" done ") == 2 and "test accuracy (%)" in out  # each cell's headline metric
    metrics = cells["scratch"].run_dir / "metrics.json"
    whole, kept = metrics.read_bytes(), (cells["finetune"].run_dir / "metrics.json").read_bytes()
    metrics.write_bytes(whole[: len(whole) // 3])

    # case 1: results loading and the report skip it and name it; the index counts the cell as not finished
    df = results.load_results(tmp_path, paper=PAPER)
    assert list(df["method"]) == ["finetune"] and df.attrs["unreadable"] == [str(metrics)]
    shown = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(report_view, "display", lambda obj: shown.append(getattr(obj, "data", str(obj))))
        report_view.PaperReport(PAPER, str(tmp_path), str(tmp_path / "figures"))
    assert any("Skipped 1 unreadable or partial result file" in s and str(metrics) in s for s in shown)
    assert publish.paper_status(PAPER, tmp_path) == ["t (mini): 1 of 2 cells finished — partial"]

    # case 2: the next run re-runs that cell (and only it), keeps the partial file aside, and gives the same numbers
    _, out = _run_table(capsys, tmp_path)
    assert "2 cells, 1 already finished" in out and out.count(" done ") == 1
    assert json.loads(metrics.read_text())["metrics"] == json.loads(whole)["metrics"]
    (aside,) = metrics.parent.glob("metrics.json.bad-*")
    assert aside.read_bytes() == whole[: len(whole) // 3]
    assert (cells["finetune"].run_dir / "metrics.json").read_bytes() == kept  # the finished cell untouched


# ------------------------------------------------------------------ cases 9, 22: a bad checkpoint in a run folder
@pytest.mark.parametrize("content", ["garbage", "pickle"])
def test_a_bad_checkpoint_is_moved_aside_named_and_the_run_starts_over(
    paper, in_process, tmp_path, capsys, content
):
    scratch = next(p for p in plan(PAPER, TABLE, "mini", root=tmp_path) if p.cfg.method == "scratch")
    scratch.run_dir.mkdir(parents=True)
    bad, marker = scratch.run_dir / "checkpoint.pt", tmp_path / "payload-ran"
    if content == "pickle":
        train_mod.torch.save({"next_step": 4, "x": Payload(marker)}, bad)
    else:
        bad.write_bytes(b"not a checkpoint")
    before = bad.read_bytes()
    cells, _ = _run_table(capsys, tmp_path)
    assert not marker.exists()  # the payload never ran
    (aside,) = scratch.run_dir.glob("checkpoint.pt.bad-*")
    assert aside.read_bytes() == before  # kept for inspection, not deleted
    log = (scratch.run_dir / "run.log").read_text()
    assert f"checkpoint {bad} could not be used" in log and aside.name in log and "from step 0" in log
    assert (scratch.run_dir / "metrics.json").exists() and not (scratch.run_dir / "failed.json").exists()


# --------------------------------------------------------------------------------- case 19: Ctrl-C in a run
def test_ctrl_c_in_a_run_exits_130_and_the_next_run_resumes_to_the_same_numbers(paper, in_process, tmp_path, capsys,
                                                                                 monkeypatch):  # fmt: skip
    reference, _ = _run_table(capsys, tmp_path / "reference")
    started, fired = len(in_process), []

    def ctrl_c(step, _out):  # after the first checkpoint (step 4 of 8)
        if step == 6 and not fired:
            fired.append(step)
            raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(experiment, "fit", functools.partial(train_mod.fit, on_step=ctrl_c))
        code, _, err = cli(capsys, "run", PAPER, "--results", tmp_path / "r")
    assert code == 130 and "interrupted; finished cells are kept and the next run resumes the others" in err
    first = in_process[started]
    assert (first / "checkpoint.pt").exists() and not (first / "metrics.json").exists()
    cells, _ = _run_table(capsys, tmp_path / "r")
    assert "resumed from" in (first / "run.log").read_text()
    for method, p in cells.items():  # bit-identical to the uninterrupted run
        got, want = (json.loads((q.run_dir / "metrics.json").read_text()) for q in (p, reference[method]))
        assert got["metrics"] == want["metrics"] and got["history"] == want["history"], method


# ------------------------------------------------------------------------------ case 21: disk full in a write
def test_a_full_disk_leaves_no_partial_file_says_which_file_and_the_run_resumes(paper, in_process, tmp_path,
                                                                                 capsys, monkeypatch):  # fmt: skip
    real_fsync = results.os.fsync

    def full(fd):
        if "/.metrics.json." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    with monkeypatch.context() as mp:
        mp.setattr(results.os, "fsync", full)
        code, out, _ = cli(capsys, "run", PAPER, "--results", tmp_path)
    assert code == 1 and out.count("FAILED") == 2
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert all("WriteError: could not write" in line and "metrics.json (No space left on device; nothing was "
               "written)" in line for line in failed)  # fmt: skip
    assert list(tmp_path.rglob("metrics.json")) == [] and list(tmp_path.rglob("*.tmp")) == []
    assert len(list(tmp_path.rglob("checkpoint.pt"))) == 2  # what was trained is kept
    cells, out = _run_table(capsys, tmp_path)  # space again: the cells finish from their checkpoints
    assert out.count(" done ") == 2 and all(
        "resumed from" in (p.run_dir / "run.log").read_text() for p in cells.values()
    )

    kept = tmp_path / "kept.json"  # an existing file stays as it was
    results.atomic_write_json(kept, {"a": 1})

    def always_full(fd):
        raise OSError(errno.ENOSPC, "No space left")

    with monkeypatch.context() as mp:
        mp.setattr(results.os, "fsync", always_full)
        with pytest.raises(tl.WriteError, match=r"could not write .*kept\.json \(No space left; the previous file is "
                                                r"unchanged\)"):  # fmt: skip
            results.atomic_write_json(kept, {"a": 2})
    assert json.loads(kept.read_text()) == {"a": 1}


# ------------------------------------------------------------------------ cases 11, 12: read-only folders
def test_a_read_only_results_folder_is_one_line_before_anything_runs(paper, no_execution, read_only, tmp_path,
                                                                      capsys):  # fmt: skip
    ro = read_only(tmp_path / "ro")
    code, _, err = cli(capsys, "run", PAPER, "--results", ro)
    assert code == 2
    one_line(
        err, rf"results folder {ro} is not writable \(Permission denied\): pass --results <a writable folder>"
    )
    cfg = plan(PAPER, TABLE, "mini", root=ro)[1].cfg
    with pytest.raises(tl.WriteError, match=rf"cannot write in {ro}/.*: choose a writable results folder"):
        tl.run(cfg, root=ro)  # the Python API: a clear exception type
    assert list(ro.iterdir()) == []


def test_a_read_only_report_folder_is_one_line_before_papermill(paper, no_execution, read_only, tmp_path, capsys,
                                                                 monkeypatch):  # fmt: skip
    monkeypatch.setattr(publish, "build_report", lambda *a: pytest.fail("the report ran"))
    (tmp_path / "results").mkdir()
    ro = read_only(tmp_path / "ro")
    code, _, err = cli(capsys, "report", PAPER, "--results", tmp_path / "results", "--out", ro / "reports")
    assert code == 2
    one_line(
        err, rf"report folder {ro}/reports is not writable \(Permission denied\): pass --out <a writable"
    )
