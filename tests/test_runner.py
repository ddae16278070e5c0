"""The batch runner end to end: planning, argument checks, papermill cells, kill-and-resume, failures, submitit.

Every executed cell is the real ``notebooks/finetune.py`` run by papermill in its own process, on the built-in
``mini_digits`` dataset for 10 steps (the kill test: 40), fine-tuning conftest's 10-step ``test_tiny_digits`` hub
model or training from scratch. A cell costs ~10 s on 2 cores, almost all of it process and kernel start-up.

The test paper ``tests_runner`` and the tiny hub model are registered in this process by fixtures; the processes
the runner starts (the ``transferlab`` command, papermill kernels, submitit tasks) see them through a
``sitecustomize`` module put on ``PYTHONPATH`` that registers the same specs (passed as JSON in an environment
variable) right after ``transferlab`` is imported.
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
import typing
from contextlib import suppress
from dataclasses import fields
from pathlib import Path

import nbformat
import pytest
from transferlab import cli, runner, slurm
from transferlab.config import ConfigError, DataConfig, OptimConfig, RunConfig, flat_field_names
from transferlab.models import mini_hub
from transferlab.papers import PAPERS, Paper, Table
from transferlab.results import read_json

PAPER = "tests_runner"
REGISTRY_ENV = "TRANSFERLAB_TEST_REGISTRY"

BASE = {
    "backbone": "mini_resnet",
    "dataset": "mini_digits",
    "device": "cpu",
    "val_fraction": 0.2,
    "batch_size": 16,
    "eval_batch_size": 512,
    "iterations": 10,
    "eval_every": 5,
    "schedule": "constant",
}
SCRATCH = {"pretrained": "none", "lr": 0.05, "head_lr_mult": 1.0}

# Registers the specs in $TRANSFERLAB_TEST_REGISTRY in every Python process started with this file's folder on
# PYTHONPATH, right after the `transferlab` package has been imported there (nothing is imported before that).
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

    from transferlab.models.mini_hub import MINI_HUB, HubModel
    from transferlab.papers import PAPERS, Paper, Table

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

    def table(name: str, grid: dict, overrides: dict, seeds=(0, 1), **base) -> Table:
        return Table(name=name, title=f"test table {name}", protocol="mini", base={**BASE, **base}, grid=grid,
                     method_overrides=overrides, seeds=seeds, provenance="tests")  # fmt: skip

    tables = [
        table("grid", {"method": ["finetune", "scratch"]}, {"finetune": finetune, "scratch": SCRATCH}),
        # long enough (40 steps, a checkpoint every 5) to be killed in the middle of training
        table(
            "kill",
            {"method": ["finetune", "scratch"]},
            {"finetune": finetune, "scratch": SCRATCH},
            (0,),
            iterations=40,
            eval_every=5,
        ),
        table("missing", {"method": ["scratch", "not_a_method_yet"]}, {"scratch": SCRATCH}, (0,)),
        # finetune without pre-trained weights is a valid config that raises inside the kernel (Method.build)
        table(
            "broken",
            {"method": ["finetune", "scratch"]},
            {"finetune": {"pretrained": "none"}, "scratch": SCRATCH},
            (0,),
        ),
    ]
    return Paper(
        PAPER, "runner tests", "https://example.org", "finetune", {(t.name, t.protocol): t for t in tables}
    )


def _to_json(paper: Paper) -> dict:
    plain = {f.name: getattr(paper, f.name) for f in fields(paper) if f.name != "tables"}
    return {**plain, "tables": [dataclasses.asdict(t) for t in paper.tables.values()]}


@pytest.fixture(scope="module")
def test_paper(tiny_hub, tmp_path_factory):
    """Register ``tests_runner`` here and, via sitecustomize, in every process the runner starts."""
    paper = _paper(tiny_hub)
    for t in paper.tables.values():  # what transferlab.papers.register checks
        next(c for c in t.cells(paper=PAPER) if c.available).config()
    plugin = tmp_path_factory.mktemp("plugin")
    (plugin / "sitecustomize.py").write_text(SITECUSTOMIZE)
    specs = {"hub": [dataclasses.asdict(mini_hub.MINI_HUB.get(tiny_hub))], "papers": [_to_json(paper)]}
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PAPERS._items, PAPER, paper)
        mp.setenv(REGISTRY_ENV, json.dumps(specs))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugin), str(runner.REPO / "lib"),
                                                               os.environ.get("PYTHONPATH")])))  # fmt: skip
        mp.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        # --jobs 1 gives each cell both cores' threads; on a shared 2-core machine, OpenMP threads spinning
        # while waiting for a busy core make training ~10x slower. Passive waiting keeps the cells' time sane.
        mp.setenv("OMP_WAIT_POLICY", "PASSIVE")
        yield PAPER


def _run_dirs(root: Path) -> list[Path]:
    base = root / PAPER / "mini"
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.exists() else []


def _assert_counts(counts: dict, **expected: int) -> None:
    assert {k: counts.get(k) for k in expected} == expected, counts


def _injected(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{notebook}: expected one injected-parameters cell"
    return cells[0].source


def _check_finished(planned: list[runner.Planned]) -> None:
    """Each cell: metrics.json of its own config, the executed notebook with its parameters injected."""
    for p in planned:
        cfg = p.cell.config()
        metrics = read_json(p.run_dir / "metrics.json")
        assert metrics["config_hash"] == cfg.config_hash() and metrics["run_id"] == p.run_dir.name
        injected = _injected(p.run_dir / "run.ipynb")
        assert f'out_dir = "{p.run_dir.resolve()}"' in injected
        assert f'method = "{cfg.method}"' in injected and f"seed = {cfg.seed}" in injected
        steps = [h["step"] for h in metrics["history"]]
        assert steps == sorted(set(steps)) and steps[-1] == cfg.optim.iterations
        assert not (p.run_dir / "checkpoint.pt").exists() and not (p.run_dir / "failed.json").exists()


@pytest.fixture
def no_execution(monkeypatch):
    """Fail the test if anything would be executed (or a hub model pre-trained)."""

    def refuse(*args, **kwargs):
        raise AssertionError("nothing may run here")

    monkeypatch.setattr(runner, "execute_notebook", refuse)
    monkeypatch.setattr(runner, "_ensure_assets", refuse)


# -------------------------------------------------------------------------------------------- planning, checks
def test_plan_and_dry_run_list_cells_and_run_nothing(test_paper, tmp_path, capsys, no_execution):
    planned = runner.plan(PAPER, "grid", "mini", root=tmp_path)
    assert [(p.cell.params["method"], p.cell.params["seed"], p.status) for p in planned] == [
        ("finetune", 0, "todo"), ("finetune", 1, "todo"), ("scratch", 0, "todo"), ("scratch", 1, "todo")
    ]  # fmt: skip
    assert len({p.run_dir for p in planned}) == 4
    assert all(p.run_dir.parent == tmp_path / PAPER / "mini" for p in planned)
    assert [p.cell.params["seed"] for p in runner.plan(PAPER, "grid", "mini", seeds=[5], root=tmp_path)] == [
        5,
        5,
    ]

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
        (
            ["run", PAPER, "--table", "nope"],
            r"no table 'nope' for protocol 'mini'; its mini tables: broken, grid, kill",
        ),
        (["run", PAPER, "--executor", "pbs"], r"invalid choice: 'pbs' \(choose from '?local'?, '?slurm'?\)"),
        (["run", PAPER, "--seeds", "0", "one"], r"seeds must be integers like '0 1 2' or '0,1,2', got 'one'"),
        (["run", PAPER, "--protocol", "big"], r"invalid choice: 'big' \(choose from '?mini'?, '?paper'?\)"),
    ],
)
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
    assert list(tmp_path.iterdir()) == []


def test_invalid_executor_and_seeds_in_the_api(test_paper, tmp_path, no_execution):
    with pytest.raises(ConfigError, match="executor='pbs' is not valid; choose local or slurm"):
        runner.run_table(PAPER, "grid", "mini", executor="pbs", root=tmp_path)
    with pytest.raises(ConfigError, match="no table 'nope'"):
        runner.run_table(PAPER, "nope", "mini", root=tmp_path)


def test_unimplemented_method_is_listed_as_missing(test_paper, tmp_path, capsys, no_execution):
    planned = runner.plan(PAPER, "missing", "mini", root=tmp_path)
    assert [(p.cell.params["method"], p.status) for p in planned] == [
        ("scratch", "todo"),
        ("not_a_method_yet", "missing"),
    ]
    missing = planned[1]
    assert (
        missing.run_dir is None and missing.cell.missing == "method 'not_a_method_yet' is not implemented yet"
    )
    assert [row["status"] for row in json.loads(runner.status_json(planned))] == ["todo", "missing"]

    lines: list[str] = []
    summary = runner.run_table(PAPER, "missing", "mini", dry_run=True, root=tmp_path, out=lines.append)
    _assert_counts(summary, cells=2, skipped=0, missing=1, to_run=1)
    assert any(
        "missing" in line and "method 'not_a_method_yet' is not implemented yet" in line for line in lines
    )
    assert cli.main(["run", PAPER, "--table", "missing", "--results", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 not implemented yet, 1 to run" in out and "'not_a_method_yet' is not implemented yet" in out
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ real cells
def test_run_table_executes_cells_with_papermill_then_skips_them(test_paper, tiny_hub, tmp_path, monkeypatch):
    lines: list[str] = []
    counts = runner.run_table(PAPER, "grid", "mini", seeds=[0], jobs=2, root=tmp_path, out=lines.append)
    _assert_counts(counts, cells=2, skipped=0, missing=0, to_run=2, done=2, failed=0)
    planned = runner.plan(PAPER, "grid", "mini", seeds=[0], root=tmp_path)
    assert [p.status for p in planned] == ["done", "done"]
    assert _run_dirs(tmp_path) == sorted(p.run_dir for p in planned)
    _check_finished(planned)
    finetune = read_json(planned[0].run_dir / "metrics.json")
    _, hub_meta = mini_hub.ensure(tiny_hub, verbose=False)
    assert finetune["extra"]["pretrained_sha256"] == hub_meta["sha256"]  # the kernel used the hub model

    monkeypatch.setattr(runner, "execute_notebook", lambda *a, **k: pytest.fail("a finished cell was re-run"))
    again = runner.run_table(PAPER, "grid", "mini", seeds=[0], jobs=2, root=tmp_path, out=lines.append)
    _assert_counts(again, cells=2, skipped=2, to_run=0, done=0, failed=0)


@pytest.mark.slow  # two runner processes, three papermill executions: ~50 s on 2 cores
def test_killed_runner_resumes_every_cell_exactly_once(test_paper, tiny_hub, tmp_path):
    mini_hub.ensure(tiny_hub, verbose=False)  # pre-trained once per session; the runner only checks it
    cmd = [sys.executable, "-m", "transferlab.cli", "run", PAPER, "--table", "kill", "--jobs", "1",
           "--results", str(tmp_path)]  # fmt: skip
    planned = runner.plan(PAPER, "kill", "mini", root=tmp_path)
    metrics = [p.run_dir / "metrics.json" for p in planned]
    ckpts = [p.run_dir / "checkpoint.pt" for p in planned]
    start = time.monotonic()
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=runner.REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 240
            while not any(m.exists() for m in metrics):  # the first cell has finished ...
                assert proc.poll() is None, (tmp_path / "first.log").read_text()
                assert time.monotonic() < deadline, "no cell finished within 240 s"
                time.sleep(0.05)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:  # ... and the next one is mid-training
                if any(c.exists() for c, m in zip(ckpts, metrics) if not m.exists()):
                    break
                time.sleep(0.05)
        finally:
            with suppress(ProcessLookupError):  # the runner, papermill and everything else in its group
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    time.sleep(2)  # a kernel (own session) notices that its papermill parent is gone within 1 s and exits
    interrupted = [p for p, m, c in zip(planned, metrics, ckpts) if not m.exists() and c.exists()]
    finished_before = sum(m.exists() for m in metrics)
    print(f"killed after {time.monotonic() - start:.1f} s: {finished_before} cell(s) finished, "
          f"{len(interrupted)} interrupted mid-training")  # fmt: skip
    assert 1 <= finished_before <= 2

    second = subprocess.run(cmd, cwd=runner.REPO, capture_output=True, text=True, timeout=300)
    print(f"second run finished after {time.monotonic() - start:.1f} s")
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"2 cells, {finished_before} already finished" in second.stdout
    assert [p.status for p in runner.plan(PAPER, "kill", "mini", root=tmp_path)] == ["done", "done"]
    assert _run_dirs(tmp_path) == sorted(p.run_dir for p in planned)  # one directory per cell, no duplicates
    _check_finished(planned)
    for p in interrupted:  # a cell killed mid-training went on from its checkpoint
        assert "resumed from" in (p.run_dir / "run.ipynb").read_text()
    assert list(tmp_path.rglob("checkpoint.pt")) == [] and list(tmp_path.rglob("*.tmp")) == []


def test_failing_cell_gets_failed_json_and_the_grid_goes_on(test_paper, tmp_path, capsys):
    lines: list[str] = []
    counts = runner.run_table(PAPER, "broken", "mini", jobs=1, root=tmp_path, out=lines.append)
    _assert_counts(counts, cells=2, to_run=2, done=1, failed=1)
    broken, scratch = runner.plan(PAPER, "broken", "mini", root=tmp_path)
    failure = read_json(broken.run_dir / "failed.json")
    assert failure["returncode"] != 0
    assert (
        "needs pre-trained weights" in failure["error_tail"]
    )  # the kernel's exception, from papermill's log
    assert not (broken.run_dir / "metrics.json").exists()
    assert f"  FAILED: {broken.run_dir} (see {broken.run_dir / 'papermill.log'})" in lines
    assert broken.status == "retry" and scratch.status == "done"
    _check_finished([scratch])


# ---------------------------------------------------------------------------------------------------- submitit
@pytest.mark.slow  # two papermill cells inside two submitit tasks: ~25-30 s on 2 cores
def test_slurm_executor_runs_a_grid_with_submitits_local_cluster(test_paper, tmp_path, monkeypatch):
    monkeypatch.setenv(slurm.CLUSTER_ENV, "local")
    lines: list[str] = []
    counts = runner.run_table(PAPER, "grid", "mini", seeds=[1], jobs=2, executor="slurm", root=tmp_path,
                              out=lines.append)  # fmt: skip
    _assert_counts(counts, cells=2, skipped=0, to_run=2, done=2, failed=0)
    planned = runner.plan(PAPER, "grid", "mini", seeds=[1], root=tmp_path)
    _check_finished(planned)
    task_logs = list((tmp_path / PAPER / ".slurm").rglob("*_log.out"))
    assert len(task_logs) == 2  # one submitit task per cell


def test_slurm_lost_task_is_recorded_in_failed_json(test_paper, tmp_path, monkeypatch):
    """A task that dies without a result of its own (here: in-process 'debug' cluster, the cell raises)."""
    import pdb

    monkeypatch.setenv(slurm.CLUSTER_ENV, "debug")
    monkeypatch.setattr(pdb, "post_mortem", lambda *a, **k: None)  # submitit's debug jobs open pdb on errors
    calls = []

    def lost(planned, notebook, env):
        calls.append(env)
        if planned.cell.params["method"] == "finetune":
            raise MemoryError("task killed: out of memory")
        (planned.run_dir / "metrics.json").write_text("{}")
        return planned, "done"

    monkeypatch.setattr(runner, "_run_cell", lost)
    todo = runner.plan(PAPER, "grid", "mini", seeds=[0], root=tmp_path)
    counts = slurm.run_slurm(todo, tmp_path / "nb.ipynb", 2, None, tmp_path / ".slurm")
    assert counts == {"done": 1, "failed": 1}
    failure = read_json(todo[0].run_dir / "failed.json")
    assert "out of memory" in failure["error_tail"] and failure["job_id"]
    assert not (todo[1].run_dir / "failed.json").exists()
    assert all(e["TRANSFERLAB_PROGRESS"] == "text" for e in calls)
    assert all(e["PYTHONPATH"].split(os.pathsep)[0] == str(runner.REPO / "lib") for e in calls)
    assert all(e["TRANSFERLAB_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2)) for e in calls)


def test_slurm_without_a_cluster_says_what_to_do(test_paper, tmp_path, monkeypatch):
    monkeypatch.delenv(slurm.CLUSTER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    with pytest.raises(ConfigError, match="no SLURM cluster was found.*TRANSFERLAB_SUBMITIT_CLUSTER=local"):
        slurm.make_executor(tmp_path, 2, "x")
    monkeypatch.setenv(slurm.CLUSTER_ENV, "pbs")
    with pytest.raises(ConfigError, match="'pbs' is not valid; choose one of: .*slurm.*local"):
        slurm.make_executor(tmp_path, 2, "x")
    monkeypatch.setenv(slurm.CLUSTER_ENV, "local")
    monkeypatch.setenv("TRANSFERLAB_SLURM_TIME_MIN", "ten")
    with pytest.raises(ConfigError, match="TRANSFERLAB_SLURM_TIME_MIN='ten' must be an integer"):
        slurm.make_executor(tmp_path, 2, "x")
    monkeypatch.setenv("TRANSFERLAB_SLURM_TIME_MIN", "30")
    executor = slurm.make_executor(tmp_path, 2, "x")
    assert executor.cluster == "local"
    assert executor.parameters["timeout_min"] == 30 and "slurm_array_parallelism" not in executor.parameters


def test_slurm_settings_reach_the_sbatch_script(tmp_path, monkeypatch):
    """Auto-detection finds SLURM by its ``srun`` (a stub here); the TRANSFERLAB_SLURM_* settings become #SBATCH."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(slurm.CLUSTER_ENV, raising=False)
    monkeypatch.setenv("TRANSFERLAB_SLURM_PARTITION", "gpu")
    monkeypatch.setenv("TRANSFERLAB_SLURM_TIME_MIN", "90")
    monkeypatch.setenv("TRANSFERLAB_SLURM_EXTRA", '{"constraint": "a100"}')
    executor = slurm.make_executor(tmp_path / "%j", 3, "transferlab-x")
    assert executor.cluster == "slurm"
    assert executor._executor.parameters["array_parallelism"] == 3
    sbatch = executor._executor._make_submission_file_text("python -m task", "uid")
    for line in ("--partition=gpu", "--time=90", "--gpus-per-node=1", "--cpus-per-task=8",
                 "--job-name=transferlab-x", "--constraint=a100"):  # fmt: skip
        assert f"#SBATCH {line}\n" in sbatch

    monkeypatch.setenv("TRANSFERLAB_SLURM_GPUS", "0")  # a CPU partition: no GPU request at all
    monkeypatch.setenv("TRANSFERLAB_SLURM_EXTRA", "constraint=a100")
    with pytest.raises(ConfigError, match="TRANSFERLAB_SLURM_EXTRA='constraint=a100' must be a JSON object"):
        slurm.make_executor(tmp_path / "%j", 3, "transferlab-x")
    monkeypatch.delenv("TRANSFERLAB_SLURM_EXTRA")
    sbatch = slurm.make_executor(tmp_path / "%j", 3, "x")._executor._make_submission_file_text("python", "u")
    assert "--gpus-per-node" not in sbatch and "--gres" not in sbatch


# ------------------------------------------------------------------------------------------ notebook parameters
def _notebook_types() -> dict[str, str]:
    """The type papermill should report for each flat field: the field's own type (tuples are lists)."""
    out = {}
    for cls in (RunConfig, DataConfig, OptimConfig):
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            hint = hints[f.name]
            origin = typing.get_origin(hint) or hint
            out[f.name] = {tuple: "list"}.get(origin, getattr(origin, "__name__", str(origin)))
    out.pop("data"), out.pop("optim")
    return {**out, "out_dir": "str"}


def test_notebook_parameters_are_documented_and_match_the_config(tmp_path):
    import jupytext
    import papermill

    ipynb = runner.notebook_ipynb("finetune", tmp_path)
    helped = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook", str(ipynb)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    lines = helped.stdout.splitlines()
    documented = {}
    for i, line in enumerate(lines):
        m = re.match(r"^  (\w+): (\w+) \(default (.*?)\)(?:\s{2,}(.*))?$", line)
        if m:
            name, kind, default, text = m.groups()
            if not text and i + 1 < len(lines) and not re.match(r"^  \w+: ", lines[i + 1]):
                text = lines[i + 1].strip()
            documented[name] = (kind, default, text or "")
    expected = flat_field_names() + ["out_dir"]
    assert sorted(documented) == sorted(expected) and len(documented) == len(expected)
    assert "  seed: int (default 0)" in helped.stdout
    types = _notebook_types()
    for name, (kind, default, text) in documented.items():
        assert kind == types[name], f"{name}: notebook says {kind}, the config field is {types[name]}"
        assert text, f"parameter {name} has no help text"
        assert not default.startswith("("), f"{name}: default {default} is wrapped (a multi-line definition)"

    # The parameters cell defines exactly the flat fields + out_dir, and its defaults are a valid RunConfig.
    nb = jupytext.read(runner.NOTEBOOKS / "finetune.py")
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict = {}
    exec(cell.source, namespace)
    defined = [k for k in namespace if not k.startswith("__")]
    assert sorted(defined) == sorted(expected) and len(defined) == len(expected)
    defaults = RunConfig.from_namespace(namespace)  # raises ConfigError if a default is invalid
    assert defaults.run_id()

    # --prepare-only: papermill injects a cell's parameters without executing; they override the defaults.
    cell_params = {**BASE, **SCRATCH, "method": "scratch", "seed": 3, "milestones": [4, 8], "out_dir": "/x"}
    prepared = tmp_path / "prepared.ipynb"
    papermill.execute_notebook(str(ipynb), str(prepared), parameters=cell_params, prepare_only=True,
                               kernel_name="python3")  # fmt: skip
    executed = nbformat.read(prepared, as_version=4)
    assert all(not c.get("outputs") for c in executed.cells if c.cell_type == "code")
    namespace = {}
    exec(cell.source + "\n" + _injected(prepared), namespace)
    injected = RunConfig.from_namespace(namespace)
    assert injected == defaults.replace(**{k: v for k, v in cell_params.items() if k != "out_dir"})
    assert namespace["out_dir"] == "/x"


@pytest.mark.parametrize("paper", PAPERS.names())
def test_every_paper_notebook_has_the_full_parameters_cell(paper):
    """Each paper's notebook carries the same annotated parameters (papermill needs them in the notebook itself)
    and its defaults are a valid, runnable configuration of that paper."""
    import jupytext

    nb = jupytext.read(runner.NOTEBOOKS / f"{PAPERS.get(paper).notebook}.py")
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict = {}
    exec(cell.source, namespace)
    defined = sorted(k for k in namespace if not k.startswith("__"))
    assert defined == sorted(flat_field_names() + ["out_dir"])
    for line in cell.source.splitlines():
        assert re.match(r"^\w+: \w+ = .+  # \S", line), (
            f"{paper}: not an annotated one-line parameter: {line!r}"
        )
    cfg = RunConfig.from_namespace(namespace)
    assert cfg.paper == paper


def test_local_executor_gives_each_running_cell_its_own_gpu(test_paper, tmp_path, monkeypatch):
    """GPU tokens: every cell sees exactly one GPU in CUDA_VISIBLE_DEVICES, two running cells never share one,
    and --jobs is capped at the number of GPUs (no real GPU needed: the ids and the cell are stand-ins)."""
    import threading

    monkeypatch.setattr(runner, "_gpu_ids", lambda: ["0", "1"])
    lock, running, seen, peak = threading.Lock(), set(), [], [0]

    def fake_cell(planned, notebook, env):
        gpu = env["CUDA_VISIBLE_DEVICES"]
        with lock:
            assert gpu not in running, f"GPU {gpu} handed to two running cells"
            running.add(gpu)
            seen.append(gpu)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.2)
        with lock:
            running.discard(gpu)
        return planned, "done"

    monkeypatch.setattr(runner, "_run_cell", fake_cell)
    todo = runner.plan(PAPER, "grid", "mini", seeds=[0, 1, 2], root=tmp_path)
    counts = runner.run_local(todo, tmp_path / "nb.ipynb", jobs=8, progress=None)
    assert counts == {"done": len(todo), "failed": 0}
    assert sorted(set(seen)) == ["0", "1"] and peak[0] == 2  # capped at 2 concurrent cells, one GPU each


def test_where_selects_cells_and_set_overrides_them_with_their_own_run_dirs(
    test_paper, tmp_path, capsys, no_execution
):
    plain = runner.plan(PAPER, "grid", "mini", root=tmp_path)
    only = runner.plan(PAPER, "grid", "mini", root=tmp_path, where={"method": ["scratch"]})
    assert [p.cell.params["method"] for p in only] == ["scratch", "scratch"]
    changed = runner.plan(PAPER, "grid", "mini", root=tmp_path, where={"method": ["scratch"]},
                          overrides={"iterations": 3})  # fmt: skip
    assert [p.cell.config().optim.iterations for p in changed] == [3, 3]
    assert not {p.run_dir for p in changed} & {
        p.run_dir for p in plain
    }  # never passes for the table's own cells
    # an override that makes cells identical runs them once
    assert len(runner.plan(PAPER, "grid", "mini", root=tmp_path, overrides={"seed": 0})) == 2
    with pytest.raises(ConfigError, match="no cell has method in \\['nope'\\].*finetune, scratch"):
        runner.plan(PAPER, "grid", "mini", root=tmp_path, where={"method": ["nope"]})
    code = cli.main(["run", PAPER, "--table", "grid", "--results", str(tmp_path), "--dry-run",
                     "--where", "method=scratch", "--set", "iterations=3", "lr=0.5"])  # fmt: skip
    assert code == 0 and capsys.readouterr().out.count("would run") == 2
    with pytest.raises(SystemExit):  # argparse: "expected key=value"
        cli.main(["run", PAPER, "--table", "grid", "--results", str(tmp_path), "--set", "lr"])
