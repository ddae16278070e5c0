"""Loader and step hygiene: evaluation and L2T-ww's meta optimiser without a host sync per batch (and the same
numbers as before), and the optional ``torch.compile`` of the training step (off by default)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transferlab.methods.meta_grad import MetaAdam
from transferlab.tasks.classification import Classification


def _old_evaluate(logits_list, ys, n_classes):
    """The per-batch host version this replaced: Python float loss sum, numpy counts."""
    correct, count, loss_sum, n = np.zeros(n_classes, int), np.zeros(n_classes, int), 0.0, 0
    for logits, y in zip(logits_list, ys):
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        np.add.at(count, y.numpy(), 1)
        np.add.at(correct, y.numpy(), (logits.argmax(1) == y).numpy().astype(int))
        n += len(y)
    return 100.0 * correct.sum() / n, loss_sum / n, correct, count


def test_evaluation_accumulates_on_the_device_with_the_same_numbers():
    gen = torch.Generator().manual_seed(0)
    logits = [torch.randn(b, 5, generator=gen) * 3 for b in (7, 16, 1, 9)]
    ys = [torch.randint(0, 4, (len(z),), generator=gen) for z in logits]  # class 4 never appears
    xs = [torch.zeros(len(z), 1) for z in logits]
    lookup = {id(x): z for x, z in zip(xs, logits)}
    out = Classification(5).evaluate(lambda x: lookup[id(x)], zip(xs, ys))
    top1, loss, correct, count = _old_evaluate(logits, ys, 5)
    assert out["value"] == top1 and out["loss"] == loss and out["n"] == 33  # exact, not approximately
    per_class = [round(100.0 * c / k, 4) if k else None for c, k in zip(correct, count)]
    assert out["extras"]["per_class"] == per_class and per_class[4] is None


def test_meta_adam_reads_its_step_count_once_and_resumes_exactly(monkeypatch):
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 4))]
    grads = [[torch.randn(3, 4)] for _ in range(6)]
    ref_params = [torch.nn.Parameter(params[0].detach().clone())]
    ref = MetaAdam(ref_params, lr=1e-2, weight_decay=1e-4)
    for g in grads:
        ref.step(g)

    ours = MetaAdam(params, lr=1e-2, weight_decay=1e-4)
    calls = []
    item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda t: calls.append(1) or item(t))
    for g in grads[:3]:
        ours.step(g)
    assert len(calls) == 1  # the first step reads the buffer; the next ones count on the host
    snapshot = {k: v.clone() for k, v in ours.state_dict().items()}
    resumed = MetaAdam(params, lr=1e-2, weight_decay=1e-4)  # a new process resuming from a checkpoint
    resumed.load_state_dict(snapshot)
    for g in grads[3:]:
        resumed.step(g)
    assert len(calls) == 2 and int(resumed.steps) == 6
    assert torch.equal(params[0], ref_params[0])  # bit for bit the uninterrupted run


def test_compile_is_off_by_default_and_wraps_the_loss_when_asked(tiny_config, monkeypatch, tmp_path):
    from transferlab import experiment

    compiled = []

    def fake_compile(fn, **kwargs):
        compiled.append(kwargs)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    cfg = tiny_config(iterations=2, eval_every=2)
    assert cfg.compile == "off"
    method, result = experiment.train(cfg, tmp_path / "off")
    assert compiled == [] and result.metrics["last_step"] == 2
    method, _ = experiment.train(cfg.replace(compile="reduce-overhead"), tmp_path / "on")
    assert compiled == [{"mode": "reduce-overhead", "dynamic": False}]
    assert "loss" not in method.__dict__  # the compiled step is dropped when training ends


@pytest.mark.parametrize("mode", ["off", "default"])
def test_compile_modes_are_validated(mode):
    from transferlab.config import RunConfig

    assert RunConfig.from_flat({"compile": mode}).compile == mode
