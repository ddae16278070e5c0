"""Measured cost of a method: parameters, MACs, images/s and the peak memory of a training step.

For the cost tables of Zoo-Tuning and Hub-Pathway (parameters, MACs, throughput, memory at training and at
inference). :func:`measure_cost` measures one built method on one example batch; :func:`cost_table` lays several
out as a DataFrame. Every number is measured on this machine, never taken from a formula or a paper.

What is measured, and how:

- **parameters**: ``params_total`` (every parameter of the method: frozen source networks and meta-networks
  included), ``params_trainable`` (``requires_grad``), ``params_inference`` (what ``predict`` needs). Rule for
  inference: if the method has ``collapse()`` (lite Zoo-Tuning), the parameters of the collapsed model — what one
  would deploy; otherwise the parameters that ``predict(x)``'s output depends on, found by autograd (every
  parameter temporarily requires grad, one forward, ``torch.autograd.grad(..., allow_unused=True)``), plus the
  parameters of every module whose forward runs (frozen parts run under ``no_grad``); a method whose prediction
  routes inputs declares ``inference_parameters()`` (Hub-Pathway: all K models, any of which an input may use, not
  just the ones the example batch used). So L2T-ww's
  frozen source and meta-networks, a distilled student's teachers, or a kept source head are not counted.
- **MACs per image** with ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2). It counts the
  matrix-multiply family (mm, addmm, bmm, baddbmm), convolutions and attention; einsum is dispatched to bmm/mm,
  so Zoo-Tuning's kernel aggregation einsum and its per-sample grouped conv (the conv formula uses the
  per-group kernel shape) are counted. Element-wise work (BN, activations, pooling, the optimizer) is not.
  ``macs_inference`` is one inference forward (the collapsed model when there is one), ``macs_train_forward``
  one ``method.loss(x, y)`` in train mode (L2T-ww: source + target + matching), ``macs_train_step`` one whole
  ``train_step`` (forward, backward, and L2T-ww's unrolled meta-step), all divided by the batch size — so
  per-batch work (Zoo-Tuning's alignment A_k·W_k of every kernel) makes MACs/img depend on the batch size.
- **images/s**: ``train_step`` on pre-generated batches (the example batch, already on its device), after
  ``warmup`` steps, ``repeats`` runs of ``steps`` steps, the fastest run (timeit's rule: on a shared machine other
  processes only ever add time; CUDA synchronised on both ends);
  inference: the same for the inference forward under ``no_grad`` in eval mode.
- **peak memory of a training step** (``peak_step_mb``): the memory a step needs on top of the built model and its
  inputs — activations kept for backward, gradients, the optimizer's state (a fresh optimizer, so its first step
  allocates it), temporaries, workspaces. CUDA: ``memory_allocated()`` after building is the baseline, then
  ``reset_peak_memory_stats()``, ``steps`` steps, ``max_memory_allocated()`` − baseline (``peak_total_mb``: without
  the subtraction). CPU: process-wide ``ru_maxrss`` is the high-water mark of everything the process ever did, so
  it is not per case; and the profiler's memory events see only tensors from the c10 allocator (not oneDNN
  scratch or allocator overhead). So the CPU step runs in a **fresh process** (``python -m transferlab.perf.cost``): the method
  (pickled with ``torch.save``) is loaded there, one no-grad forward initialises thread pools and libraries, freed
  heap is returned to the OS (glibc ``malloc_trim``), the RSS (``VmRSS``) is the baseline, the kernel's
  high-water mark is reset to it (``/proc/self/clear_refs`` ← 5, Linux ≥ 4.0), ``steps`` steps run, and
  ``VmHWM`` − baseline is the step's peak: real memory of everything the step touched, per case. Costs 5–10 s of
  interpreter start-up per measurement; ``None`` with a reason where not possible (not Linux, pickling fails).
  CPU peaks (resident pages, in 4 KiB units, ~±2 MB run to run) and CUDA peaks (tensor bytes) are not comparable
  with each other: compare methods on one device.

``measure_cost`` trains the method for a few steps; its parameters, buffers and train/eval mode are restored
afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from transferlab.config import RunConfig
from transferlab.methods import Method
from transferlab.train import autocast_dtype, channels_last, make_optimizer

MB = 2**20
Batch = tuple[torch.Tensor, torch.Tensor]


# ------------------------------------------------------------------------------------------------- counting
def count_params(module: nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def count_macs(fn: Callable, *args) -> int:
    """Multiply-accumulates of ``fn(*args)`` (FlopCounterMode's FLOPs / 2: matmul / conv / einsum family only)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return counter.get_total_flops() // 2


def inference_model(method: Method) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module | None, str]:
    """(forward, module or None, rule): the collapsed model if the method has ``collapse()``, else ``predict``."""
    model = method.inference_model()
    if model is not None:
        model = model.eval()
        channels_last(model)
        return model, model, "inference_model()"
    return method.predict, None, "predict()"


def params_used_by(fn: Callable[[torch.Tensor], torch.Tensor], module: nn.Module, x: torch.Tensor) -> int:
    """Parameters of ``module`` that ``fn(x)`` uses: those its output depends on (autograd reachability) and those
    of every submodule whose forward runs (the second catches frozen parts run under ``no_grad``, e.g. the hub
    bodies of ``feature_concat``)."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    ran: set[int] = set()
    hooks = [m.register_forward_hook(lambda m, i, o: ran.add(id(m))) for m in module.modules()]
    try:
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            out = fn(x)
            grads = torch.autograd.grad(out.float().sum(), params, allow_unused=True)
    finally:
        for h in hooks:
            h.remove()
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)
    used = {id(p) for p, g in zip(params, grads, strict=True) if g is not None}
    used |= {id(p) for m in module.modules() if id(m) in ran for p in m.parameters(recurse=False)}
    return sum(p.numel() for p in params if id(p) in used)


# -------------------------------------------------------------------------------------------------- timing
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


def default_optimizer(method: Method, run: RunConfig | None) -> torch.optim.Optimizer:
    """fit()'s optimizer for ``run``; without a run, SGD (lr 0.01, momentum 0.9) on the trainable parameters."""
    if run is not None:
        return make_optimizer(method, run)
    return torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.01, momentum=0.9)


# -------------------------------------------------------------------------------------------------- memory
def _proc_status_kb(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M).group(1))


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _child_peak(path: str, steps: int) -> dict:
    """In a fresh process: load the methods, then VmHWM − VmRSS around ``steps`` training steps (module doc)."""
    blob = torch.load(path, weights_only=False)  # our own file, written just before by the parent
    torch.set_num_threads(blob["threads"])
    methods, (x, y), run = blob["methods"], blob["batch"], blob["run"]
    with torch.no_grad():  # thread pools, oneDNN initialisation: not the step's memory
        for m in methods:
            m.eval()
            m.predict(x)
    optimizers = [default_optimizer(m, run) for m in methods]
    for m in methods:
        m.train()
    gc.collect()
    _malloc_trim()
    base = _proc_status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the RSS high-water mark to the current RSS
    for _ in range(steps):
        for m, opt in zip(methods, optimizers, strict=True):
            m.train_step(x, y, opt)
    peak = _proc_status_kb("VmHWM")
    return {"peak_step_mb": (peak - base) / 1024, "baseline_mb": base / 1024}


def step_peak_memory(
    methods: list[Method], batch: Batch, run: RunConfig | None = None, steps: int = 2
) -> dict:
    """Peak extra memory of ``steps`` training steps of ``methods`` (an ensemble: each stepped on the batch), each
    with a fresh optimizer; CUDA in this process, CPU in a fresh one (module doc). Returns ``peak_step_mb``,
    ``memory_how`` and, where known, ``peak_total_mb`` / ``baseline_mb``; ``peak_step_mb`` None with ``memory_note``
    when it cannot be measured."""
    x = batch[0]
    if x.device.type == "cuda":
        gc.collect()
        sync(x.device)
        base = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        optimizers = [default_optimizer(m, run) for m in methods]
        for _ in range(steps):
            for m, opt in zip(methods, optimizers, strict=True):
                m.train()
                m.train_step(*batch, opt)
        sync(x.device)
        peak = torch.cuda.max_memory_allocated(x.device)
        del optimizers
        return {"peak_step_mb": (peak - base) / MB, "peak_total_mb": peak / MB, "baseline_mb": base / MB,
                "memory_how": "cuda max_memory_allocated - memory_allocated before the steps"}  # fmt: skip
    how = "cpu: fresh process, VmHWM - VmRSS before the steps"
    if not Path("/proc/self/clear_refs").exists():
        return {"peak_step_mb": None, "memory_how": how, "memory_note": "needs Linux /proc"}
    with tempfile.TemporaryDirectory(prefix="transferlab-cost-") as tmp:
        path = os.path.join(tmp, "methods.pt")
        try:
            torch.save(
                {"methods": methods, "batch": batch, "run": run, "threads": torch.get_num_threads()}, path
            )
        except Exception as err:  # noqa: BLE001 (an unpicklable attribute: report it, do not fail the table)
            return {"peak_step_mb": None, "memory_how": how, "memory_note": f"cannot pickle: {err}"}
        # a new interpreter (not multiprocessing: its spawn re-runs the caller's main script, e.g. a notebook's)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        cmd = [sys.executable, "-m", "transferlab.perf.cost", path, str(steps)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return {"peak_step_mb": None, "memory_how": how, "memory_note": done.stderr.strip()[-500:]}
        return {**json.loads(done.stdout.strip().splitlines()[-1]), "memory_how": how}


# ------------------------------------------------------------------------------------------------- the table
def measure_cost(
    method: Method,
    example_batch: Batch,
    run: RunConfig | None = None,
    *,
    warmup: int = 2,
    steps: int = 5,
    repeats: int = 3,
    memory: bool = True,
) -> dict:
    """Measured cost of ``method`` on batches like ``example_batch`` (x [B, C, H, W], y [B]) on x's device.

    The method is moved to that device in channels_last (as fit() does); ``run`` gives fit()'s optimizer and
    precision (bf16 autocast on CUDA with ``precision="auto"``), else SGD and fp32. See the module doc for what each
    key means. Returns a flat dict.
    """
    x, y = example_batch
    device, bs = x.device, x.shape[0]
    method.to(device)
    channels_last(method)
    if run is not None:
        method.set_precision(autocast_dtype(run, device))
    was_training = method.training
    snapshot = {k: v.detach().clone() for k, v in method.state_dict().items()}
    out: dict = {
        "method": method.name,
        "device": str(device),
        "batch_size": bs,
        "image_shape": list(x.shape[1:]),
    }
    out["precision"] = str(method.autocast_dtype or "fp32").replace("torch.", "")
    out["params_total"] = count_params(method)
    out["params_trainable"] = count_params(method, trainable=True)

    method.eval()
    forward, module, rule = inference_model(method)
    out["inference_model"] = rule
    held = method.inference_parameters()
    if held is not None:  # what any input may need (Hub-Pathway: all K)
        out["inference_model"] = "inference_parameters()"
        out["params_inference"] = sum(p.numel() for p in held)
    else:
        out["params_inference"] = (
            count_params(module) if module is not None else params_used_by(forward, method, x)
        )
    with torch.no_grad(), method.autocast():
        out["macs_inference_per_image"] = count_macs(forward, x) / bs
        method.train()
        out["macs_train_forward_per_image"] = count_macs(method.loss, x, y) / bs

    optimizer = default_optimizer(method, run)
    method.train()
    out["macs_train_step_per_image"] = count_macs(method.train_step, x, y, optimizer) / bs
    step = functools.partial(method.train_step, x, y, optimizer)
    timed(step, warmup, device)
    train_s = [timed(step, steps, device) for _ in range(repeats)]
    out["train_step_ms"] = (
        min(train_s) / steps * 1e3
    )  # the least disturbed run: other processes only add time
    out["train_images_per_s"] = steps * bs / min(train_s)
    del step, optimizer

    method.eval()
    if rule == "collapse()":  # the EMA gates have moved during the training steps: collapse again
        forward, module, _ = inference_model(method)

    def infer():
        with torch.no_grad(), method.autocast():
            forward(x)

    timed(infer, warmup, device)
    infer_s = [timed(infer, steps, device) for _ in range(repeats)]
    out["inference_images_per_s"] = steps * bs / min(infer_s)
    method.load_state_dict(snapshot)
    if memory:
        out.update(step_peak_memory([method], example_batch, run))
        method.load_state_dict(snapshot)
    out.update(warmup=warmup, steps=steps, repeats=repeats)
    method.train(was_training)
    return out


COLUMNS = {  # cost_table: measure_cost key → column, scale
    "params_total": ("params (M)", 1e-6),
    "params_trainable": ("trainable (M)", 1e-6),
    "params_inference": ("inference params (M)", 1e-6),
    "macs_train_forward_per_image": ("train fwd MMACs/img", 1e-6),
    "macs_inference_per_image": ("inference MMACs/img", 1e-6),
    "train_images_per_s": ("train img/s", 1.0),
    "inference_images_per_s": ("inference img/s", 1.0),
    "peak_step_mb": ("peak step MB", 1.0),
}


def cost_table(cases: Mapping[str, dict | tuple] | Iterable[dict], **measure_kwargs):
    """A DataFrame, one row per case, in readable units (M parameters, MMACs per image, images/s, MB).

    ``cases``: label → a :func:`measure_cost` dict, or label → ``(method, example_batch[, run])`` to measure now
    (``measure_kwargs`` go to measure_cost); or an iterable of measure_cost dicts (labelled by their method).
    """
    import pandas as pd

    items = cases.items() if isinstance(cases, Mapping) else ((d["method"], d) for d in cases)
    rows = []
    for label, case in items:
        measured = case if isinstance(case, dict) else measure_cost(*case, **measure_kwargs)
        row = {"case": label, "device": measured["device"], "batch": measured["batch_size"]}
        for key, (col, scale) in COLUMNS.items():
            v = measured.get(key)
            row[col] = None if v is None else v * scale
        rows.append(row)
    return pd.DataFrame(rows).set_index("case")


if (
    __name__ == "__main__"
):  # the fresh process of step_peak_memory: python -m transferlab.perf.cost FILE STEPS
    print(json.dumps(_child_peak(sys.argv[1], int(sys.argv[2]))))

__all__ = ["cost_table", "count_macs", "count_params", "inference_model", "measure_cost", "step_peak_memory"]
