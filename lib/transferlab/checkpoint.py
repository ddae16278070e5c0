"""``fit()``'s resumable state: the checkpoint file, the learning-curve file, and clear errors for bad files.

A checkpoint holds the loop's state (next step, best validation value and weights, history, timings), the method's
and the optimiser's state, the global torch RNG and the config hash; it is written atomically and read with
``weights_only=True``. A checkpoint that cannot be read (truncated, not a checkpoint, another configuration) is
moved aside as ``checkpoint.pt.bad-<time>`` — named in the message — and the run starts over: a bad file never
makes a cell fail on every re-run, and nothing is deleted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from transferlab.results import atomic_torch_save, atomic_write_bytes

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.jsonl"
WEIGHTS = "weights.pt"  # the selected weights of a method that keeps them (Method.saves_weights)


def cpu_state(module: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def write_history(out_dir: Path, history: list[dict]) -> None:
    atomic_write_bytes(out_dir / HISTORY, "".join(json.dumps(h) + "\n" for h in history).encode())


def save(path: Path, state: dict, config_hash: str, method: torch.nn.Module, optimizer) -> None:
    atomic_torch_save(path, {**state, "config_hash": config_hash, "method": cpu_state(method),
                             "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()})  # fmt: skip


def resume(path: Path, config_hash: str, method: torch.nn.Module, optimizer, log=print) -> dict | None:
    """The loop state saved in ``path`` (method, optimiser and RNG restored), or None if the file is unusable —
    then it is moved aside and the caller starts from step 0."""
    before, before_opt = cpu_state(method), optimizer.state_dict()
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or "next_step" not in ckpt:
            raise ValueError("not a transferlab checkpoint")
        if ckpt.get("config_hash") != config_hash:
            raise ValueError("it belongs to a different configuration")
        method.load_state_dict(ckpt.pop("method"))
        optimizer.load_state_dict(ckpt.pop("optimizer"))
        torch.set_rng_state(ckpt.pop("torch_rng"))
    except Exception as err:  # noqa: BLE001  any unreadable file: keep it for inspection, start afresh
        method.load_state_dict(before)  # a half-applied state must not leak into the fresh start
        optimizer.load_state_dict(before_opt)
        aside = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        path.replace(aside)
        log(f"checkpoint {path} could not be used ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            f"moved it to {aside.name} and starting this run from step 0")  # fmt: skip
        return None
    log(f"resumed from {path} at step {ckpt['next_step']}")
    return ckpt


__all__ = ["CHECKPOINT", "HISTORY", "WEIGHTS", "cpu_state", "resume", "save", "write_history"]
