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
- **peak memory of a training step** (``peak_step_mb``): :mod:`transferlab.perf.memory` (CUDA in this process; the
  CPU in a fresh process, one per call, which measures several rows one after another).

``measure_cost`` trains the method for a few steps; its parameters, buffers and train/eval mode are restored
afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from transferlab.config import RunConfig
from transferlab.methods import Method
from transferlab.perf.common import WARMUP_STEPS, timed
from transferlab.perf.memory import Batch, default_optimizer, step_peak_memory
from transferlab.train import autocast_dtype, channels_last


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


# ------------------------------------------------------------------------------------------------- the table
def measure_cost(
    method: Method,
    example_batch: Batch,
    run: RunConfig | None = None,
    *,
    warmup: int = WARMUP_STEPS,
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
        out.update(step_peak_memory([([method], example_batch, run)])[0])
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


def cost_table(rows: Mapping[str, dict | tuple] | Iterable[dict], **measure_kwargs):
    """A DataFrame, one row per labelled measurement, in readable units (M parameters, MMACs per image, images/s, MB).

    ``rows``: label → a :func:`measure_cost` dict, or label → ``(method, example_batch[, run])`` to measure now
    (``measure_kwargs`` go to measure_cost); or an iterable of measure_cost dicts (labelled by their method).
    """
    import pandas as pd

    items = rows.items() if isinstance(rows, Mapping) else ((d["method"], d) for d in rows)
    table = []
    for label, item in items:
        measured = item if isinstance(item, dict) else measure_cost(*item, **measure_kwargs)
        row = {"case": label, "device": measured["device"], "batch": measured["batch_size"]}
        for key, (col, scale) in COLUMNS.items():
            v = measured.get(key)
            row[col] = None if v is None else v * scale
        table.append(row)
    return pd.DataFrame(table).set_index("case")


__all__ = [
    "COLUMNS",
    "cost_table",
    "count_macs",
    "count_params",
    "inference_model",
    "measure_cost",
    "params_used_by",
]
