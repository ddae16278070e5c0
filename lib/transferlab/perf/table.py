"""``transferlab cost <paper> --table <t>``: the measured cost table of a paper table's methods (Zoo-Tuning's and
Hub-Pathway's cost tables), written next to the table's runs for the report.

For every distinct (method, pre-trained weights, method parameters) of the table — one row per single hub model,
one per hub method — the method is built as the table's first cell with it would build it (seed 0, the first
dataset), and :func:`transferlab.perf.cost.measure_cost` measures it on one real training batch of that dataset at the
table's batch size: parameters (all, trainable, at inference — the collapsed model for lite Zoo-Tuning), MACs per
image, training and inference images/s, the peak memory of a training step (a fresh process on the CPU).
``prepare()`` is not run: what a method prepares (distillation's trained teacher, Co-Tuning's relationship) changes
no cost of its step, only its values. The table goes to ``<results>/<paper>/<protocol>/cost-<table>.json`` (atomic
write, with the machine, the load average and the provenance); timings are this machine's, at its load.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from transferlab.config import RunConfig
from transferlab.data.pipeline import TrainStream
from transferlab.experiment import load_data, setup_runtime
from transferlab.methods import METHODS
from transferlab.papers import PAPERS
from transferlab.results import RESULTS_DIR, atomic_write_json, provenance, read_json


def cost_path(paper: str, table: str, protocol: str, root: Path | str = RESULTS_DIR) -> Path:
    return Path(root) / paper / protocol / f"cost-{table}.json"


def distinct_configs(paper: str, table: str, protocol: str) -> list[tuple[str, RunConfig]]:
    """(label, run config) per distinct (method, pretrained, method_params) of the table, seed 0, in table order."""
    cells = PAPERS.get(paper).table(table, protocol).cells(seeds=[0], paper=paper)
    seen, out = set(), []
    for cell in cells:
        method, weights, params = (cell.params.get(k) for k in ("method", "pretrained", "method_params"))
        key = json.dumps([method, weights, params], sort_keys=True, default=str)
        if cell.available and key not in seen:
            seen.add(key)
            shown = ", ".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
            out.append(
                (
                    f"{method} ({str(weights).removeprefix('mini:')}{'; ' + shown if shown else ''})",
                    cell.config(),
                )
            )
    return out


def example_batch(cfg: RunConfig, device: torch.device) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
    """The first augmented training batch of the run's dataset (as ``fit()`` would draw it), and its class count."""
    d = cfg.data
    source, splits, preset, task = load_data(cfg)
    stream = TrainStream(source.train, splits.train, preset, d.batch_size, cfg.seed, device, d.num_workers)
    return next(stream.batches(0)), task


def measure_table(paper: str, table: str, protocol: str, root: Path | str = RESULTS_DIR, memory: bool = True,
                  out=print) -> Path:  # fmt: skip
    from transferlab.hubbuild import ensure_assets
    from transferlab.perf.cost import measure_cost

    configs = distinct_configs(paper, table, protocol)
    for _, cfg in configs:
        ensure_assets(cfg)  # the mini-hub models the methods are built from
    device = setup_runtime(configs[0][1])
    (x, y), task = example_batch(configs[0][1], device)
    rows = []
    for i, (label, cfg) in enumerate(configs):
        out(f"[{i + 1}/{len(configs)}] {label}")
        torch.manual_seed(0)
        method = METHODS.get(cfg.method).build(cfg, task)
        measured = measure_cost(method, (x, y), cfg, steps=10, repeats=5, memory=memory)
        rows.append({"label": label, "pretrained": cfg.pretrained, **measured})
        del method
    path = cost_path(paper, table, protocol, root)
    load = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    atomic_write_json(path, {"paper": paper, "table": table, "protocol": protocol, "dataset": configs[0][1].data.dataset,
                             "load_average": load, "provenance": provenance(device), "rows": rows})  # fmt: skip
    out(f"wrote {path}")
    return path


def load_table(paper: str, table: str, protocol: str, root: Path | str = RESULTS_DIR):
    """The saved cost table as a readable DataFrame (None if not measured)."""
    from transferlab.perf.cost import cost_table

    path = cost_path(paper, table, protocol, root)
    if not path.exists():
        return None
    saved = read_json(path)
    return cost_table({r["label"]: r for r in saved["rows"]}), saved


__all__ = ["cost_path", "distinct_configs", "load_table", "measure_table"]
