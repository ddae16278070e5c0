"""``transferlab bench --suite methods``: the cost of one training step of a method relative to another, measured.

Each case pits a subject (``arms[0]``) against baselines on the SAME synthetic batches in one process, with fit()'s
optimizer and precision for :func:`transferlab.perf.common.bench_config` (without Nesterov: L2T-ww's look-ahead
replays plain momentum SGD, and all arms share one optimizer). Every arm warms up, then ``repeats`` runs of ``steps``
steps alternate the arms' order; ``t ratio`` = median over repeats of subject time / arm time (> 1: subject slower).
``peak MB``: :func:`transferlab.perf.memory.step_peak_memory` (CUDA max_memory_allocated; CPU: the RSS high-water
mark in a fresh process); ``mem ratio`` = subject / arm. An ensemble arm is K separately built models, each stepped
on every batch (not the ``ensemble`` method).

Cases (``mini_cases``: CPU, 1×28×28; ``gpu_cases``: CUDA, random weights — a step's time does not depend on them):
``l2t``: L2T-ww vs FM (same, no meta-step), fine-tuning the source net, scratch of the target net (mini: hub
``clusters`` ResNet-8 → ``mini_vgg``, b32; GPU: ``l2t_resnet32`` → ``vgg9_bn``, 32×32, b128). ``zoo``: Zoo-Tuning
vs one fine-tuning vs K fine-tuning steps (mini hub K=5, b32 and b64; GPU: 5 ResNet-50s, 224, b32). ``collapse``: lite
Zoo-Tuning inference after ``collapse()`` vs a plain backbone of the architecture (and vs not collapsed), with
``max_abs_logit_diff`` = max |collapsed − predict| logits in fp32. ``pathway``: Hub-Pathway k=2 vs ``ensemble`` over
all K, target t ratio <= 0.6.
"""

from __future__ import annotations

import gc
import time

import torch

from transferlab.config import ConfigError
from transferlab.experiment import setup_runtime
from transferlab.perf.arms import build_arm, gpu_l2t_arms, hub_arms, l2t_arms, register_random_hub, stepper
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
    summary,
    synthetic_batches,
    timed,
    write_report,
)
from transferlab.perf.cost import count_macs, count_params
from transferlab.perf.memory import step_peak_memory
from transferlab.train import autocast_dtype, channels_last, make_optimizer


# ------------------------------------------------------------------------------------------------------ cases
def hub_cases(device: str, hub: str, shape: tuple, batch_sizes, num_classes: int, tag: str) -> list[Case]:
    """zoo (per batch size), collapse and pathway cases for one hub."""
    arms = hub_arms(hub)
    return [*(Case(f"zoo_{tag}_b{b}", device, shape, b, num_classes, arms["zoo"]) for b in batch_sizes),
            Case(f"collapse_{tag}", device, shape, batch_sizes[-1], num_classes, arms["collapse"], "collapse"),
            *(Case(f"pathway_{tag}_b{b}", device, shape, b, num_classes, arms["pathway"], target=0.6)
              for b in batch_sizes)]  # fmt: skip


def mini_cases(hub: str = "mini", l2t_source: str = "mini:clusters", batch_sizes=(32, 128), num_classes=10):
    """The CPU cases on 1×28×28 images (tests pass a tiny hub and source)."""
    l2t = {"backbone": "mini_vgg", "method_params": {"source": l2t_source}}
    arms = l2t_arms("mini_vgg", l2t, {"backbone": "mini_resnet", "pretrained": l2t_source})
    l2t_case = Case("l2t_mini", "cpu", (1, 28, 28), 32, num_classes, arms)
    return [l2t_case, *hub_cases("cpu", hub, (1, 28, 28), batch_sizes, num_classes, "mini")]


def gpu_cases() -> list[Case]:
    l2t_case = Case("l2t_32", "cuda", (3, 32, 32), 128, 100, gpu_l2t_arms())
    return [l2t_case, *hub_cases("cuda", register_random_hub(), (3, 224, 224), (32,), 100, "r50")]


# ---------------------------------------------------------------------------------------------------- running
def time_arms(case: Case, labels, fns, steps: int, repeats: int, device) -> list[dict]:
    for fn in fns:
        timed(fn, WARMUP_STEPS, device)
    times = alternate([lambda fn=fn: timed(fn, steps, device) for fn in fns], repeats)
    return [
        {"label": label, **summary(t, times[0], steps, case.batch_size)} for label, t in zip(labels, times)
    ]


def run_train(case: Case, device, batches, steps: int, repeats: int, memory: bool) -> dict:
    built = [build_arm(case, a, device) for a in case.arms]
    fns = [stepper(ms, [make_optimizer(m, run) for m in ms], batches) for ms, run in built]
    rows = time_arms(case, [a.label for a in case.arms], fns, steps, repeats, device)
    del fns
    x, y = batches[0]
    for row, arm, (ms, run) in zip(rows, case.arms, built, strict=True):
        row.update(method=arm.method, models=len(ms), params=sum(count_params(m) for m in ms))
        with torch.no_grad():
            row["macs_train_forward_per_image"] = sum(count_macs(m.loss, x, y) for m in ms) / len(x)
        gc.collect()
        row.update(step_peak_memory([(ms, (x, y), run)])[0] if memory else {"peak_step_mb": None})
    for row in rows:
        a, b = rows[0]["peak_step_mb"], row["peak_step_mb"]
        row["mem_ratio"] = a / b if a and b else None
    return {"arms": rows}


def _collapsed(case: Case, arm: Arm, device, batches):
    """A lite model trained for the warm-up steps (its EMA gates leave their zero start), in eval mode, and its
    collapse(); with the run config."""
    (lite,), run = build_arm(case, arm, device)
    opt = make_optimizer(lite, run)
    for x, y in batches[:WARMUP_STEPS]:
        lite.train_step(x, y, opt)
    lite.eval()
    collapsed = lite.collapse()
    channels_last(collapsed)
    return lite, collapsed, run


def run_collapse(case: Case, device, batches, steps: int, repeats: int) -> dict:
    lite, collapsed, run = _collapsed(case, case.arms[0], device, batches)
    _, every, _ = _collapsed(case, case.arms[2], device, batches)  # lite_downsample: every conv collapsed
    (plain,), _ = build_arm(case, case.arms[1], device)
    plain.eval()
    x, amp = batches[0][0], autocast_dtype(run, device)
    with torch.no_grad():  # the agreement check in fp32, whatever the timing precision
        diff = float((collapsed(x).float() - lite.predict(x).float()).abs().max())

    def infer(fn):
        def call():
            with torch.no_grad(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                fn(x)

        return call

    labels = [a.label for a in case.arms] + ["lite (not collapsed)"]
    models = (collapsed, plain, every, lite)
    fns = [infer(collapsed), infer(plain.predict), infer(every), infer(lite.predict)]
    rows = time_arms(case, labels, fns, steps, repeats, device)
    for row, model in zip(rows, models, strict=True):
        row.update(params=count_params(model), peak_step_mb=None, mem_ratio=None)
    return {"arms": rows, "max_abs_logit_diff": diff}


def run_case(case: Case, steps: int, repeats: int, memory: bool) -> dict:
    device = setup_runtime(bench_config(case))
    batches = synthetic_batches(case, device)
    out = {"name": case.name, "kind": case.kind, "device": str(device), "batch_size": case.batch_size,
           "image_shape": list(case.shape), "steps": steps, "repeats": repeats, "warmup_steps": WARMUP_STEPS,
           "precision": "bf16 autocast" if device.type == "cuda" else "fp32", "target_t_ratio": case.target}  # fmt: skip
    if case.kind == "collapse":
        out.update(run_collapse(case, device, batches, steps, repeats))
    else:
        out.update(run_train(case, device, batches, steps, repeats, memory))
    if case.target is not None:
        out["verdict"] = "ok" if out["arms"][-1]["t_ratio"] <= case.target else "OVER"
    return out


COLUMNS = [Column("case", "case", width=18), Column("label", "arm", width=26), Column("ms", "ms/step", ".2f"),
           Column("images_per_s", "img/s", ".1f"), Column("peak_step_mb", "peak MB", ".1f", 8),
           Column(lambda r: r.get("macs_train_forward_per_image") and r["macs_train_forward_per_image"] / 1e6,
                  "MMAC/img", ".2f"),
           Column("t_ratio", "t ratio", ".3f", 7), Column("mem_ratio", "mem ratio", ".2f"),
           Column("t_ratio_of_min", "| min ratio", ".3f", 11), Column("spread", "spread", ".2f", 6)]  # fmt: skip


def main(args, cases: list[Case] | None = None) -> int:
    """Run the cases named by ``args.cases`` (comma list or "all"); ``cases`` replaces the default list (tests)."""
    steps, repeats = int(args.steps), int(args.repeats)
    if steps < 1 or repeats < 1:
        raise ConfigError("--steps and --repeats must be >= 1")
    gpu = torch.cuda.is_available() and not getattr(args, "cpu_only", False)
    if cases is None:
        cases = ([] if getattr(args, "gpu_only", False) else mini_cases()) + (gpu_cases() if gpu else [])
    names = [c.name for c in cases]
    pick = [n for n in (getattr(args, "cases", None) or "all").split(",") if n and n != "all"] or names
    if unknown := sorted(set(pick) - set(names)):
        raise ConfigError(f"unknown bench case(s) {unknown}; cases: {', '.join(names)}")
    load_before, results, skipped = load_average(), [], []
    for case in (c for c in cases if c.name in pick):
        t0, row = time.perf_counter(), None
        try:
            row = run_case(case, steps, repeats, getattr(args, "memory", True))
        except Exception as err:  # noqa: BLE001 (one failing case, e.g. out of memory, must not lose the others)
            skipped.append({"case": case.name, "reason": f"failed: {type(err).__name__}: {err}"})
            print(f"note: {case.name} failed: {type(err).__name__}: {err}")
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if row is not None:
            results.append({**row, "wall_s": time.perf_counter() - t0})
    legend = (f"t ratio = subject (first arm) time / arm time, median of {repeats} alternating repeat(s) of {steps} "
              "step(s); mem ratio = subject / arm peak step memory; MMAC/img: training forward; min ratio = best "
              "subject / best arm time; spread = slowest / fastest run of the arm")  # fmt: skip
    lines = [{"case": r["name"] if i == 0 else "", **a} for r in results for i, a in enumerate(r["arms"])]
    body = {"steps": steps, "repeats": repeats, "benchmarks": results, "skipped": skipped}
    write_report(args.out, "methods", load_before, body, legend, format_table(lines, COLUMNS) if lines else "",
                 "cuda" if gpu else "cpu")  # fmt: skip
    for r in results:
        if noisy := [a["label"] for a in r["arms"] if a["spread"] > NOISY_SPREAD]:
            print(f"note: {r['name']}: runs of {', '.join(noisy)} varied > x{NOISY_SPREAD} (machine busy?): "
                  "trust the min ratio more than the median")  # fmt: skip
        if "max_abs_logit_diff" in r:
            print(f"note: {r['name']}: max |collapsed - predict| logits = {r['max_abs_logit_diff']:.2e}")
        if r["target_t_ratio"] is not None:
            print(f"note: {r['name']}: t ratio {r['arms'][-1]['t_ratio']:.3f} (target <= {r['target_t_ratio']}): "
                  f"{r['verdict']}")  # fmt: skip
    return 0


__all__ = ["gpu_cases", "hub_cases", "main", "mini_cases", "run_case"]
