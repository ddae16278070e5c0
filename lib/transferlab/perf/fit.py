"""``transferlab bench``: the overhead of :func:`transferlab.train.fit` against a bare PyTorch loop. Target: ≤ 1.05.

What is compared. Both sides train the *same* network from the *same* initial weights (``scratch`` built under one
seed) on the *same* batches in the same order, with the optimiser, precision and channels_last of
:func:`transferlab.perf.common.bench_config`, for the same number of steps. The bare loop is the textbook
``zero_grad → forward → cross_entropy → backward → step``; ``fit()`` adds its per-step work (the lr of every group
from the schedule, the training stream's bookkeeping, the on-device sums of the loss terms, the progress bar). The
final weights of the first timed pair are compared (``max_param_diff``: 0 on CPU, where kernels are deterministic):
both sides really did the same work.

Why pre-generated batches, not a live ``TrainStream``: augmentation costs as much as a step of the mini ResNet on two
cores, so a live stream would add the same constant to both sides and push the ratio towards 1, hiding the overhead
measured here (``--suite data`` measures the input path itself). ``fit()`` still reads them through its own,
unmodified ``TrainStream``: a replay dataset hands the stream, for each step's batch of indices, the pre-generated
batch of that step (a view, no copy), with an identity preset, so fit's data path costs what its bookkeeping costs.

Timing: ``fit`` gets ``eval_every = steps`` and no output folder; ``Result.cost["train_time_s"]`` stops before its
one evaluation. ``WARMUP_STEPS`` steps of a warm-up pair, then ``repeats`` alternating pairs; the ratio is the median
of the per-pair ratios fit / bare. Companions robust to a busy machine: the ratio of the best times, and ``loop
us/step`` — fit() with a no-op ``train_step``, a direct measurement of the loop's own per-step cost, which
``ratio_implied_by_loop_overhead`` turns into the ratio it alone implies. Read the load average before a ratio.

Cases: ``mini_resnet`` on 1×28×28, batch 128, on the CPU (skipped with ``--gpu-only``); with CUDA, ResNet-50 on
3×224×224, batch 128 (64 if it does not fit), bf16 autocast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import statistics
import time
from dataclasses import dataclass

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
from transferlab.perf.common import (
    NOISY_SPREAD,
    WARMUP_STEPS,
    Arm,
    Case,
    Column,
    alternate,
    bench_config,
    format_table,
    load_average,
    sync,
    synthetic_batches,
    write_report,
)
from transferlab.tasks.classification import Classification
from transferlab.train import autocast_dtype, fit

TARGET_RATIO = 1.05
INIT_SEED = 1234

CPU_CASE = Case("mini_resnet", "cpu", (1, 28, 28), 128, 10, (Arm("fit", "scratch", {"backbone": "mini_resnet"}),),
                kind="fit", target=TARGET_RATIO)  # fmt: skip
GPU_CASE = Case("resnet50", "cuda", (3, 224, 224), 128, 1000, (Arm("fit", "scratch", {"backbone": "resnet50"}),),
                kind="fit", target=TARGET_RATIO)  # fmt: skip


# --------------------------------------------------------------------------------------------- the replayed data
class _StepLookup:
    """``lookup[idx]`` → the pre-generated tensor of the step whose batch of stream indices starts with ``idx[0]``."""

    def __init__(self, bank: list[torch.Tensor]):
        self.bank, self.step_of_first = bank, {}

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.bank[self.step_of_first[int(idx[0])] % len(self.bank)]


class _ReplayImages(TensorImages):
    """A ``TensorImages`` whose "images" and "targets" hand ``TrainStream`` the pre-generated batch of each step."""

    def __init__(
        self, batches: list[tuple[torch.Tensor, torch.Tensor]], n: int
    ):  # no super(): no tensor to check
        self.images = _StepLookup([x for x, _ in batches])  # type: ignore[assignment]
        self.targets = _StepLookup([y for _, y in batches])  # type: ignore[assignment]
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


def replay_source(case: Case, batches, cfg: RunConfig) -> tuple[DatasetSource, SplitIndices]:
    """A source whose training stream (one epoch of ``iterations`` batches) yields ``batches[s % len(batches)]``."""
    steps, bs = cfg.optim.iterations, cfg.data.batch_size
    n = steps * bs
    replay = _ReplayImages(batches, n)
    train = Part(replay, np.zeros(n, dtype=np.int64))
    test_x = torch.zeros((bs, *case.shape), dtype=torch.uint8)
    test = TensorImages(test_x, np.zeros(bs, dtype=np.int64)).part()  # fit's final test pass: one small batch
    classes = [str(c) for c in range(case.num_classes)]
    source = DatasetSource("bench_replay", classes, train, test, preset=REPLAY_PRESET.name)
    splits = SplitIndices(train=np.arange(n), val=np.zeros(0, dtype=np.int64), test=np.arange(bs))
    order = TrainStream(train, splits.train, REPLAY_PRESET, bs, cfg.seed, "cpu").order(
        0
    )  # what fit's stream draws
    first = {int(order[s * bs]): s for s in range(steps)}
    replay.images.step_of_first.update(first)  # type: ignore[attr-defined]
    replay.targets.step_of_first.update(first)  # type: ignore[attr-defined]
    return source, splits


# ---------------------------------------------------------------------------------------------------- the loops
def _build(cfg: RunConfig, case: Case) -> Method:
    torch.manual_seed(INIT_SEED)  # identical initial weights for fit and the bare loop
    return METHODS.get("scratch").build(cfg, Classification(case.num_classes))


def time_fit(cfg: RunConfig, case: Case, batches, loop_only: bool = False) -> tuple[float, torch.nn.Module]:
    """fit()'s own training time (evaluation excluded), its output captured; ``loop_only``: a no-op train_step."""
    source, splits = replay_source(case, batches, cfg)
    method = _build(cfg, case)
    if loop_only:
        zero = torch.zeros((), device=batches[0][0].device)
        method.train_step = lambda x, y, optimizer: {
            "loss": zero
        }  # shadows Method.train_step on this instance
    gc.collect()
    sync(batches[0][0].device)
    with contextlib.redirect_stdout(io.StringIO()):
        result = fit(method, source, splits, REPLAY_PRESET, cfg, out_dir=None)
    return float(result.cost["train_time_s"]), method.backbone


def time_bare(cfg: RunConfig, case: Case, batches) -> tuple[float, torch.nn.Module]:
    """The textbook loop on the same model, batches and optimiser."""
    o, device = cfg.optim, batches[0][0].device
    model = _build(cfg, case).backbone.to(device).to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                          nesterov=o.nesterov)  # fmt: skip
    amp = autocast_dtype(cfg, device)
    steps = [batches[s % len(batches)] for s in range(o.iterations)]
    gc.collect()
    sync(device)
    t0 = time.perf_counter()
    for x, y in steps:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - t0, model


def _max_param_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    with torch.no_grad():
        return max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def compare(case: Case, steps: int, repeats: int) -> dict:
    """A warm-up pair, then ``repeats`` alternating timed pairs of fit() and the bare loop."""
    cfg = bench_config(case, case.arms[0], steps)
    device = setup_runtime(cfg)  # threads (and cudnn.benchmark on GPU) as experiment.run sets them
    batches = synthetic_batches(case, device)
    warm = bench_config(case, case.arms[0], min(steps, WARMUP_STEPS))
    time_fit(warm, case, batches)
    time_bare(warm, case, batches)
    models: list = []

    def run(fn):
        def once() -> float:
            t, model = fn(cfg, case, batches)
            if len(models) < 2:
                models.append(model)  # the first pair's final weights
            return t

        return once

    fit_s, bare_s = alternate([run(time_fit), run(time_bare)], repeats)
    diff = _max_param_diff(*models)
    models.clear()
    loop_s = min(time_fit(cfg, case, batches, loop_only=True)[0] for _ in range(3))
    ratios = [f / b for f, b in zip(fit_s, bare_s, strict=True)]
    ratio, fit_med, bare_med = statistics.median(ratios), statistics.median(fit_s), statistics.median(bare_s)
    if device.type == "cuda":
        del batches
        torch.cuda.empty_cache()
    precision = "bf16 autocast" if autocast_dtype(cfg, device) is not None else "fp32"
    return {"name": case.name, "label": case.label, "device": str(device), "backbone": case.arms[0].params["backbone"],
            "image_shape": list(case.shape), "batch_size": case.batch_size, "precision": precision,
            "channels_last": True, "steps": steps, "repeats": repeats, "warmup_steps": warm.optim.iterations,
            "fit_s": fit_s, "bare_s": bare_s, "ratios": ratios, "fit_s_median": fit_med, "bare_s_median": bare_med,
            "ratio": ratio, "ratio_of_min": min(fit_s) / min(bare_s),
            "spread": max(fit_s + bare_s) / min(fit_s + bare_s), "fit_loop_only_s": loop_s,
            "fit_loop_only_us_per_step": loop_s / steps * 1e6, "ratio_implied_by_loop_overhead": 1 + loop_s / min(bare_s),
            "fit_images_per_s": steps * case.batch_size / fit_med, "bare_images_per_s": steps * case.batch_size / bare_med,
            "max_param_diff": diff, "target_ratio": TARGET_RATIO,
            "verdict": "ok" if ratio <= TARGET_RATIO else "OVER"}  # fmt: skip


def _gpu_compare(steps: int, repeats: int) -> dict:
    try:
        return compare(GPU_CASE, steps, repeats)
    except torch.cuda.OutOfMemoryError:
        pass  # retry below, once the exception (and the tensors its traceback holds) is gone
    gc.collect()
    torch.cuda.empty_cache()
    return compare(dataclasses.replace(GPU_CASE, batch_size=64), steps, repeats)


COLUMNS = [Column("label", "name", width=24), Column("device", "device", width=6), Column("steps", "steps", "d", 5),
           Column("fit_s_median", "fit s", ".3f", 7), Column("bare_s_median", "bare s", ".3f", 7),
           Column("ratio", "ratio", ".3f", 6), Column("fit_images_per_s", "images/s", ".1f"),
           Column("verdict", "verdict", width=7), Column("ratio_of_min", "| min ratio", ".3f", 11),
           Column("fit_loop_only_us_per_step", "loop us/step", ".1f", 12)]  # fmt: skip


def main(args) -> int:
    steps, repeats = int(args.steps), int(args.repeats)
    if steps < 1 or repeats < 1:
        raise ValueError("--steps and --repeats must be >= 1")
    load_before, rows = load_average(), []
    if not args.gpu_only:
        rows.append(compare(CPU_CASE, steps, repeats))
    gpu = torch.cuda.is_available() and not getattr(args, "cpu_only", False)
    if gpu:
        rows.append(_gpu_compare(steps, repeats))
    elif args.gpu_only:
        print("bench: --gpu-only but no CUDA device is visible; nothing measured")
    legend = (f"ratio = fit s / bare s, median of {repeats} alternating pair(s) (fit s, bare s: medians); target <= "
              f"{TARGET_RATIO}; min ratio = best fit / best bare; loop us/step = fit() with a no-op train_step")  # fmt: skip
    body = {"target_ratio": TARGET_RATIO, "steps": steps, "repeats": repeats, "benchmarks": rows}
    write_report(args.out, "fit", load_before, body, legend, format_table(rows, COLUMNS) if rows else "",
                 "cuda" if gpu else "cpu")  # fmt: skip
    for r in rows:
        if r["spread"] > NOISY_SPREAD:
            print(f"note: {r['label']}: runs of the same work varied x{r['spread']:.1f} (machine busy?); the ratio is "
                  f"unreliable here: loop us/step implies {r['ratio_implied_by_loop_overhead']:.3f}")  # fmt: skip
    return 0


__all__ = ["CPU_CASE", "GPU_CASE", "REPLAY_PRESET", "TARGET_RATIO", "compare", "main", "replay_source"]
