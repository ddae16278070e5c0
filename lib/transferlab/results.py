"""Result records, atomic file writes, provenance, and loading results into pandas.

A finished run directory ``results/<paper>/<protocol>/<run_id>/`` holds:

- ``config.json``   the flat RunConfig and its hash (written first);
- ``splits.json``   the train / val / test indices the run used;
- ``history.jsonl`` one line per evaluation (step, lr, train loss and terms, val accuracy);
- ``metrics.json``  the :class:`Result` — written **last and atomically**: its presence means "finished";
- ``run.ipynb``     the executed notebook, when the run came from papermill;
- ``checkpoint.pt`` only while the run is unfinished (resume point); removed when metrics.json is written.

Every write goes to a temporary file in the same directory and is renamed into place, so a killed process never
leaves a half-written result behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from transferlab.errors import WriteError

RESULTS_DIR = Path(os.environ.get("TRANSFERLAB_RESULTS", "results"))
SCHEMA = 1


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place: a killed writer or a full disk never
    leaves a partial file, and the previous file, if any, stays as it was. An OS error is a one-line
    :class:`~transferlab.errors.WriteError` naming ``path`` (the original error chained, for the log)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the writer's pid in the name lets remove_stale_temporaries() tell a killed writer's leftover from a live one
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    except OSError as err:
        raise _write_error(path, err) from err
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise _write_error(path, err) from err
        raise


def _write_error(path: Path, err: OSError) -> WriteError:
    kept = "the previous file is unchanged" if os.path.exists(path) else "nothing was written"
    return WriteError(f"could not write {path} ({err.strerror or err}; {kept}): free some space or choose a "
                      "writable folder (--results, --out, TRANSFERLAB_RESULTS, TRANSFERLAB_CACHE)")  # fmt: skip


def writable_folder(folder: Path | str, what: str, fix: str) -> Path:
    """``folder``, created if needed, after checking that a file can be created in it; otherwise a one-line
    WriteError naming ``what`` (e.g. "results folder"), the folder and ``fix`` — before any work starts."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".transferlab-write-check."):
            pass
    except OSError as err:
        raise WriteError(f"{what} {folder} is not writable ({err.strerror or err}): {fix}") from err
    return folder


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files of atomic writes whose writer process no longer exists (a run killed while
    writing); those of live writers are left alone. Returns what was removed."""
    removed = []
    for tmp in Path(directory).glob(".*.tmp"):
        parts = tmp.name.split(".")
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        if pid is not None and _alive(pid):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(
        path, (json.dumps(obj, indent=1, sort_keys=True, default=_json_default) + "\n").encode()
    )


def atomic_torch_save(path: Path, obj: Any) -> None:
    """``torch.save`` through a buffer: the bytes depend on the content only (saving to a file name would embed the
    temporary name in the archive), so a checksum identifies the weights, and the file appears atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------------------------------------- provenance
def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=Path(__file__).resolve().parent
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(device: torch.device | str | None = None) -> dict:
    """Where a number came from: code version, library versions, hardware."""
    from importlib.metadata import version

    import numpy

    from transferlab.version import __version__

    status = _git("status", "--porcelain", "--untracked-files=no")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    return {
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "transferlab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "numpy": numpy.__version__,
        "device": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()})",
        "cuda": torch.version.cuda if dev.type == "cuda" else None,
        "cpu_threads": torch.get_num_threads(),
        "hostname": platform.node(),
    }


# ------------------------------------------------------------------------------------------------- the record
@dataclass
class Result:
    """One finished run. Accuracies are top-1 in %; ``test_at_best_val`` is the number a table reports."""

    run_id: str
    config: dict  # flat RunConfig
    config_hash: str
    metrics: dict  # best_val, best_step, test_at_best_val, test_last, per-class lists, last_step
    history: list[dict] = field(default_factory=list)  # learning curves, one entry per evaluation
    cost: dict = field(default_factory=dict)  # params, wall_time_s, train_images_per_s, peak_memory_mb
    provenance: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # method-specific artefacts (e.g. Co-Tuning's chosen C)
    schema: int = SCHEMA

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Result:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def write(self, run_dir: Path) -> Path:
        path = Path(run_dir) / "metrics.json"
        atomic_write_json(path, self.to_json())
        return path

    def summary(self) -> str:
        m, c = self.metrics, self.config
        return (
            f"{c['method']} on {c['dataset']} (rate {c['sample_rate']}, seed {c['seed']}, {c['protocol']} protocol): "
            f"test {m['test_at_best_val']:.2f}% at best val step {m['best_step']} (val {m['best_val']:.2f}%), "
            f"test {m['test_last']:.2f}% at the last step; {self.cost.get('wall_time_s', 0):.1f} s"
        )


def load_result(run_dir: Path) -> Result:
    return Result.from_json(read_json(Path(run_dir) / "metrics.json"))


def read_result(path: Path) -> Result | None:
    """The Result in ``path`` (a metrics.json), or None if it is unreadable or partial: such a file means "not
    finished" everywhere (the runner re-runs the cell and rewrites it atomically; reports skip it and name it)."""
    try:
        d = read_json(path)
        result = Result.from_json(d)
        if not isinstance(result.metrics, dict) or "test_at_best_val" not in result.metrics:
            return None
        return result
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def finished_result(run_dir: Path, config_hash: str | None = None) -> Result | None:
    """The finished run in ``run_dir`` (matching ``config_hash`` if given), or None."""
    result = read_result(Path(run_dir) / "metrics.json")
    if result is None or (config_hash is not None and result.config_hash != config_hash):
        return None
    return result


def finished_runs(root: Path | str = RESULTS_DIR) -> dict[str, Path]:
    """config hash → run directory of every finished, original (not reused) run under ``root``."""
    index: dict[str, Path] = {}
    for metrics in sorted(Path(root).glob("*/*/*/metrics.json")):
        r = read_result(metrics)
        if r is not None and not r.extra.get("reused_from"):
            index.setdefault(r.config_hash, metrics.parent)
    return index


@contextlib.contextmanager
def run_lock(run_dir: Path, on_wait=None, blocking: bool = True):
    """Hold an OS file lock on ``run_dir`` (``.lock`` inside it) so one process at a time trains there. A second
    process waits (calling ``on_wait`` once) — or, with ``blocking=False``, gets ``None`` instead of waiting. The
    lock dies with its process, so a killed runner never leaves a stale lock behind."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fh = open(run_dir / ".lock", "w")  # noqa: SIM115  held for the block
    except OSError as err:
        raise WriteError(f"cannot write in {run_dir} ({err.strerror or err}): choose a writable results folder "
                         "(--results / TRANSFERLAB_RESULTS)") from err  # fmt: skip
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not blocking:
                yield None
                return
            if on_wait is not None:
                on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_results(root: Path | str = RESULTS_DIR, paper: str | None = None, protocol: str | None = None):
    """All finished runs under ``root`` as a DataFrame: flat config columns + metrics + cost, one row per run."""
    import pandas as pd

    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(
            f"results folder {base} does not exist (run a table first, or pass --results)"
        )
    pattern = f"{paper or '*'}/{protocol or '*'}/*/metrics.json"
    rows, unreadable = [], []
    for path in sorted(base.glob(pattern)):
        r = read_result(path)
        if r is None:
            unreadable.append(str(path))
            continue
        row = {**r.config, "run_id": r.run_id, "config_hash": r.config_hash, "run_dir": str(path.parent)}
        row["method_params"] = json.dumps(r.config.get("method_params", {}), sort_keys=True)
        row.update({k: v for k, v in r.metrics.items() if not isinstance(v, list | dict)})
        at_best = [h for h in r.history if h.get("step") == r.metrics.get("best_step") and "val_loss" in h]
        row["val_loss_at_best"] = (
            at_best[0]["val_loss"] if at_best else float("nan")
        )  # tie-breaks model selection
        row.update({f"cost_{k}": v for k, v in r.cost.items() if not isinstance(v, list | dict)})
        row["git_sha"] = r.provenance.get("git_sha")
        row["device_name"] = r.provenance.get("device")
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df["variant"] = method_variants(df)
    df.attrs["unreadable"] = (
        unreadable  # partial or corrupt metrics.json files: not finished, named in reports
    )
    return df


def method_variants(df) -> list[str]:
    """The method's name, plus the method parameters that differ between its runs (``co_tuning (relationship=
    direct)``), per table: runs of different variants are different experiments and must never be averaged together."""
    params = [json.loads(p) for p in df["method_params"]]
    # per table: an ablation table's variants must not rename the same method in the main table
    groups = list(zip(df["table"], df["method"])) if "table" in df else [("", m) for m in df["method"]]
    varying: dict[tuple, list[str]] = {}
    for group in set(groups):
        rows = [p for p, g in zip(params, groups) if g == group]
        keys = sorted({k for p in rows for k in p})
        varying[group] = [k for k in keys if len({json.dumps(p.get(k)) for p in rows}) > 1]
    out = []
    for p, g in zip(params, groups):
        shown = ", ".join(f"{k}={p.get(k)}" for k in varying[g])
        out.append(f"{g[1]} ({shown})" if shown else g[1])
    return out
