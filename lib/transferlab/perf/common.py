"""The vocabulary of every measurement in :mod:`transferlab.perf`: a :class:`Case` and its :class:`Arm` s, the one
run configuration a measurement builds (:func:`bench_config`), warm-up and alternating timed runs, synthetic
batches, the machine's description, one text-table formatter and one report writer.

Timing rules shared by every suite: ``WARMUP_STEPS`` untimed steps first (allocator, oneDNN / cuDNN autotuning, lazy
imports); then ``repeats`` timed runs that alternate the order of the contenders (a drift of the machine's speed
hits both sides); CUDA is synchronised on both ends of a timed run; medians are reported, with the best-of-N ratio
and the spread (slowest / fastest run) as the noise-robust companions. No number here is a pass/fail gate: timings
on a shared machine are evidence, and every command returns 0 whatever they are.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from transferlab.config import RunConfig
from transferlab.results import atomic_write_json, provenance

WARMUP_STEPS = 5  # untimed steps of every contender before any timing
DISTINCT_BATCHES = 8  # synthetic batches per case; longer runs cycle through them (bounds device memory)
NOISY_SPREAD = (
    1.25  # slowest / fastest run of the same work above this: the median ratio is not to be trusted
)
SCHEMA = 2


@dataclass(frozen=True)
class Arm:
    """One contender: ``method`` (registered) built with flat RunConfig overrides ``params``; ``copies`` > 1 is an
    ensemble of separately built models, each stepped on every batch; ``build(run, task, copy index)`` replaces
    ``METHODS.get(method).build`` where weights must be random (no published file offline)."""

    label: str
    method: str
    params: Mapping = field(default_factory=dict)
    copies: int = 1
    build: Callable | None = None


@dataclass(frozen=True)
class Case:
    """What one measurement runs: images of ``shape`` (C, H, W) in batches of ``batch_size`` on ``device``, for
    the ``arms`` (``arms[0]`` is the subject: ratios are subject / arm). ``kind``: "fit" (fit() against a bare
    loop), "train" (step time and memory), "collapse" (inference of a collapsed lite model), "data" (from files:
    ``preset`` names the transform preset). ``target``: a design target of the suite's headline ratio, if stated."""

    name: str
    device: str
    shape: tuple[int, int, int]
    batch_size: int
    num_classes: int
    arms: tuple[Arm, ...]
    kind: str = "train"
    target: float | None = None
    preset: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} {self.shape[1]}x{self.shape[2]} b{self.batch_size}"


def bench_config(case: Case, arm: Arm | None = None, steps: int = 1, **overrides) -> RunConfig:
    """The run configuration of every measurement: SGD (momentum 0.9, Nesterov, weight decay 5e-4, constant lr
    0.01), precision auto (fp32 on CPU, bf16 autocast on GPU), the case's device and batch size, ``steps``
    iterations with a single evaluation at the end, no validation split; then the arm's overrides, then
    ``overrides`` (e.g. ``nesterov=False`` where L2T-ww's look-ahead must replay plain momentum SGD)."""
    flat = {"paper": "bench", "table": "bench", "method": "scratch", "backbone": "mini_resnet", "pretrained": "none",
            "device": case.device, "precision": "auto", "dataset": "mini_fmnist", "val_fraction": 0.0,
            "batch_size": case.batch_size, "eval_batch_size": case.batch_size, "optimizer": "sgd", "lr": 0.01,
            "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True, "schedule": "constant", "iterations": steps,
            "eval_every": steps}  # fmt: skip
    if arm is not None:
        flat.update(method=arm.method, **arm.params)
    return RunConfig.from_flat({**flat, **overrides})


# ------------------------------------------------------------------------------------------------------ timing
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], n: int, device: torch.device) -> float:
    """Seconds for ``n`` calls of ``fn`` (synchronised on CUDA before and after)."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return time.perf_counter() - t0


def alternate(runs: list[Callable[[], float]], repeats: int) -> list[list[float]]:
    """``repeats`` rounds of every run (each returns its own seconds), the order reversed every other round."""
    times: list[list[float]] = [[] for _ in runs]
    for r in range(repeats):
        for i in range(len(runs)) if r % 2 == 0 else reversed(range(len(runs))):
            times[i].append(runs[i]())
    return times


def summary(times: list[float], subject: list[float], steps: int, batch: int) -> dict:
    """Per-contender numbers: ms per step, images/s (medians), the subject / contender ratio (median of the
    per-round ratios and of the best runs) and the spread."""
    med = statistics.median(times)
    return {"ms_all": [t / steps * 1e3 for t in times], "ms": med / steps * 1e3, "images_per_s": steps * batch / med,
            "t_ratio": statistics.median(a / b for a, b in zip(subject, times, strict=True)),
            "t_ratio_of_min": min(subject) / min(times), "spread": max(times) / min(times)}  # fmt: skip


def synthetic_batches(case: Case, device: torch.device, n: int = DISTINCT_BATCHES):
    """``n`` seeded (x, y) batches on ``device``: x standard normal, channels_last; y uniform labels."""
    gen = torch.Generator(device=device).manual_seed(0)
    shape = (case.batch_size, *case.shape)
    return [(torch.randn(shape, generator=gen, device=device).contiguous(memory_format=torch.channels_last),
             torch.randint(0, case.num_classes, shape[:1], generator=gen, device=device)) for _ in range(n)]  # fmt: skip


# ------------------------------------------------------------------------------------------- machine, reports
def machine() -> dict:
    cpu_model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    cuda = torch.cuda.is_available()
    return {"cpu_model": cpu_model, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if cuda else None, "platform": platform.platform()}  # fmt: skip


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


@dataclass(frozen=True)
class Column:
    """A text-table column: the row key (a callable for derived values), its header and format spec."""

    key: str | Callable[[dict], object]
    header: str
    spec: str = ""
    width: int = 9

    def cell(self, row: dict) -> str:
        v = self.key(row) if callable(self.key) else row.get(self.key)
        text = "-" if v is None else format(v, self.spec)
        return text.ljust(self.width) if isinstance(v, str) else text.rjust(self.width)


def format_table(rows: list[dict], columns: list[Column]) -> str:
    """The one text table of the perf suites: a header, a rule, one line per row."""
    head = " ".join(
        c.header.ljust(c.width) if i == 0 else c.header.rjust(c.width) for i, c in enumerate(columns)
    )
    return "\n".join([head, "-" * len(head), *(" ".join(c.cell(r) for c in columns) for r in rows)])


def write_report(out: Path | str, suite: str, load_before, body: dict, legend: str, table: str,
                 device: str = "cpu") -> dict:  # fmt: skip
    """Print the machine, the load average, the legend and the table; write the JSON report atomically."""
    mach, load_after = machine(), load_average()
    gpu = f", GPU {mach['gpu']}" if mach["gpu"] else ""
    print(
        f"machine: {mach['cpu_model']}, {mach['cpu_count']} CPUs, {mach['torch_threads']} torch threads{gpu}"
    )
    print(f"load average (1/5/15 min): before {load_before}, after {load_after}")
    print(legend)
    if table:
        print(table)
    report = {"schema": SCHEMA, "suite": suite, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": mach,
              "load_average": {"before": load_before, "after": load_after},
              "provenance": provenance(device), **body}  # fmt: skip
    atomic_write_json(Path(out), report)
    print(f"wrote {out}")
    return report


__all__ = ["DISTINCT_BATCHES", "NOISY_SPREAD", "WARMUP_STEPS", "Arm", "Case", "Column", "alternate", "bench_config",
           "format_table", "load_average", "machine", "summary", "sync", "synthetic_batches", "timed",
           "write_report"]  # fmt: skip
