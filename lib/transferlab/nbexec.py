"""Executing the suite's jupytext notebooks with papermill, in child processes that die with their parent.

``notebook_ipynb(name)`` converts ``notebooks/<name>.py`` (py:percent) to the .ipynb papermill reads;
``execute_notebook`` runs papermill in a child process whose environment puts this checkout's ``lib`` first on
``PYTHONPATH`` (kernels inherit it) and which is killed when its parent dies (Linux ``PR_SET_PDEATHSIG``; the
kernel itself exits when papermill does, through ipykernel's parent poller), so a killed runner leaves no kernel
training on behind it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

from transferlab import env
from transferlab.errors import ConfigError
from transferlab.results import atomic_write_json

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"  # the default; $TRANSFERLAB_NOTEBOOKS replaces it
KERNEL_START_ERRORS = ("Kernel died before replying", "Kernel didn't respond", "Address already in use")


def die_with_parent() -> None:
    """In a child (``preexec_fn``): receive SIGKILL when the parent thread dies (Linux; a no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


def pythonpath_with_lib(pythonpath: str | None) -> str:
    """``PYTHONPATH`` with the checkout's ``lib`` first (once): what every child process and kernel needs to import
    this checkout's ``transferlab``."""
    lib = str(REPO / "lib")
    rest = [p for p in (pythonpath or "").split(os.pathsep) if p and p != lib]
    return os.pathsep.join([lib, *rest])


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = pythonpath_with_lib(os.environ.get("PYTHONPATH"))
    return env


def notebook_path(name: str) -> Path:
    """``notebooks/<name>.py`` (or in ``$TRANSFERLAB_NOTEBOOKS``); ConfigError naming the folder if it is not there,
    so a run through notebooks stops before any cell starts."""
    folder = env.folder("TRANSFERLAB_NOTEBOOKS")
    src = (folder or NOTEBOOKS) / f"{name}.py"
    if not src.is_file():
        where = f"$TRANSFERLAB_NOTEBOOKS={folder}" if folder else f"the repository's {NOTEBOOKS}"
        fix = (
            "unset TRANSFERLAB_NOTEBOOKS or point it at"
            if folder
            else "restore it from git, or set TRANSFERLAB_NOTEBOOKS to"
        )
        raise ConfigError(f"notebook {name}.py not found in {where}: {fix} a folder that holds {name}.py")
    return src


def notebook_ipynb(name: str, work_dir: Path) -> Path:
    """The jupytext notebook ``notebooks/<name>.py`` converted to .ipynb (papermill's input)."""
    import jupytext

    nb = jupytext.read(notebook_path(name))
    nb.metadata.setdefault(
        "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
    )
    dst = work_dir / f"{name}.ipynb"
    dst.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, dst)
    return dst


def execute_notebook(notebook: Path, output: Path, params: dict, env: dict | None = None,
                     log: Path | None = None, stream: bool = False) -> tuple[int, str]:  # fmt: skip
    """Run papermill in a child process (retried once on papermill's kernel-start race); returns (returncode, the
    tail of its output). ``stream``: the cells' output goes to this process's terminal instead of ``log``."""
    params_file = output.parent / f".{output.stem}.params.json"
    atomic_write_json(params_file, params)
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(output), "-f", str(params_file)]
    cmd += ["--cwd", str(REPO), "--start-timeout", "180", "-k", "python3"]
    if stream:
        cmd += ["--log-output", "--no-progress-bar"]
    for attempt in (1, 2):
        with open(log or os.devnull, "w") as fh:
            sink = {} if stream else {"stdout": fh, "stderr": subprocess.STDOUT}
            proc = subprocess.run(cmd, env=env or child_env(), stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
                                  **sink)  # fmt: skip
        tail = log.read_text()[-4000:] if log and log.exists() else ""
        if proc.returncode == 0 or attempt == 2 or not any(s in tail for s in KERNEL_START_ERRORS):
            break
    params_file.unlink(missing_ok=True)
    return proc.returncode, tail


__all__ = ["NOTEBOOKS", "REPO", "child_env", "die_with_parent", "execute_notebook", "notebook_ipynb",
           "notebook_path", "pythonpath_with_lib"]  # fmt: skip
