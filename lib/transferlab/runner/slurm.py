"""``transferlab run <paper> --executor slurm``: a table's unfinished cells as one SLURM job array (submitit).

Each array task runs exactly what a local warm worker runs for one cell (:func:`transferlab.runner.cell.execute`,
in the task's own process, with ``TRANSFERLAB_THREADS`` from the task's CPU allocation; with ``--notebooks``, the
paper's notebook through papermill). The runner (on the login node) waits for the array,
updates its progress bar as tasks finish, and records a task that died without writing its own result (time limit,
out of memory, node failure) in the cell's ``failed.json``, like a failed cell of a local run.

Running a table on a cluster, from a login node that has ``sbatch`` / ``srun`` on its ``PATH``::

    export TRANSFERLAB_SLURM_PARTITION=gpu      # sbatch --partition (default: the cluster's default partition)
    export TRANSFERLAB_SLURM_TIME_MIN=360       # time limit per cell in minutes (default 360)
    transferlab run finetune --protocol paper --executor slurm --jobs 8   # at most 8 cells at once

Everything a task writes must be visible from the login node: keep the results root (``--results``), the
``lib``/``notebooks`` checkout and ``$TRANSFERLAB_CACHE`` (mini hub models) on a shared file system, and
``data_root`` / ``$TORCH_HOME`` where the compute nodes can read them. submitit's own files (the pickled task,
each task's stdout / stderr) go to ``<results>/<paper>/.slurm/``; each cell's log is ``<run_dir>/run.log`` as
with the local executor.

Settings read from the environment, each mapped to one of submitit's ``update_parameters``:

- ``TRANSFERLAB_SLURM_PARTITION`` → ``slurm_partition`` (default: the cluster's default partition);
- ``TRANSFERLAB_SLURM_TIME_MIN`` → ``timeout_min``, the time limit of one cell (default 360 minutes, enough for
  the paper protocol's longest cells on one GPU);
- ``TRANSFERLAB_SLURM_GPUS`` → ``gpus_per_node`` (default 1: a cell trains on one GPU; 0 for CPU partitions);
- ``TRANSFERLAB_SLURM_CPUS`` → ``cpus_per_task`` (default 8, the paper protocol's DataLoader workers);
- ``TRANSFERLAB_SLURM_MEM_GB`` → ``mem_gb`` (default: the partition's);
- ``TRANSFERLAB_SLURM_ACCOUNT`` → ``slurm_account``;
- ``TRANSFERLAB_SLURM_EXTRA`` → ``slurm_additional_parameters``: a JSON object of other ``#SBATCH`` options,
  e.g. ``{"constraint": "a100", "qos": "high"}``;
- ``TRANSFERLAB_SUBMITIT_CLUSTER`` → ``AutoExecutor(cluster=...)``: ``slurm``, ``local`` or ``debug`` (default:
  auto-detected; without ``srun`` on the ``PATH`` the command stops and says so).

``--jobs`` is ``slurm_array_parallelism``: how many tasks of the array may run at once. The array's name is
``transferlab-<paper>`` (``squeue --name``). ``TRANSFERLAB_SUBMITIT_CLUSTER=local`` runs the same submission path
with submitit's local executor (tasks are local processes, at most ``--jobs`` at a time): a way to test it without
a cluster; ``debug`` runs the tasks one after the other inside the runner's process.

A task that hits its time limit or is pre-empted is requeued by submitit (up to 3 times); the cell then resumes
from its own ``checkpoint.pt``. If the runner is interrupted (Ctrl-C) it cancels the tasks it submitted; if it is
killed outright, the array keeps running (``scancel --name transferlab-<paper>``), and its cells either finish
(the next ``run`` skips them) or are run again by the next ``run``: do not start the next ``run`` while the old
array is still in ``squeue``.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import submitit

from transferlab.config import ConfigError
from transferlab.nbexec import pythonpath_with_lib
from transferlab.results import atomic_write_json
from transferlab.runner.cell import execute
from transferlab.runner.workers import gpu_ids

CLUSTER_ENV = "TRANSFERLAB_SUBMITIT_CLUSTER"
DEFAULT_TIME_MIN = 360
DEFAULT_CPUS = 8
POLL_S = {"slurm": 15.0, "local": 0.5, "debug": 0.0}  # how often the runner asks for finished tasks


def _env_int(name: str, default: int | None) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} must be an integer") from None
    if value < 0:
        raise ConfigError(f"{name}={value} must be >= 0")
    return value


def check_cluster() -> str | None:
    """The submitit cluster to use; raises ConfigError (before any work) when none is usable."""
    from submitit.core.plugins import get_executors

    cluster = os.environ.get(CLUSTER_ENV, "").strip() or None
    valid = list(get_executors())
    if cluster is not None and cluster not in valid:
        raise ConfigError(f"{CLUSTER_ENV}={cluster!r} is not valid; choose one of: {', '.join(valid)}")
    if cluster is None and submitit.AutoExecutor.which() != "slurm":
        raise ConfigError(
            "executor=slurm but no SLURM cluster was found (srun is not on PATH); run from a login node, use "
            f"--executor local, or set {CLUSTER_ENV}=local to run the job array with submitit's local executor"
        )
    return cluster


def make_executor(folder: Path, jobs: int, name: str) -> submitit.AutoExecutor:
    """A submitit executor for the cluster in ``$TRANSFERLAB_SUBMITIT_CLUSTER`` (default: auto-detected)."""
    executor = submitit.AutoExecutor(folder=folder, cluster=check_cluster())
    params: dict = {
        "name": name,
        "timeout_min": _env_int("TRANSFERLAB_SLURM_TIME_MIN", DEFAULT_TIME_MIN),
        "cpus_per_task": _env_int("TRANSFERLAB_SLURM_CPUS", DEFAULT_CPUS),
    }
    gpus = _env_int("TRANSFERLAB_SLURM_GPUS", 1)
    mem = _env_int("TRANSFERLAB_SLURM_MEM_GB", None)
    if mem:
        params["mem_gb"] = mem
    if executor.cluster == "slurm":
        if gpus:
            params["gpus_per_node"] = gpus
        params["slurm_array_parallelism"] = max(1, jobs)
        if os.environ.get("TRANSFERLAB_SLURM_PARTITION"):
            params["slurm_partition"] = os.environ["TRANSFERLAB_SLURM_PARTITION"]
        if os.environ.get("TRANSFERLAB_SLURM_ACCOUNT"):
            params["slurm_account"] = os.environ["TRANSFERLAB_SLURM_ACCOUNT"]
        extra = os.environ.get("TRANSFERLAB_SLURM_EXTRA", "").strip()
        if extra:
            try:
                params["slurm_additional_parameters"] = dict(json.loads(extra))
            except (ValueError, TypeError):
                raise ConfigError(f"TRANSFERLAB_SLURM_EXTRA={extra!r} must be a JSON object") from None
    else:  # one machine: every local task would get GPU 0, so ask for one only where there is one
        params["gpus_per_node"] = min(gpus or 0, len(gpu_ids()))
    executor.update_parameters(**params)
    return executor


def task_threads(threads: int | None = None) -> int:
    """CPU threads of a task: given (a local test), or the CPUs SLURM gave this task."""
    if threads is None:
        threads = int(os.environ.get("SLURM_CPUS_PER_TASK") or len(os.sched_getaffinity(0)) or 1)
    return max(1, threads)


class CellJob(submitit.helpers.Checkpointable):
    """One array task: one cell, executed in the task's process. Checkpointable: a timed-out task is requeued as is
    and the cell resumes from its own checkpoint."""

    def __call__(self, planned, root: str, notebook: str = "", threads: int | None = None) -> str:
        os.environ["TRANSFERLAB_THREADS"] = str(task_threads(threads))
        os.environ["TRANSFERLAB_PROGRESS"] = "text"
        return execute(planned.cfg, planned.run_dir, Path(root), notebook)["status"]


@contextmanager
def _submission_env():
    """Tasks inherit the submitting environment (sbatch --export=ALL, local Popen): make ``lib`` importable there,
    and drop the SLURM_* variables of an enclosing allocation (submitit's ``clean_env``)."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = pythonpath_with_lib(before)
    try:
        with submitit.helpers.clean_env():
            yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def _outcome(job) -> tuple[str, BaseException | None] | None:
    """None while the task runs; then ("done" | "failed", None), or ("failed", error) if the task itself died."""
    try:
        if not job.done():  # the debug cluster runs the task here, and raises its error from done()
            return None
        return job.result(), None
    except Exception as err:
        return "failed", err


def _record_lost(planned, job, err: BaseException) -> None:
    """A task that died without writing the cell's own failed.json or metrics.json (killed, timed out, lost)."""
    run_dir = planned.run_dir
    if (run_dir / "metrics.json").exists() or (run_dir / "failed.json").exists():
        return
    atomic_write_json(
        run_dir / "failed.json",
        {
            "returncode": None,
            "error_tail": f"{type(err).__name__}: {err}"[-2000:],
            "executor": f"submitit/{job.__class__.__name__}",
            "job_id": str(job.job_id),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )


def _reply(planned, status: str, err: BaseException | None) -> dict:
    """The outcome of a finished task in the local executor's words (headline metric or the cause)."""
    from transferlab.results import finished_result
    from transferlab.runner.cell import headline

    result = finished_result(planned.run_dir)
    if status == "done" and result is not None:
        return {"status": "done", **headline(result)}
    error = f"{type(err).__name__}: {err}" if err is not None else _recorded_error(planned.run_dir)
    return {"status": "failed", "error": error[:500], "log": str(planned.run_dir / "run.log")}


def _recorded_error(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "failed.json").read_text()).get("error", "see failed.json")
    except (OSError, ValueError):
        return "the task ended without a result"


def run_slurm(todo: list, root: Path, jobs: int, on_result=None, folder: Path | str = ".slurm",
              notebooks: dict[str, str] | None = None) -> dict[str, int]:  # fmt: skip
    """Run ``todo`` (runner.Planned cells) as one submitit job array; returns counts of done / failed cells."""
    if not todo:
        return {"done": 0, "failed": 0}
    folder = Path(folder).resolve()
    papers = sorted({p.cfg.paper for p in todo})
    executor = make_executor(
        folder / "%j", jobs, f"transferlab-{papers[0] if len(papers) == 1 else 'tables'}"
    )
    cluster = executor.cluster
    jobs = max(1, jobs)
    root_path = str(Path(root).resolve())
    # A local machine shares its CPUs between the tasks that run at once; a cluster task owns its allocation.
    threads = None if cluster == "slurm" else max(1, (os.cpu_count() or 1) // jobs)
    task = CellJob()
    for p in todo:
        p.run_dir.mkdir(parents=True, exist_ok=True)
        (p.run_dir / "failed.json").unlink(missing_ok=True)  # a retry: only this attempt's outcome counts

    counts = {"done": 0, "failed": 0}
    queue = list(todo)
    pending: dict = {}  # job → Planned

    def submit(cells: list) -> None:
        with _submission_env():
            books = [(notebooks or {}).get(p.cfg.paper, "") for p in cells]
            submitted = executor.map_array(
                task, cells, [root_path] * len(cells), books, [threads] * len(cells)
            )
        pending.update(zip(submitted, cells))

    try:
        if cluster == "slurm":  # one array; SLURM enforces slurm_array_parallelism
            submit(queue)
            queue = []
            print(f"submitted job array {next(iter(pending)).job_id.split('_')[0]} ({len(pending)} tasks, logs in "
                  f"{folder})", flush=True)  # fmt: skip
        while pending or queue:
            if queue and len(pending) < jobs:  # local / debug: keep at most `jobs` tasks in flight
                free = jobs - len(pending)
                submit(queue[:free])
                queue = queue[free:]
            finished = [(job, outcome) for job in pending if (outcome := _outcome(job)) is not None]
            for job, (status, err) in finished:
                planned = pending.pop(job)
                if err is not None:  # the task itself died: time limit, OOM, node failure, cancelled
                    _record_lost(planned, job, err)
                counts[status] += 1
                if on_result is not None:
                    on_result(planned, _reply(planned, status, err))
            if not finished:
                time.sleep(POLL_S.get(cluster, 5.0))
    except BaseException:  # Ctrl-C or an error here: do not leave tasks running on the cluster
        for job in pending:
            with suppress(Exception):  # best effort: the task may have finished meanwhile
                job.cancel(check=False)
        raise
    return counts
