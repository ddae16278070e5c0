"""The peak memory of a training step (``peak_step_mb``): what a step needs on top of the built model and its inputs
— activations kept for backward, gradients, the optimizer's state (a fresh optimizer, so its first step allocates
it), temporaries, workspaces.

CUDA: ``memory_allocated()`` after building is the baseline, then ``reset_peak_memory_stats()``, ``steps`` steps,
``max_memory_allocated()`` − baseline (``peak_total_mb``: without the subtraction).

CPU: process-wide ``ru_maxrss`` is the high-water mark of everything the process ever did, and the profiler's memory
events see only tensors from the c10 allocator (not oneDNN scratch or allocator overhead). So the CPU steps run in
**one fresh process per call** (``python -m transferlab.perf.memory``), which measures the groups one after another:
for each, the pickled methods are loaded, one no-grad forward initialises thread pools and libraries, freed heap is
returned to the OS (glibc ``malloc_trim``; large blocks are always ``mmap``-ed — a fixed ``M_MMAP_THRESHOLD`` — so
a group's freed buffers never stay resident for the next), the RSS (``VmRSS``) is the baseline, the kernel's
high-water mark is reset to it (``/proc/self/clear_refs`` ← 5, Linux ≥ 4.0), the steps run, and ``VmHWM`` −
baseline is the peak: real memory of everything the step touched. One interpreter start (5–10 s) per call, not per
row: a cost table measures all its rows in one child. CPU peaks (resident pages, ~±2 MB run to run) and CUDA peaks
(tensor bytes) are not comparable with each other: compare methods on one device. ``None`` with a reason where it
cannot be measured (not Linux, pickling fails).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from transferlab.config import RunConfig
from transferlab.methods import Method
from transferlab.train import make_optimizer

MB = 2**20
Batch = tuple[torch.Tensor, torch.Tensor]
Group = tuple[
    list[Method], Batch, RunConfig | None
]  # models stepped together (an ensemble), their batch and run
HOW_CPU = "cpu: fresh process, VmHWM - VmRSS before the steps"


def default_optimizer(method: Method, run: RunConfig | None) -> torch.optim.Optimizer:
    """fit()'s optimizer for ``run``; without a run, SGD (lr 0.01, momentum 0.9) on the trainable parameters."""
    if run is not None:
        return make_optimizer(method, run)
    return torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.01, momentum=0.9)


def _proc_status_kb(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M).group(1))


def _libc_call(name: str, *args) -> None:
    with contextlib.suppress(OSError, AttributeError):
        getattr(ctypes.CDLL("libc.so.6"), name)(*args)


def _steps(group: Group, steps: int) -> None:
    methods, (x, y), run = group
    optimizers = [default_optimizer(m, run) for m in methods]
    for _ in range(steps):
        for m, opt in zip(methods, optimizers, strict=True):
            m.train()
            m.train_step(x, y, opt)


def _child(folder: str, count: int, steps: int) -> list[dict]:
    """In the fresh process: each group's VmHWM − VmRSS around ``steps`` training steps (module doc)."""
    _libc_call("mallopt", -3, 128 * 1024)  # M_MMAP_THRESHOLD fixed: large blocks are unmapped when freed
    out = []
    for i in range(count):
        blob = torch.load(
            os.path.join(folder, f"{i}.pt"), weights_only=False
        )  # written just before by the parent
        torch.set_num_threads(blob["threads"])
        methods, (x, _), _ = group = blob["group"]
        if not methods:  # a group the parent could not pickle
            out.append({})
            continue
        with torch.no_grad():  # thread pools, oneDNN initialisation: not the step's memory
            for m in methods:
                m.eval()
                m.predict(x)
        gc.collect()
        _libc_call("malloc_trim", 0)
        base = _proc_status_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset the RSS high-water mark to the current RSS
        _steps(group, steps)
        peak = _proc_status_kb("VmHWM")
        out.append({"peak_step_mb": (peak - base) / 1024, "baseline_mb": base / 1024})
        del blob, methods, group
        gc.collect()
        _libc_call("malloc_trim", 0)
    return out


def _cuda_peak(group: Group, steps: int) -> dict:
    device = group[1][0].device
    gc.collect()
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    _steps(group, steps)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return {"peak_step_mb": (peak - base) / MB, "peak_total_mb": peak / MB, "baseline_mb": base / MB,
            "memory_how": "cuda max_memory_allocated - memory_allocated before the steps"}  # fmt: skip


class CpuPeaks:
    """CPU groups written to disk as they come (so the caller need not hold them), then measured together in one
    fresh process by :meth:`run`: one dict per group, in the order added."""

    def __init__(self, steps: int = 2):
        self.steps, self.count, self.notes = steps, 0, {}
        self._tmp = tempfile.TemporaryDirectory(prefix="transferlab-memory-")

    def add(self, group: Group) -> int:
        try:
            torch.save(
                {"group": group, "threads": torch.get_num_threads()},
                os.path.join(self._tmp.name, f"{self.count}.pt"),
            )
        except Exception as err:  # noqa: BLE001 (an unpicklable attribute: report it, do not fail the table)
            self.notes[self.count] = f"cannot pickle: {err}"
            torch.save(
                {"group": ([], group[1], None), "threads": 1},
                os.path.join(self._tmp.name, f"{self.count}.pt"),
            )
        self.count += 1
        return self.count - 1

    def run(self) -> list[dict]:
        with self._tmp as tmp:
            if not self.count:
                return []
            if not Path("/proc/self/clear_refs").exists():
                return [
                    {"peak_step_mb": None, "memory_how": HOW_CPU, "memory_note": "needs Linux /proc"}
                ] * self.count
            # a new interpreter (not multiprocessing: its spawn re-runs the caller's main script, e.g. a notebook's)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            cmd = [sys.executable, "-m", "transferlab.perf.memory", tmp, str(self.count), str(self.steps)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return [
                {"peak_step_mb": None, "memory_how": HOW_CPU, "memory_note": done.stderr.strip()[-500:]}
            ] * self.count
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        return [{**m, "memory_how": HOW_CPU} if i not in self.notes else
                {"peak_step_mb": None, "memory_how": HOW_CPU, "memory_note": self.notes[i]} for i, m in enumerate(measured)]  # fmt: skip


def step_peak_memory(groups: list[Group], steps: int = 2) -> list[dict]:
    """Peak extra memory of ``steps`` training steps of each group (its models each stepped on its batch, each with a
    fresh optimizer): one dict per group with ``peak_step_mb``, ``memory_how`` and, where known, ``peak_total_mb`` /
    ``baseline_mb``; ``peak_step_mb`` None with ``memory_note`` when it cannot be measured. CUDA groups in this
    process; all CPU groups in one fresh process (:class:`CpuPeaks`)."""
    cpu = CpuPeaks(steps)
    slots = [_cuda_peak(g, steps) if g[1][0].device.type == "cuda" else cpu.add(g) for g in groups]
    measured = cpu.run()
    return [measured[s] if isinstance(s, int) else s for s in slots]


if (
    __name__ == "__main__"
):  # the fresh process of step_peak_memory: python -m transferlab.perf.memory DIR N STEPS
    print(json.dumps(_child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))

__all__ = ["CpuPeaks", "Group", "default_optimizer", "step_peak_memory"]
