"""``transferlab cost <paper...> [--table t]``: the measured cost tables of paper tables' methods (Zoo-Tuning's and
Hub-Pathway's cost tables), written next to the tables' runs for the report.

For every distinct (method, pre-trained weights, method parameters) of a table — one row per single hub model, one
per hub method — the method is built as the table's first cell with it would build it (seed 0, the first dataset),
and :func:`transferlab.perf.cost.measure_cost` measures it on one real training batch of that dataset at the table's
batch size: parameters (all, trainable, at inference — the collapsed model for lite Zoo-Tuning), MACs per image,
training and inference images/s, the peak memory of a training step. ``prepare()`` is not run: what a method
prepares (distillation's trained teacher, Co-Tuning's relationship) changes no cost of its step, only its values.

Cheap by construction: a row that several tables share (the same method, weights and parameters on the same
dataset, batch size, preset, device and precision — the single models and hub baselines of Zoo-Tuning's and
Hub-Pathway's classification tables) is measured once and written into each; on the CPU the peak memories of every
row of every table asked for are measured in one fresh process (:class:`transferlab.perf.memory.CpuPeaks`: one
interpreter start, not one per row or table), after the timings, so no row is timed beside it. Each table goes to
``<results>/<paper>/<protocol>/cost-<table>.json`` (atomic, with the machine's load average and the provenance); a
shared row says which table measured it. Timings are this machine's, at its load.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from transferlab.config import RunConfig
from transferlab.data.pipeline import TrainStream
from transferlab.experiment import load_data, setup_runtime
from transferlab.methods import METHODS
from transferlab.papers import PAPERS
from transferlab.perf.common import load_average
from transferlab.perf.cost import cost_table, measure_cost
from transferlab.perf.memory import CpuPeaks
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
            weights = str(weights).removeprefix("mini:")
            out.append((f"{method} ({weights}{'; ' + shown if shown else ''})", cell.config()))
    return out


def row_key(cfg: RunConfig) -> str:
    """What a cost row depends on: the method, its weights and parameters, and the batch it is measured on."""
    d = cfg.data
    return json.dumps([cfg.method, cfg.pretrained, cfg.method_params, cfg.backbone, d.dataset, d.batch_size, d.preset,
                       cfg.device, cfg.precision], sort_keys=True, default=str)  # fmt: skip


def example_batch(cfg: RunConfig, device: torch.device):
    """The first augmented training batch of the run's dataset (as ``fit()`` would draw it), and the task."""
    d = cfg.data
    source, splits, preset, task = load_data(cfg)
    stream = TrainStream(source.train, splits.train, preset, d.batch_size, cfg.seed, device, d.num_workers)
    return next(stream.batches(0)), task


def measure_tables(work: list[tuple[str, str]], protocol: str, root: Path | str = RESULTS_DIR, memory: bool = True,
                   out=print, steps: int = 10, repeats: int = 5) -> list[Path]:  # fmt: skip
    """Measure the tables ``work`` = [(paper, table), ...]; rows shared between them are measured once. Each row's
    images/s is the fastest of ``repeats`` runs of ``steps`` steps (``transferlab cost --quick``: 3 × 5, what
    ``make demo`` uses; every row records its own steps and repeats)."""
    from transferlab.hubbuild import ensure_assets

    plans = [(paper, table, distinct_configs(paper, table, protocol)) for paper, table in work]
    for _, _, configs in plans:
        for _, cfg in configs:
            ensure_assets(cfg)  # the mini-hub models the methods are built from
    # row key → measure_cost's dict (memory filled in after the one child below)
    measured: dict[str, dict] = {}
    # CPU peaks: every table's rows in one fresh process (one interpreter start)
    peaks, pending = CpuPeaks(), {}
    device = None
    for paper, table, configs in plans:
        device = setup_runtime(configs[0][1])
        (x, y), task = example_batch(configs[0][1], device)
        for i, (label, cfg) in enumerate(configs):
            key = row_key(cfg)
            if key in measured:
                out(
                    f"[{paper}/{table} {i + 1}/{len(configs)}] {label}: measured for {measured[key]['measured_in']}"
                )
                continue
            out(f"[{paper}/{table} {i + 1}/{len(configs)}] {label}")
            torch.manual_seed(0)
            method = METHODS.get(cfg.method).build(cfg, task)
            now = memory and device.type == "cuda"  # CUDA: in this process; CPU: in the child below
            measured[key] = {**measure_cost(method, (x, y), cfg, steps=steps, repeats=repeats, memory=now),
                             "measured_in": f"{paper}/{table}"}  # fmt: skip
            if memory and not now:
                pending[key] = peaks.add(([method], (x, y), cfg))
            del method
    if pending:
        out(f"peak memory of {len(pending)} rows: one fresh process")
    for key, result in zip(pending, peaks.run(), strict=True):
        measured[key].update(result)
    paths = []
    for paper, table, configs in plans:
        rows = [
            {"label": label, "pretrained": cfg.pretrained, **measured[row_key(cfg)]} for label, cfg in configs
        ]
        path = cost_path(paper, table, protocol, root)
        atomic_write_json(path, {"paper": paper, "table": table, "protocol": protocol,
                                 "dataset": configs[0][1].data.dataset, "load_average": load_average(),
                                 "provenance": provenance(device), "rows": rows})  # fmt: skip
        out(f"wrote {path}")
        paths.append(path)
    return paths


def measure_table(paper: str, table: str, protocol: str, root: Path | str = RESULTS_DIR, memory: bool = True,
                  out=print) -> Path:  # fmt: skip
    return measure_tables([(paper, table)], protocol, root, memory, out)[0]


def load_table(paper: str, table: str, protocol: str, root: Path | str = RESULTS_DIR):
    """The saved cost table as a readable DataFrame (None if not measured)."""
    path = cost_path(paper, table, protocol, root)
    if not path.exists():
        return None
    saved = read_json(path)
    return cost_table({r["label"]: r for r in saved["rows"]}), saved


__all__ = ["cost_path", "distinct_configs", "load_table", "measure_table", "measure_tables", "row_key"]
