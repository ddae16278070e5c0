"""``transferlab bench``: the overhead of :func:`transferlab.train.fit` against a bare PyTorch loop, and throughput.

What is compared. Both sides train the *same* network from the *same* initial weights (``scratch`` built under the
same seed), on the *same* batches in the same order, with the same optimiser (SGD, momentum 0.9, Nesterov, weight
decay 5e-4, constant lr), channels_last, the same precision (fp32 on CPU, bf16 autocast on GPU) and the same number
of steps. The bare loop is the textbook ``zero_grad → forward → cross_entropy → backward → step``; ``fit()`` adds its
per-step work (lr from the schedule for every group, ``method.train()``, the training stream's bookkeeping, the
on-device accumulation of the loss terms, the progress bar). As a check that both sides really did the same work,
the final weights of the first timed pair are compared (``max_param_diff``: 0 on CPU, where kernels are
deterministic).

Why pre-generated batches, not a shared ``TrainStream``. Batch augmentation costs as much as a whole training step of
the mini ResNet on two cores; feeding both loops from a live stream would add the same large constant to both times
and push the ratio towards 1, hiding the very overhead we want to see. So the batches are generated once, in memory
(on the GPU for the GPU case), before anything is timed. ``fit()`` still gets them through its own, unmodified
``TrainStream``: a replay dataset maps each batch of indices the stream asks for to the pre-generated batch of that
step (a view, no copy), with an identity preset, so fit's data path costs what its bookkeeping costs and nothing
more — and whatever it costs is counted against fit, not hidden.

Timing. ``fit`` gets ``eval_every = steps`` and ``out_dir=None``: it evaluates once, after the last step, and writes
nothing; its ``Result.cost["train_time_s"]`` stops before that evaluation (it ends with the ``.item()`` of the
accumulated loss, which on GPU waits for all queued work). The bare loop is timed the same way: from just before its
first step to just after its last, with ``torch.cuda.synchronize()`` on both ends on GPU. A warm-up pair runs first
(allocator, oneDNN / cuDNN autotuning, lazy imports); then ``repeats`` timed pairs alternate which side goes first,
and the reported ratio is the median of the per-pair ratios ``fit / bare``. Target: ratio <= 1.05.

Noise. On a shared 2-core machine one run of the same work can take several times another (other processes take
the cores from under the two OpenMP threads), so the table also gives two noise-robust companions: the ratio of the
best times (``min ratio``, what ``timeit`` reports) and ``loop us/step``, fit() timed with a no-op ``train_step`` —
a direct measurement of the loop's own per-step cost (lr setting, ``method.train()``, the stream's seed derivation,
loss accumulation, progress bar), which ``ratio_implied_by_loop_overhead`` turns into the ratio it alone implies.
Read the load average printed with the table before trusting a ratio.

Cases: ``mini_resnet`` on 1×28×28 images, batch 128, on the CPU (skipped with ``--gpu-only``); when CUDA is
available, ResNet-50 on 3×224×224, batch 128 (64 if 128 does not fit), bf16 autocast, synthetic data on the GPU.
The table goes to stdout and the numbers, the machine and the provenance to ``args.out`` (JSON, written atomically).
The return code is 0 whatever the verdict: timings on a shared machine are evidence, not a pass/fail gate.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.config import RunConfig
from transferlab.data.base import DatasetSource, Part, TensorImages
from transferlab.data.pipeline import TrainStream
from transferlab.data.splits import SplitIndices
from transferlab.data.transforms import Preset
from transferlab.experiment import setup_runtime
from transferlab.methods import METHODS, Method
from transferlab.perf.cost import sync
from transferlab.results import atomic_write_json, provenance
from transferlab.tasks.classification import Classification
from transferlab.train import autocast_dtype, fit

TARGET_RATIO = 1.05
MAX_DISTINCT_BATCHES = 32  # batches generated per case; longer runs cycle through them (bounds GPU memory)
WARMUP_STEPS = 10
NOISY_SPREAD = 1.25  # slowest / fastest timed run above this: say that the ratio is not to be trusted
INIT_SEED = 1234


@dataclass(frozen=True)
class Case:
    name: str
    backbone: str
    device: str
    channels: int
    size: int
    batch_size: int
    num_classes: int

    @property
    def label(self) -> str:
        return f"{self.name} {self.size}x{self.size} b{self.batch_size}"


CPU_CASE = Case("mini_resnet", "mini_resnet", "cpu", 1, 28, 128, 10)
GPU_CASE = Case("resnet50", "resnet50", "cuda", 3, 224, 128, 1000)


# --------------------------------------------------------------------------------------------- the replayed data
class _StepLookup:
    """``lookup[idx]`` → the pre-generated tensor of the step whose batch of stream indices starts with ``idx[0]``."""

    def __init__(self, bank: list[torch.Tensor]):
        self.bank = bank
        self.step_of_first: dict[int, int] = {}

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.bank[self.step_of_first[int(idx[0])] % len(self.bank)]


class _ReplayImages(TensorImages):
    """A ``TensorImages`` whose "images" and "targets" hand ``TrainStream`` the pre-generated batch of each step."""

    def __init__(self, xs: list[torch.Tensor], ys: list[torch.Tensor], n: int):  # noqa: D107 (no super: no tensor)
        self.images = _StepLookup(xs)  # type: ignore[assignment]
        self.targets = _StepLookup(ys)  # type: ignore[assignment]
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        raise TypeError("the benchmark's replay dataset is read batch-wise by TrainStream only")


@dataclass(frozen=True)
class _ReplayPreset(Preset):
    """Batches are already augmented and normalised: no augmentation; uint8 test images are only scaled to [0, 1]."""

    def augment_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255) if x.dtype == torch.uint8 else x


REPLAY_PRESET = _ReplayPreset("bench_replay", (0.0,), (1.0,), train=None, test=None)


@dataclass
class Bank:
    """The pre-generated training batches of one case, already on its device and in channels_last."""

    xs: list[torch.Tensor]
    ys: list[torch.Tensor]

    @classmethod
    def make(cls, case: Case, batch_size: int, steps: int, device: torch.device) -> Bank:
        gen = torch.Generator(device=device).manual_seed(0)
        shape = (batch_size, case.channels, case.size, case.size)
        xs, ys = [], []
        for _ in range(min(steps, MAX_DISTINCT_BATCHES)):
            x = torch.randn(shape, generator=gen, device=device).contiguous(memory_format=torch.channels_last)
            xs.append(x)
            ys.append(torch.randint(0, case.num_classes, (batch_size,), generator=gen, device=device))
        return cls(xs, ys)

    def batches(self, steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """What the bare loop iterates: the batch of step s is bank entry ``s % len(bank)``, as in the replay."""
        return [(self.xs[s % len(self.xs)], self.ys[s % len(self.ys)]) for s in range(steps)]


def _replay_source(case: Case, bank: Bank, cfg: RunConfig) -> tuple[DatasetSource, SplitIndices]:
    """A source whose training stream (one epoch of ``iterations`` batches) yields exactly ``bank.batches()``."""
    steps, bs = cfg.optim.iterations, cfg.data.batch_size
    n = steps * bs
    replay = _ReplayImages(bank.xs, bank.ys, n)
    train = Part(replay, np.zeros(n, dtype=np.int64))
    test_x = torch.zeros((bs, case.channels, case.size, case.size), dtype=torch.uint8)
    test = TensorImages(test_x, np.zeros(bs, dtype=np.int64)).part()  # fit's final test pass: one small batch
    classes = [str(c) for c in range(case.num_classes)]
    source = DatasetSource("bench_replay", classes, train, test, preset=REPLAY_PRESET.name)
    splits = SplitIndices(train=np.arange(n), val=np.zeros(0, dtype=np.int64), test=np.arange(bs))
    # The order fit's stream will draw, from the stream itself (same part, indices, batch size and seed as in fit).
    order = TrainStream(train, splits.train, REPLAY_PRESET, bs, cfg.seed, "cpu").order(0)
    first = {int(order[s * bs]): s for s in range(steps)}
    replay.images.step_of_first.update(first)  # type: ignore[attr-defined]
    replay.targets.step_of_first.update(first)  # type: ignore[attr-defined]
    return source, splits


# ---------------------------------------------------------------------------------------------------- the loops
def run_config(case: Case, batch_size: int, steps: int) -> RunConfig:
    return RunConfig.from_flat(
        {
            "paper": "bench",
            "table": "bench",
            "method": "scratch",
            "backbone": case.backbone,
            "pretrained": "none",
            "device": case.device,
            "precision": "auto",  # fp32 on CPU, bf16 autocast on GPU
            "dataset": "mini_fmnist",  # only validated by RunConfig; fit gets the replay source directly
            "val_fraction": 0.0,
            "batch_size": batch_size,
            "eval_batch_size": batch_size,
            "optimizer": "sgd",
            "lr": 0.01,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "nesterov": True,
            "schedule": "constant",
            "iterations": steps,
            "eval_every": steps,  # no evaluation inside the timed region
        }
    )


def _build(cfg: RunConfig, case: Case) -> Method:
    torch.manual_seed(INIT_SEED)  # identical initial weights for fit and the bare loop
    return METHODS.get("scratch").build(cfg, Classification(case.num_classes))


def time_fit(cfg: RunConfig, case: Case, bank: Bank, device: torch.device) -> tuple[float, torch.nn.Module]:
    """fit()'s own training time (evaluation excluded); its text progress output is captured."""
    source, splits = _replay_source(case, bank, cfg)
    method = _build(cfg, case)
    gc.collect()
    sync(device)
    with contextlib.redirect_stdout(io.StringIO()):
        result = fit(method, source, splits, REPLAY_PRESET, cfg, out_dir=None)
    return float(result.cost["train_time_s"]), method.backbone


def time_bare(cfg: RunConfig, case: Case, bank: Bank, device: torch.device) -> tuple[float, torch.nn.Module]:
    """The textbook loop on the same model, batches and optimiser."""
    o = cfg.optim
    model = _build(cfg, case).backbone.to(device).to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(
        model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov
    )
    amp = autocast_dtype(cfg, device)
    batches = bank.batches(o.iterations)
    gc.collect()
    sync(device)
    t0 = time.perf_counter()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - t0, model


def time_fit_loop_only(cfg: RunConfig, case: Case, bank: Bank, device: torch.device) -> float:
    """fit() with a no-op ``train_step``: the per-step cost of the loop itself (schedule, stream, bookkeeping).

    Unlike the fit/bare difference, this is a direct measurement of the overhead, so a noisy machine cannot hide
    or inflate it much; ``1 + loop_s / bare_s`` is the ratio that overhead alone implies.
    """
    source, splits = _replay_source(case, bank, cfg)
    method = _build(cfg, case)
    zero = torch.zeros((), device=device)
    method.train_step = lambda x, y, optimizer: {"loss": zero}  # shadows Method.train_step on this instance
    gc.collect()
    sync(device)
    with contextlib.redirect_stdout(io.StringIO()):
        result = fit(method, source, splits, REPLAY_PRESET, cfg, out_dir=None)
    return float(result.cost["train_time_s"])


def _max_param_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    with torch.no_grad():
        return max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def compare(case: Case, steps: int, repeats: int, batch_size: int | None = None) -> dict:
    """Warm-up pair, then ``repeats`` alternating timed pairs of fit() and the bare loop."""
    bs = batch_size or case.batch_size
    cfg = run_config(case, bs, steps)
    device = setup_runtime(cfg)  # threads (and cudnn.benchmark on GPU) as experiment.run sets them
    bank = Bank.make(case, bs, steps, device)
    warm_cfg = run_config(case, bs, min(steps, WARMUP_STEPS))
    time_fit(warm_cfg, case, bank, device)
    time_bare(warm_cfg, case, bank, device)
    fit_s, bare_s, ratios, diff = [], [], [], None
    for r in range(repeats):
        if r % 2 == 0:
            tf, mf = time_fit(cfg, case, bank, device)
            tb, mb = time_bare(cfg, case, bank, device)
        else:
            tb, mb = time_bare(cfg, case, bank, device)
            tf, mf = time_fit(cfg, case, bank, device)
        if diff is None:
            diff = _max_param_diff(mf, mb)
        del mf, mb
        fit_s.append(tf)
        bare_s.append(tb)
        ratios.append(tf / tb)
    loop_s = min(time_fit_loop_only(cfg, case, bank, device) for _ in range(3))
    ratio = statistics.median(ratios)
    fit_med, bare_med = statistics.median(fit_s), statistics.median(bare_s)
    del bank
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "name": case.name,
        "label": f"{case.name} {case.size}x{case.size} b{bs}",
        "device": str(device),
        "backbone": case.backbone,
        "image_shape": [case.channels, case.size, case.size],
        "batch_size": bs,
        "precision": "bf16 autocast" if autocast_dtype(cfg, device) is not None else "fp32",
        "channels_last": True,
        "steps": steps,
        "repeats": repeats,
        "warmup_steps": warm_cfg.optim.iterations,
        "fit_s": fit_s,
        "bare_s": bare_s,
        "ratios": ratios,
        "fit_s_median": fit_med,
        "bare_s_median": bare_med,
        "ratio": ratio,
        # Noise-robust companions: best-of-N times (what timeit reports), and the loop-only overhead.
        "ratio_of_min": min(fit_s) / min(bare_s),
        "spread": max(fit_s + bare_s) / min(fit_s + bare_s),  # slowest / fastest run of either side
        "fit_loop_only_s": loop_s,
        "fit_loop_only_us_per_step": loop_s / steps * 1e6,
        "ratio_implied_by_loop_overhead": 1.0 + loop_s / min(bare_s),
        "fit_images_per_s": steps * bs / fit_med,
        "bare_images_per_s": steps * bs / bare_med,
        "max_param_diff": diff,
        "target_ratio": TARGET_RATIO,
        "verdict": "ok" if ratio <= TARGET_RATIO else "OVER",
    }


def _gpu_compare(steps: int, repeats: int) -> dict:
    try:
        return compare(GPU_CASE, steps, repeats)
    except torch.cuda.OutOfMemoryError:
        pass  # retry below, once the exception (and the tensors its traceback holds) is gone
    gc.collect()
    torch.cuda.empty_cache()
    return compare(GPU_CASE, steps, repeats, batch_size=64)


# ------------------------------------------------------------------------------------------------ report, main
def machine() -> dict:
    cpu_model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    cuda = torch.cuda.is_available()
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "platform": platform.platform(),
    }


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'name':<24} {'device':<6} {'steps':>5} {'fit s':>7} {'bare s':>7} {'ratio':>6} {'images/s':>9} "
        f"{'verdict':<7} | {'min ratio':>9} {'loop us/step':>12}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['label']:<24} {r['device']:<6} {r['steps']:>5} {r['fit_s_median']:>7.3f} {r['bare_s_median']:>7.3f} "
            f"{r['ratio']:>6.3f} {r['fit_images_per_s']:>9.1f} {r['verdict']:<7} | {r['ratio_of_min']:>9.3f} "
            f"{r['fit_loop_only_us_per_step']:>12.1f}"
        )
    return "\n".join(lines)


def main(args) -> int:
    steps, repeats = int(args.steps), int(args.repeats)
    if steps < 1 or repeats < 1:
        raise ValueError("--steps and --repeats must be >= 1")
    load_before = _load()
    rows = []
    if not args.gpu_only:
        rows.append(compare(CPU_CASE, steps, repeats))
    gpu = torch.cuda.is_available() and not getattr(args, "cpu_only", False)
    if gpu:
        rows.append(_gpu_compare(steps, repeats))
    elif args.gpu_only:
        print("bench: --gpu-only but no CUDA device is visible; nothing measured")
    load_after = _load()
    mach = machine()
    print(
        f"machine: {mach['cpu_model']}, {mach['cpu_count']} CPUs, {mach['torch_threads']} torch threads"
        + (f", GPU {mach['gpu']}" if mach["gpu"] else "")
    )
    print(f"load average (1/5/15 min): before {load_before}, after {load_after}")
    print(
        f"ratio = fit s / bare s, median of {repeats} alternating pair(s) (fit s, bare s: medians); target <= "
        f"{TARGET_RATIO}; min ratio = best fit / best bare; loop us/step = fit() with a no-op train_step"
    )
    if rows:
        print(format_table(rows))
    for r in rows:
        if r["spread"] > NOISY_SPREAD:
            print(
                f"note: {r['label']}: runs of the same work varied x{r['spread']:.1f} (machine busy?); the ratio is "
                f"unreliable here: loop us/step implies {r['ratio_implied_by_loop_overhead']:.3f}"
            )
    report = {
        "schema": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "target_ratio": TARGET_RATIO,
        "steps": steps,
        "repeats": repeats,
        "machine": mach,
        "load_average": {"before": load_before, "after": load_after},
        "provenance": provenance("cuda" if gpu else "cpu"),
        "benchmarks": rows,
    }
    atomic_write_json(Path(args.out), report)
    print(f"wrote {args.out}")
    return 0


__all__ = ["CPU_CASE", "GPU_CASE", "Case", "compare", "format_table", "machine", "main"]
