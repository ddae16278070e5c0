"""The batch runner end to end: planning, argument checks, warm workers, kill-and-resume, locks, failures, submitit.

Cells run the real suite on the built-in ``mini_digits`` dataset for 10 steps (the kill test: 60), fine-tuning
conftest's 10-step ``test_tiny_digits`` hub model or training from scratch, in the runner's warm worker processes.

The test paper ``tests_runner``, the tiny hub model and two test methods are registered in this process by
fixtures; the processes the runner starts (workers, papermill kernels, submitit tasks, the ``transferlab`` command)
see them through a ``sitecustomize`` module put on ``PYTHONPATH`` that registers the same specs (passed as JSON in
an environment variable) right after ``transferlab`` is imported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import fields
from pathlib import Path

import pytest
from transferlab import api, cli, hubbuild
from transferlab.config import ConfigError
from transferlab.nbexec import REPO
from transferlab.papers import PAPERS, Paper, Table
from transferlab.results import read_json
from transferlab.runner import plan, run_table, status_json
from transferlab.runner import slurm as slurm_mod
from transferlab.runner import workers as workers_mod

PAPER = "tests_runner"
REGISTRY_ENV = "TRANSFERLAB_TEST_REGISTRY"

BASE = {"backbone": "mini_resnet", "dataset": "mini_digits", "device": "cpu", "val_fraction": 0.2, "batch_size": 16,
        "eval_batch_size": 512, "iterations": 10, "eval_every": 5, "schedule": "constant"}  # fmt: skip
SCRATCH = {"pretrained": "none", "lr": 0.05, "head_lr_mult": 1.0}

# Registers the specs in $TRANSFERLAB_TEST_REGISTRY, and two test methods, in every Python process started with this
# file's folder on PYTHONPATH, right after the `transferlab` package has been imported there.
SITECUSTOMIZE = """
import importlib.abc
import sys


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "transferlab":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module

                def exec_module(module):
                    run(module)
                    _register()

                spec.loader.exec_module = exec_module
                return spec
        return None


def _register():
    import json
    import os
    import signal

    from transferlab.methods import METHODS
    from transferlab.methods.scratch import Scratch
    from transferlab.models.mini_hub import MINI_HUB, HubModel
    from transferlab.papers import PAPERS, Paper, Table

    if "tests_kill_worker" not in METHODS:
        class KillWorker(Scratch):  # dies like an out-of-memory kill in the middle of training
            name = "tests_kill_worker"

            def train_step(self, x, y, optimizer):
                os.kill(os.getpid(), signal.SIGKILL)

        class ShowEnv(Scratch):  # records which GPU token and threads its worker got
            name = "tests_show_env"

            def artifacts(self):
                import torch

                return {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                        "threads": torch.get_num_threads(), "pid": os.getpid()}

        class Gate(Scratch):  # after 20 steps, waits until the file $TRANSFERLAB_TEST_GATE exists
            name = "tests_gate"

            def train_step(self, x, y, optimizer):
                import time

                self.calls = getattr(self, "calls", 0) + 1
                while self.calls > 20 and not os.path.exists(os.environ["TRANSFERLAB_TEST_GATE"]):
                    time.sleep(0.05)
                return super().train_step(x, y, optimizer)

        METHODS.register("tests_kill_worker")(KillWorker)
        METHODS.register("tests_show_env")(ShowEnv)
        METHODS.register("tests_gate")(Gate)
    specs = json.loads(os.environ.get("TRANSFERLAB_TEST_REGISTRY", "{}"))
    for hub in specs.get("hub", []):
        if hub["name"] not in MINI_HUB:
            MINI_HUB.register(hub["name"])(HubModel(**hub))
    for p in specs.get("papers", []):
        if p["name"] not in PAPERS:
            tables = {(t["name"], t["protocol"]): Table(**{**t, "seeds": tuple(t["seeds"])}) for t in p["tables"]}
            PAPERS.register(p["name"])(Paper(**{**p, "tables": tables}))


sys.meta_path.insert(0, _RegisterAfterImport())
"""


def _paper(hub: str) -> Paper:
    finetune = {"pretrained": f"mini:{hub}", "lr": 0.01, "head_lr_mult": 10.0}

    def table(name: str, grid: dict, overrides: dict, seeds=(0, 1), missing=None, **base) -> Table:
        return Table(name=name, title=f"test table {name}", protocol="mini", base={**BASE, **base}, grid=grid,
                     method_overrides=overrides, seeds=seeds, provenance="tests", missing=missing or {})  # fmt: skip

    both = {"finetune": finetune, "scratch": SCRATCH}
    tables = [
        table("grid", {"method": ["finetune", "scratch"]}, both),
        # the second cell stops after 20 of its 60 steps (checkpoints every 5) until the test opens its gate
        table(
            "kill",
            {"method": ["finetune", "tests_gate"]},
            {**both, "tests_gate": SCRATCH},
            (0,),
            iterations=60,
            eval_every=5,
        ),  # fmt: skip
        table(
            "missing",
            {"method": ["scratch", "not_a_method_yet"]},
            {"scratch": SCRATCH},
            (0,),
            missing={"not_a_method_yet": "a method this suite does not have yet"},
        ),  # fmt: skip
        # a valid configuration that fails while training (its loss diverges)
        table(
            "broken", {"method": ["scratch"], "lr": [1e6, 0.05]}, {"scratch": {"pretrained": "none"}}, (0,)
        ),
        table(
            "dies",
            {"method": ["tests_kill_worker", "scratch"]},
            {"tests_kill_worker": SCRATCH, "scratch": SCRATCH},
            (0,),
        ),  # fmt: skip
        table("env", {"method": ["tests_show_env"]}, {"tests_show_env": SCRATCH}, (0, 1, 2, 3)),
    ]
    return Paper(
        PAPER, "runner tests", "https://example.org", "finetune", {(t.name, t.protocol): t for t in tables}
    )


def _to_json(paper: Paper) -> dict:
    plain = {f.name: getattr(paper, f.name) for f in fields(paper) if f.name != "tables"}
    return {**plain, "tables": [dataclasses.asdict(t) for t in paper.tables.values()]}


@pytest.fixture(scope="module")
def test_paper(built_hub, tmp_path_factory):
    """Register ``tests_runner`` here and, via sitecustomize, in every process the runner starts."""
    from transferlab.models.mini_hub import MINI_HUB

    plugin = tmp_path_factory.mktemp("plugin")
    (plugin / "sitecustomize.py").write_text(SITECUSTOMIZE)
    sys.path.insert(0, str(plugin))
    import importlib

    import sitecustomize  # noqa: F401  the same registrations in this process

    importlib.reload(sitecustomize)
    sitecustomize._register()
    paper = _paper(built_hub)
    specs = {"hub": [dataclasses.asdict(MINI_HUB.get(built_hub))], "papers": [_to_json(paper)]}
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PAPERS._items, PAPER, paper)
        mp.setenv(REGISTRY_ENV, json.dumps(specs))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugin), str(REPO / "lib"),
                                                               os.environ.get("PYTHONPATH")])))  # fmt: skip
        mp.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        yield PAPER
    sys.path.remove(str(plugin))


def _run_dirs(root: Path) -> list[Path]:
    base = root / PAPER / "mini"
    return (
        sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        if base.exists()
        else []
    )


def _assert_counts(counts: dict, **expected: int) -> None:
    assert {k: counts.get(k) for k in expected} == expected, counts


def _check_finished(planned) -> None:
    """Each cell: metrics.json of its own config, a whole learning curve, no checkpoint or failure left."""
    for p in planned:
        metrics = read_json(p.run_dir / "metrics.json")
        assert metrics["config_hash"] == p.cfg.config_hash() and metrics["run_id"] == p.run_dir.name
        steps = [h["step"] for h in metrics["history"]]
        assert steps == sorted(set(steps)) and steps[-1] == p.cfg.optim.iterations
        assert not (p.run_dir / "checkpoint.pt").exists() and not (p.run_dir / "failed.json").exists()


def _comparable(metrics_file: Path) -> dict:
    """What must not depend on who ran a cell: the numbers and the curve (not timings, hosts or provenance)."""
    d = read_json(metrics_file)
    return {"metrics": d["metrics"], "history": [{k: v for k, v in h.items()} for h in d["history"]],
            "config_hash": d["config_hash"], "params": d["cost"]["params"]}  # fmt: skip


@pytest.fixture
def no_execution(monkeypatch):
    """Fail the test if anything would be executed (or a hub model pre-trained)."""

    def refuse(*args, **kwargs):
        raise AssertionError("nothing may run here")

    from transferlab.runner import table as table_mod

    monkeypatch.setattr(table_mod, "run_pool", refuse)
    monkeypatch.setattr(hubbuild, "_pretrain", refuse)


# -------------------------------------------------------------------------------------------- planning, checks
def test_plan_and_dry_run_list_cells_and_run_nothing(test_paper, tmp_path, capsys, no_execution):
    planned = plan(PAPER, "grid", "mini", root=tmp_path)
    assert [(p.cfg.method, p.cfg.seed, p.status) for p in planned] == [
        ("finetune", 0, "todo"), ("finetune", 1, "todo"), ("scratch", 0, "todo"), ("scratch", 1, "todo")
    ]  # fmt: skip
    assert len({p.run_dir for p in planned}) == 4
    assert all(p.run_dir.parent == tmp_path / PAPER / "mini" for p in planned)
    assert [p.cfg.seed for p in plan(PAPER, "grid", "mini", seeds=[5], root=tmp_path)] == [5, 5]
    code = cli.main(
        ["run", PAPER, "--table", "grid", "--results", str(tmp_path), "--dry-run", "--seeds", "0,1"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"4 cells, 0 already finished, .*0 not implemented yet, 4 to run", out), out
    assert sorted(re.findall(r"would run: (\S+)", out)) == sorted(str(p.run_dir) for p in planned)
    assert list(tmp_path.iterdir()) == []  # nothing created


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "no_such_paper"], r"unknown paper 'no_such_paper'.*Valid papers: .*finetune.*tests_runner"),
        (["run", PAPER, "--table", "nope"], r"no table 'nope' for protocol 'mini'; its mini tables: broken, dies, env, grid, kill, missing"),
        (["run", PAPER, "--executor", "pbs"], r"invalid choice: 'pbs' \(choose from '?local'?, '?slurm'?\)"),
        (["run", PAPER, "--seeds", "0", "one"], r"seeds must be integers like '0 1 2' or '0,1,2', got 'one'"),
        (["run", PAPER, "--seeds", "-1"], r"--seeds must be integers >= 0"),
        (["run", PAPER, "--protocol", "big"], r"invalid choice: 'big' \(choose from '?mini'?, '?paper'?, '?demo'?\)"),
        (["run", PAPER, "--table", "grid", "--set", "method=fintune"], r"unknown method 'fintune'.*Did you mean 'finetune'"),
        (["run", PAPER, "--table", "grid", "--set", "dataset=mini_digit"], r"Did you mean 'mini_digits'"),
        (["run", PAPER, "--table", "grid", "--set", "pretrained=mini:clustrs"], r"does not exist.*Did you mean 'mini:clusters'"),
        (["run", PAPER, "--table", "grid", "--set", "lr=NaN"], r"lr=nan must be a finite number"),
        (["run", PAPER, "--table", "grid", "--set", "iterations=0"], r"iterations and eval_every must be >= 1"),
        (["run", PAPER, "--table", "grid", "--set", "sample_rate=1.5"], r"sample_rate=1.5 must lie in \(0, 1\]"),
        (["run", PAPER, "--table", "grid", "--set", "learning_rate=0.1"], r"--set: unknown field\(s\) \['learning_rate'\]"),
        (["run", PAPER, "--table", "grid", "--where", "method=nope"], r"no cell has method in \['nope'\]"),
    ],
)  # fmt: skip
def test_invalid_arguments_fail_before_anything_runs(
    test_paper, tmp_path, capsys, no_execution, argv, message
):
    try:
        code = cli.main([*argv, "--results", str(tmp_path)])
    except SystemExit as stop:  # argparse's own checks (choices, types)
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(message, err), err
    assert "Traceback" not in err and re.search(message, err.strip().splitlines()[-1])  # one clear last line
    assert list(tmp_path.iterdir()) == []


def test_invalid_executor_in_the_api(test_paper, tmp_path, no_execution):
    with pytest.raises(ConfigError, match="executor='pbs' is not valid; choose one of: local, slurm"):
        run_table(PAPER, "grid", "mini", executor="pbs", root=tmp_path)
    with pytest.raises(ConfigError, match="no table 'nope'"):
        run_table(PAPER, "nope", "mini", root=tmp_path)


def test_a_declared_missing_method_is_listed_as_missing(test_paper, tmp_path, capsys, no_execution):
    planned = plan(PAPER, "missing", "mini", root=tmp_path)
    assert [(p.cell.params["method"], p.status) for p in planned] == [
        ("scratch", "todo"),
        ("not_a_method_yet", "missing"),
    ]
    assert planned[1].run_dir is None and planned[1].cell.missing == "a method this suite does not have yet"
    assert [row["status"] for row in json.loads(status_json(planned))] == ["todo", "missing"]
    lines: list[str] = []
    summary = run_table(PAPER, "missing", "mini", dry_run=True, root=tmp_path, out=lines.append)
    _assert_counts(summary, cells=2, skipped=0, missing=1, to_run=1)
    assert any("missing (1 cells): a method this suite does not have yet" in line for line in lines)
    assert list(tmp_path.iterdir()) == []


def test_where_selects_cells_and_set_overrides_them_with_their_own_run_dirs(test_paper, tmp_path, capsys,
                                                                            no_execution):  # fmt: skip
    plain = plan(PAPER, "grid", "mini", root=tmp_path)
    only = plan(PAPER, "grid", "mini", root=tmp_path, where={"method": ["scratch"]})
    assert [p.cfg.method for p in only] == ["scratch", "scratch"]
    changed = plan(
        PAPER, "grid", "mini", root=tmp_path, where={"method": ["scratch"]}, overrides={"iterations": 3}
    )
    assert [p.cfg.optim.iterations for p in changed] == [3, 3]
    assert not {p.run_dir for p in changed} & {
        p.run_dir for p in plain
    }  # never passes for the table's own cells
    assert (
        len(plan(PAPER, "grid", "mini", root=tmp_path, overrides={"seed": 0})) == 2
    )  # identical cells run once
    code = cli.main(["run", PAPER, "--table", "grid", "--results", str(tmp_path), "--dry-run",
                     "--where", "method=scratch", "--set", "iterations=3", "lr=0.5"])  # fmt: skip
    assert code == 0 and capsys.readouterr().out.count("would run") == 2
    with pytest.raises(SystemExit):  # argparse: "expected key=value"
        cli.main(["run", PAPER, "--table", "grid", "--results", str(tmp_path), "--set", "lr"])


# -------------------------------------------------------------------------------------------------- real cells
def test_warm_workers_run_the_cells_then_skip_them(test_paper, built_hub, tmp_path, monkeypatch):
    lines: list[str] = []
    counts = run_table(PAPER, "grid", "mini", seeds=[0], jobs=2, root=tmp_path, out=lines.append)
    _assert_counts(counts, cells=2, skipped=0, missing=0, to_run=2, done=2, failed=0)
    planned = plan(PAPER, "grid", "mini", seeds=[0], root=tmp_path)
    assert [p.status for p in planned] == ["done", "done"]
    assert _run_dirs(tmp_path) == sorted(p.run_dir for p in planned)
    _check_finished(planned)
    finetune = read_json(planned[0].run_dir / "metrics.json")
    assert finetune["extra"]["pretrained_sha256"] == hubbuild.ensure(built_hub, verbose=False)[1]["sha256"]
    done = [line for line in lines if " done " in line]
    assert len(done) == 2 and all(
        re.search(r"test accuracy \(%\) \d+\.\d\d at best val", line) for line in done
    )
    assert all("ETA" in line for line in done)
    assert "step 10/10" in (planned[1].run_dir / "run.log").read_text()  # the cell's own output: its log

    from transferlab.runner import table as table_mod

    monkeypatch.setattr(table_mod, "run_pool", lambda *a, **k: pytest.fail("a finished cell was re-run"))
    again = run_table(PAPER, "grid", "mini", seeds=[0], jobs=2, root=tmp_path, out=lines.append)
    _assert_counts(again, cells=2, skipped=2, to_run=0, done=0, failed=0)


def test_a_cell_gives_the_same_numbers_whichever_executor_ran_it(test_paper, tmp_path):
    """In this process (transferlab.run), in a warm worker, and through the notebook with papermill."""
    (cell,) = [
        p
        for p in plan(PAPER, "grid", "mini", seeds=[1], root=tmp_path / "inproc")
        if p.cfg.method == "scratch"
    ]
    api.run(cell.cfg, cell.run_dir, root=tmp_path / "inproc")
    for root, notebooks in ((tmp_path / "workers", False), (tmp_path / "notebook", True)):
        counts = run_table(PAPER, "grid", "mini", seeds=[1], jobs=1, root=root, out=lambda *_: None,
                           where={"method": ["scratch"]}, notebooks=notebooks)  # fmt: skip
        _assert_counts(counts, done=1, failed=0)
        other = root / PAPER / "mini" / cell.run_dir.name
        assert _comparable(other / "metrics.json") == _comparable(cell.run_dir / "metrics.json"), root.name
    assert (
        tmp_path / "notebook" / PAPER / "mini" / cell.run_dir.name / "run.ipynb"
    ).exists()  # kept on request


def test_a_failing_cell_gets_failed_json_and_the_table_goes_on(test_paper, tmp_path):
    lines: list[str] = []
    counts = run_table(PAPER, "broken", "mini", jobs=1, root=tmp_path, out=lines.append)
    _assert_counts(counts, cells=2, to_run=2, done=1, failed=1)
    broken, good = sorted(plan(PAPER, "broken", "mini", root=tmp_path), key=lambda p: -p.cfg.optim.lr)
    failure = read_json(broken.run_dir / "failed.json")
    assert failure["error"].startswith("NonFiniteLossError: non-finite training loss")
    assert "lower the learning rate (lr=1000000.0)" in failure["error"]
    assert "Traceback" in failure["error_tail"] and "Traceback" in (broken.run_dir / "run.log").read_text()
    assert not (broken.run_dir / "metrics.json").exists()
    failed_line = next(line for line in lines if "FAILED" in line)
    assert "NonFiniteLossError" in failed_line and str(broken.run_dir / "run.log") in failed_line
    assert broken.status == "retry" and good.status == "done"
    _check_finished([good])


def test_a_worker_that_dies_is_replaced_and_its_cell_recorded(test_paper, tmp_path):
    lines: list[str] = []
    counts = run_table(PAPER, "dies", "mini", jobs=1, root=tmp_path, out=lines.append)
    _assert_counts(counts, done=1, failed=1)
    dead, alive = plan(PAPER, "dies", "mini", root=tmp_path)
    assert "worker process died (signal 9)" in read_json(dead.run_dir / "failed.json")["error"]
    assert alive.status == "done"  # run by the fresh worker that replaced the dead one


def test_the_local_executor_gives_each_worker_its_own_gpu(test_paper, tmp_path, monkeypatch):
    """GPU tokens: each worker sees exactly one GPU in CUDA_VISIBLE_DEVICES and --jobs is capped at the number of
    GPUs (no real GPU needed: the ids are stand-ins and the cells run on the CPU)."""
    monkeypatch.setattr(workers_mod, "gpu_ids", lambda: ["0", "1"])
    counts = run_table(PAPER, "env", "mini", jobs=8, root=tmp_path, out=lambda *_: None)
    _assert_counts(counts, done=4, failed=0)
    seen = [read_json(p.run_dir / "metrics.json")["extra"] for p in plan(PAPER, "env", "mini", root=tmp_path)]
    by_pid = {e["pid"]: e["cuda_visible_devices"] for e in seen}
    assert sorted(set(by_pid.values())) == ["0", "1"] and len(by_pid) == 2  # two workers, one GPU each


# ----------------------------------------------------------------------------------- real processes: kill, lock
def _runner(tmp_path: Path, table: str, log: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "transferlab.cli", "run", PAPER, "--table", table, "--jobs", "1",
           "--results", str(tmp_path)]  # fmt: skip
    return subprocess.Popen(cmd, cwd=REPO, stdout=open(tmp_path / log, "w"), stderr=subprocess.STDOUT)


def _workers_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()[1:] if "transferlab.runner.worker" in line
            and int(line.split()[1]) == pid]  # fmt: skip


@pytest.mark.slow  # two runner processes and their workers: ~40 s on 2 cores
def test_a_killed_runner_takes_its_workers_along_and_the_next_run_resumes_every_cell_once(test_paper, tmp_path,
                                                                                         monkeypatch):  # fmt: skip
    gate = tmp_path / "gate"
    monkeypatch.setenv("TRANSFERLAB_TEST_GATE", str(gate))
    finetune, gated = plan(PAPER, "kill", "mini", root=tmp_path)
    proc = _runner(tmp_path, "kill", "first.log")
    try:
        # the finetune cell finishes; the gated one checkpoints at step 20 and waits: kill the runner then
        while not (
            (finetune.run_dir / "metrics.json").exists() and (gated.run_dir / "checkpoint.pt").exists()
        ):
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            time.sleep(0.05)
        workers = _workers_of(proc.pid)
        assert workers, "the runner had no worker process"
    finally:
        with suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)  # the runner only, not its process group
        proc.wait()
    for w in workers:  # the death signal reaches each worker at once; give the kernel a moment to reap it
        for _ in range(200):
            if not Path(f"/proc/{w}").exists() or "zombie" in Path(f"/proc/{w}/status").read_text().lower():
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"worker {w} outlived its runner")
    assert not (gated.run_dir / "metrics.json").exists()

    gate.touch()
    second = subprocess.run([sys.executable, "-m", "transferlab.cli", "run", PAPER, "--table", "kill", "--jobs",
                             "1", "--results", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    assert "2 cells, 1 already finished" in second.stdout
    assert [p.status for p in plan(PAPER, "kill", "mini", root=tmp_path)] == ["done", "done"]
    assert _run_dirs(tmp_path) == sorted([finetune.run_dir, gated.run_dir])  # one directory per cell
    _check_finished([finetune, gated])
    assert "resumed from" in (gated.run_dir / "run.log").read_text()  # went on from its checkpoint
    assert list(tmp_path.rglob("checkpoint.pt")) == [] and list(tmp_path.rglob("*.tmp")) == []


@pytest.mark.slow  # two runners at once on the same cells: ~40 s on 2 cores
def test_two_runners_on_the_same_cells_train_each_cell_once(test_paper, tmp_path, monkeypatch):
    (tmp_path / "gate").touch()
    monkeypatch.setenv("TRANSFERLAB_TEST_GATE", str(tmp_path / "gate"))
    first, second = _runner(tmp_path, "kill", "a.log"), _runner(tmp_path, "kill", "b.log")
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    planned = plan(PAPER, "kill", "mini", root=tmp_path)
    _check_finished(planned)
    for p in planned:
        log = (p.run_dir / "run.log").read_text()
        trained = log.count("step 60/60")
        assert trained == 1, log  # trained once ...
        # ... and a second runner that reached it while it trained waited, then found it finished
        assert log.count("another process is running") == log.count("already finished") <= 1, log


# ---------------------------------------------------------------------------------------------------- submitit
@pytest.mark.slow  # two cells inside two submitit tasks: ~30 s on 2 cores
def test_slurm_executor_runs_a_grid_with_submitits_local_cluster(test_paper, tmp_path, monkeypatch):
    monkeypatch.setenv(slurm_mod.CLUSTER_ENV, "local")
    counts = run_table(PAPER, "grid", "mini", seeds=[1], jobs=2, executor="slurm", root=tmp_path,
                       out=lambda *_: None)  # fmt: skip
    _assert_counts(counts, cells=2, skipped=0, to_run=2, done=2, failed=0)
    _check_finished(plan(PAPER, "grid", "mini", seeds=[1], root=tmp_path))
    assert len(list((tmp_path / ".slurm").rglob("*_log.out"))) == 2  # one submitit task per cell


def test_slurm_lost_task_is_recorded_in_failed_json(test_paper, tmp_path, monkeypatch):
    """A task that dies without a result of its own (here: in-process 'debug' cluster, the cell raises)."""
    import pdb

    monkeypatch.setenv(slurm_mod.CLUSTER_ENV, "debug")
    monkeypatch.setattr(pdb, "post_mortem", lambda *a, **k: None)  # submitit's debug jobs open pdb on errors
    calls = []

    def lost(cfg, run_dir, root, notebook=""):
        calls.append(dict(os.environ))
        if cfg.method == "finetune":
            raise MemoryError("task killed: out of memory")
        return {"status": "done"}

    monkeypatch.setattr(slurm_mod, "execute", lost)
    todo = plan(PAPER, "grid", "mini", seeds=[0], root=tmp_path)
    replies: list[dict] = []
    counts = slurm_mod.run_slurm(todo, tmp_path, 2, lambda p, r: replies.append(r), tmp_path / ".slurm")
    assert counts == {"done": 1, "failed": 1}
    failure = read_json(todo[0].run_dir / "failed.json")
    assert "out of memory" in failure["error_tail"] and failure["job_id"]
    assert not (todo[1].run_dir / "failed.json").exists()
    assert any("out of memory" in r.get("error", "") for r in replies)
    assert all(e["TRANSFERLAB_PROGRESS"] == "text" for e in calls)
    assert all(e["TRANSFERLAB_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2)) for e in calls)


def test_slurm_without_a_cluster_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(slurm_mod.CLUSTER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    with pytest.raises(ConfigError, match="no SLURM cluster was found.*TRANSFERLAB_SUBMITIT_CLUSTER=local"):
        slurm_mod.make_executor(tmp_path, 2, "x")
    monkeypatch.setenv(slurm_mod.CLUSTER_ENV, "pbs")
    with pytest.raises(ConfigError, match="'pbs' is not valid; choose one of: .*slurm.*local"):
        slurm_mod.make_executor(tmp_path, 2, "x")
    monkeypatch.setenv(slurm_mod.CLUSTER_ENV, "local")
    monkeypatch.setenv("TRANSFERLAB_SLURM_TIME_MIN", "ten")
    with pytest.raises(ConfigError, match="TRANSFERLAB_SLURM_TIME_MIN='ten' must be an integer"):
        slurm_mod.make_executor(tmp_path, 2, "x")
    monkeypatch.setenv("TRANSFERLAB_SLURM_TIME_MIN", "30")
    executor = slurm_mod.make_executor(tmp_path, 2, "x")
    assert executor.cluster == "local"
    assert executor.parameters["timeout_min"] == 30 and "slurm_array_parallelism" not in executor.parameters


def test_slurm_settings_reach_the_sbatch_script(tmp_path, monkeypatch):
    """Auto-detection finds SLURM by its ``srun`` (a stub here); the TRANSFERLAB_SLURM_* settings become #SBATCH."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(slurm_mod.CLUSTER_ENV, raising=False)
    monkeypatch.setenv("TRANSFERLAB_SLURM_PARTITION", "gpu")
    monkeypatch.setenv("TRANSFERLAB_SLURM_TIME_MIN", "90")
    monkeypatch.setenv("TRANSFERLAB_SLURM_EXTRA", '{"constraint": "a100"}')
    executor = slurm_mod.make_executor(tmp_path / "%j", 3, "transferlab-x")
    assert executor.cluster == "slurm"
    assert executor._executor.parameters["array_parallelism"] == 3
    sbatch = executor._executor._make_submission_file_text("python -m task", "uid")
    for line in ("--partition=gpu", "--time=90", "--gpus-per-node=1", "--cpus-per-task=8",
                 "--job-name=transferlab-x", "--constraint=a100"):  # fmt: skip
        assert f"#SBATCH {line}\n" in sbatch
    monkeypatch.setenv("TRANSFERLAB_SLURM_GPUS", "0")  # a CPU partition: no GPU request at all
    monkeypatch.setenv("TRANSFERLAB_SLURM_EXTRA", "constraint=a100")
    with pytest.raises(ConfigError, match="TRANSFERLAB_SLURM_EXTRA='constraint=a100' must be a JSON object"):
        slurm_mod.make_executor(tmp_path / "%j", 3, "transferlab-x")
    monkeypatch.delenv("TRANSFERLAB_SLURM_EXTRA")
    sbatch = slurm_mod.make_executor(tmp_path / "%j", 3, "x")._executor._make_submission_file_text(
        "python", "u"
    )
    assert "--gpus-per-node" not in sbatch and "--gres" not in sbatch


def test_a_table_runs_through_its_notebook_with_papermill(test_paper, tmp_path, capsys):
    """What ``make demo`` does: the paper notebook (scope="table") runs the table through the runner and its warm
    workers, then shows the table; the executed notebook is kept."""
    code = cli.main(["run", PAPER, "--table", "grid", "--seeds", "0", "--jobs", "1", "--results", str(tmp_path),
                     "--via-notebook"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    _check_finished(plan(PAPER, "grid", "mini", seeds=[0], root=tmp_path))
    executed = tmp_path / PAPER / "mini" / "notebook-grid.ipynb"
    text = executed.read_text()
    assert "done" in text and "test accuracy" in text  # the runner's lines, in the kept notebook
    assert "jp-" not in text and '"image/png"' in text  # the table's figures were drawn
