"""``fit()``: the only supervised training loop. Iteration-based, as the official Co-Tuning / Zoo-Tuning code is.

Per step: set each group's lr from the pure schedule, take one ``method.train_step``. Every ``eval_every`` steps (and
at the last): evaluate on **validation** with the task's metric, keep the best-validation weights (by the metric's
direction: accuracy up, NME down), append to the learning curve, save a resumable checkpoint. At the end: the test
metric of the best-validation weights (the number tables report) and of the last weights. The test split is never
looked at before that, so model selection cannot leak test information.

On GPU: bf16 autocast (no GradScaler needed) and channels_last; on CPU: channels_last too (≈2× faster for the
mini ResNet here) and fp32. A non-finite loss stops the run with a clear error instead of training on NaNs.
Optimisers use torch's ``foreach`` implementation on every device (identical updates, fewer kernel launches).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from transferlab import checkpoint, env
from transferlab.config import ConfigError, RunConfig
from transferlab.data.pipeline import EvalBatches, TrainStream
from transferlab.data.splits import SplitIndices
from transferlab.data.transforms import Preset
from transferlab.errors import TransferlabError
from transferlab.methods.base import Method
from transferlab.results import Result, atomic_torch_save, provenance
from transferlab.schedules import lr_factor
from transferlab.tasks import Task

CHECKPOINT = checkpoint.CHECKPOINT


def channels_last(module: torch.nn.Module) -> None:
    """Store the 4-D parameters and buffers channels_last (``Module.to(memory_format=...)`` would reject the 5-D
    stacked expert kernels of Zoo-Tuning)."""
    for t in [*module.parameters(), *module.buffers()]:
        if t.dim() == 4:
            t.data = t.data.to(memory_format=torch.channels_last)  # .to re-strides 1×1 kernels too


class NonFiniteLossError(TransferlabError, FloatingPointError):
    """The training loss became NaN or infinite; the message names the steps and the learning rate to lower."""


def compile_step(method: Method, mode: str) -> None:
    """``RunConfig.compile``: ``torch.compile`` the method's forward and loss (``method.loss``, which the standard
    ``train_step`` calls; backward through AOTAutograd; the optimizer step stays eager), for the fixed-shape step
    where kernel launches bound it (batch 48 on a large GPU). "reduce-overhead" adds CUDA graphs. Off by default:
    not yet measured here (``scripts/gpu_bench.sh`` measures it). Methods with data-dependent shapes (Hub-Pathway's
    dispatch) or their own ``train_step`` (L2T-ww's meta step runs eager) gain little."""
    if mode == "off":
        return
    # an instance attribute that shadows Method.loss; fit() removes it when training ends
    method.loss = torch.compile(method.loss, mode=mode, dynamic=False)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but no CUDA device is visible; use device='cpu' or 'auto'")
    return torch.device(name)


def autocast_dtype(run: RunConfig, device: torch.device) -> torch.dtype | None:
    if run.precision == "bf16" or (run.precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def make_optimizer(method: Method, run: RunConfig) -> torch.optim.Optimizer:
    o = run.optim
    groups = method.param_groups(o)
    for g in groups:
        g["lr"] = o.lr * g["lr_mult"]
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                               nesterov=o.nesterov, foreach=True)  # fmt: skip
    return torch.optim.Adam(
        groups, lr=o.lr, betas=(o.momentum, 0.999), weight_decay=o.weight_decay, foreach=True
    )


class Progress:
    """Text progress for papermill/logs (a line per evaluation, tqdm at a long interval), tqdm.auto interactively."""

    def __init__(self, total: int, initial: int, desc: str):
        mode = env.choice("TRANSFERLAB_PROGRESS", "auto")
        self.bar = None
        if mode == "off":
            return
        if mode == "text" or not sys.stdout.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=initial, desc=desc, mininterval=15, file=sys.stdout, ascii=True
            )
        else:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc)

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def line(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.write(msg)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fit(
    method: Method,
    source: Any,
    splits: SplitIndices,
    preset: Preset,
    run: RunConfig,
    out_dir: Path | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    keep_best: bool = False,
) -> Result:
    """Train ``method`` for ``run.optim.iterations`` steps; resume from ``out_dir/checkpoint.pt`` if present.

    The method ends with the last step's weights, or with the best-validation ones if ``keep_best`` (or if the method
    ``saves_weights``: then they are also written to ``out_dir/weights.pt``, for runs that use this one)."""
    o, d, task = run.optim, run.data, method.task
    metric = task.metric
    device = resolve_device(run.device)
    amp = autocast_dtype(run, device)
    method.to(device)
    channels_last(method)
    method.set_precision(amp)
    compile_step(method, run.compile)
    optimizer = make_optimizer(method, run)
    stream = TrainStream(source.train, splits.train, preset, d.batch_size, run.seed, device, d.num_workers,
                         d.pipeline)  # fmt: skip

    state: dict = {"next_step": 0, "best_val": metric.worst, "best_step": -1, "best_state": None, "history": [],
                   "train_time": 0.0, "wall_time": 0.0}  # fmt: skip
    ckpt_path = Path(out_dir) / checkpoint.CHECKPOINT if out_dir else None
    if ckpt_path is not None and ckpt_path.exists():
        state = checkpoint.resume(ckpt_path, run.config_hash(), method, optimizer) or state
    wall_start, wall_before = time.perf_counter(), state.get("wall_time", 0.0)

    val_batches = None  # built at the first evaluation; its loader workers live for the whole run

    def val_eval() -> dict:
        nonlocal val_batches
        if val_batches is None:
            val_batches = EvalBatches(source.train, splits.val, preset, d.eval_batch_size, device, False,
                                      d.num_workers, d.pipeline)  # fmt: skip
        return task.evaluate(method.predict, val_batches, amp)

    progress = Progress(o.iterations, state["next_step"], desc=f"{run.method}/{d.dataset}/s{run.seed}")
    sums: dict[str, torch.Tensor] = {}
    n_since, t0 = 0, time.perf_counter()
    ckpt_every = o.checkpoint_every or o.eval_every
    batches = stream.batches(state["next_step"])
    method.train()  # set again after each evaluation; once per step is measurable overhead for small models
    for step in range(state["next_step"], o.iterations):
        factor = lr_factor(o, step)
        for g in optimizer.param_groups:
            g["lr"] = o.lr * g["lr_mult"] * factor
        x, y = next(batches)
        out = method.train_step(x, y, optimizer)
        for k, v in out.items():  # accumulate on the device; one sync per evaluation, not per step
            if k != "logits" and torch.is_tensor(v) and v.dim() == 0:
                sums[k] = sums.get(k, 0) + v.detach().float()
        n_since += 1
        progress.update()
        if on_step is not None:
            on_step(step, out)
        last = step + 1 == o.iterations
        if (step + 1) % o.eval_every and not last:
            continue
        terms = {k: (v / n_since).item() for k, v in sums.items()}
        if not all(map(_finite, terms.values())):
            raise NonFiniteLossError(
                f"non-finite training loss {terms} between steps {step + 2 - n_since} and {step + 1}: "
                f"lower the learning rate (lr={o.lr}) or check the data"
            )
        state["train_time"] += time.perf_counter() - t0
        method.eval()
        val = val_eval() if len(splits.val) else None
        entry = {"step": step + 1, "lr": o.lr * factor, **{f"train_{k}": v for k, v in terms.items()}}
        if val is not None:
            entry.update({f"val_{metric.name}": val["value"], "val_loss": val["loss"]})
            if metric.better(val["value"], state["best_val"]):  # strict: ties keep the earlier step
                state.update(
                    best_val=val["value"], best_step=step + 1, best_state=checkpoint.cpu_state(method)
                )
        state["history"].append(entry)
        state["next_step"] = step + 1
        progress.line(_fmt(entry, o.iterations, metric.name))
        if out_dir is not None:
            checkpoint.write_history(Path(out_dir), state["history"])
            if (step + 1) % ckpt_every == 0 and not last:
                state["wall_time"] = wall_before + time.perf_counter() - wall_start
                checkpoint.save(ckpt_path, state, run.config_hash(), method, optimizer)
        sums, n_since, t0 = {}, 0, time.perf_counter()
        method.train()
    progress.close()
    method.__dict__.pop(
        "loss", None
    )  # drop a compiled step (compile_step): evaluation and saving use the plain method
    keep = keep_best or method.saves_weights
    result = _finish(method, task, source, splits, preset, run, device, amp, state, stream, keep)
    result.cost["wall_time_s"] = (
        wall_before + time.perf_counter() - wall_start
    )  # training, evaluation, testing
    if out_dir is not None:
        if method.saves_weights:
            atomic_torch_save(Path(out_dir) / checkpoint.WEIGHTS, checkpoint.cpu_state(method))
        result.write(Path(out_dir))  # last, atomically: its presence marks the run finished
        (Path(out_dir) / checkpoint.CHECKPOINT).unlink(missing_ok=True)
    return result


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")


def _fmt(e: dict, total: int, metric: str) -> str:
    parts = [
        f"step {e['step']}/{total}",
        f"lr {e['lr']:.3g}",
        f"loss {e.get('train_loss', float('nan')):.4f}",
    ]
    if f"val_{metric}" in e:
        parts.append(f"val {metric} {e[f'val_{metric}']:.2f}")
    return " | ".join(parts)


def _finish(method, task: Task, source, splits, preset, run, device, amp, state, stream, keep_best) -> Result:
    d = run.data
    test_batches = EvalBatches(source.test, splits.test, preset, d.eval_batch_size, device, d.ten_crop,
                               d.num_workers, d.pipeline)  # fmt: skip

    def test() -> dict:
        return task.evaluate(method.predict, test_batches, amp)

    def statistics() -> dict:  # with the selected weights, one crop per image
        batches = test_batches if not d.ten_crop else EvalBatches(
            source.test, splits.test, preset, d.eval_batch_size, device, False, d.num_workers, d.pipeline)  # fmt: skip
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            return method.test_statistics(iter(batches))

    method.eval()
    last = test()
    if state["best_state"] is None:  # no validation split: the last step is the only candidate
        best, best_step, best_val = last, run.optim.iterations, float("nan")
    elif (
        state["best_step"] == run.optim.iterations
    ):  # the best step is the last: same weights, same test numbers
        best, best_step, best_val = last, state["best_step"], state["best_val"]
    else:
        last_state = checkpoint.cpu_state(method)
        method.load_state_dict(state["best_state"])
        best, best_step, best_val = test(), state["best_step"], state["best_val"]
    stats = statistics()
    if state["best_state"] is not None and best_step != run.optim.iterations and not keep_best:
        method.load_state_dict(last_state)
    train_time = state["train_time"]
    cost = {
        "params": sum(p.numel() for p in method.parameters()),
        "trainable_params": sum(p.numel() for p in method.parameters() if p.requires_grad),
        "train_time_s": train_time,
        "train_images_per_s": run.optim.iterations * stream.batch_size / max(train_time, 1e-9),
        "peak_memory_mb": _peak_memory_mb(device),
        "train_images": len(splits.train),
        "val_images": len(splits.val),
        "test_images": len(splits.test),
    }
    metrics = {
        **task.describe(),
        "best_val": best_val,
        "best_step": best_step,
        "test_at_best_val": best["value"],
        "test_last": last["value"],
        "test_loss_at_best_val": best["loss"],
        **{f"{k}_at_best_val": v for k, v in best["extras"].items()},
        **{f"{k}_last": v for k, v in last["extras"].items()},
        "last_step": run.optim.iterations,
        "selection": "best validation step"
        if state["best_state"] is not None
        else "last step (no validation split)",
    }
    return Result(run_id=run.run_id(), config=run.to_flat(), config_hash=run.config_hash(), metrics=metrics,
                  history=state["history"], cost=cost, provenance=provenance(device),
                  extra={**method.artifacts(), **({"test_statistics": stats} if stats else {})})  # fmt: skip


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


__all__ = ["CHECKPOINT", "NonFiniteLossError", "fit", "make_optimizer", "resolve_device"]
