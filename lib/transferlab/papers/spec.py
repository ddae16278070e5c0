"""The paper-spec vocabulary: tables as grids of run configurations, cells, papers, and ``resolve``.

Paper specs: each paper's experiment tables as grids of run configurations, with their provenance.

A :class:`Table` is a base configuration (flat ``RunConfig`` fields) plus grid axes (e.g. dataset × method ×
sample_rate) and per-method overrides, expanded over seeds into :class:`Cell`\\ s. A paper module is the **one
source of settings** for its cells: notebooks hold only what identifies a run (paper, table, protocol, method,
dataset, …, seed) plus an ``overrides`` dict, and :func:`resolve` turns that into the cell's validated configuration.

Every cell is validated (:func:`transferlab.experiment.check`: registry names with a "did you mean", the method's
preconditions) when a table is planned, so a typo fails before anything runs. A part of a paper the suite does not
implement yet is declared in the table (``missing``: method → reason) and shown as *missing*, never dropped; an
unknown name is an error, never a missing cell.

Each paper module registers a :class:`Paper` in ``PAPERS``; its tables exist for both protocols (``paper``: the
published setting; ``mini``: the same structure at CPU scale). :func:`register` derives a third, ``demo``: every mini
results table that is not ``separate``, at one seed with every step count × ``DEMO_STEPS_SCALE`` (the validation
interval × ``DEMO_EVAL_SCALE``; both in :mod:`transferlab.config`), on the **demo hub** (each mini hub model pre-trained
for ``DEMO_STEPS_SCALE`` of its steps: ``mini:demo_<name>``, ``hub:demo``): ``make demo``'s first look in minutes; its
numbers are not the mini protocol's and its reports make no claims.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

from transferlab.config import (
    DEMO_EVAL_SCALE,
    DEMO_STEPS_SCALE,
    ConfigError,
    OptimConfig,
    RunConfig,
    flat_field_names,
)
from transferlab.experiment import check
from transferlab.methods import METHODS
from transferlab.methods.l2t_ww_setup import AUTO_SOURCE
from transferlab.models.mini_hub import DEMO
from transferlab.registry import Registry

# What identifies a cell of a table (a notebook's parameters cell names these; everything else comes from the spec)
IDENTITY = ("method", "dataset", "sample_rate", "shots", "pretrained", "method_params")
# the demo protocol's one seed (its schedule: DEMO_STEPS_SCALE, DEMO_EVAL_SCALE in config.py; its hub: demo_ref)
DEMO_SEEDS = (0,)


@dataclass(frozen=True)
class Cell:
    params: dict[str, Any]  # flat RunConfig fields
    missing: str = ""  # why the cell cannot run yet (a part of the paper not implemented), "" if it can

    @property
    def available(self) -> bool:
        return not self.missing

    def config(self) -> RunConfig:
        """The cell's validated configuration (method parameters spelled out); ConfigError if anything is wrong."""
        if self.missing:
            raise ConfigError(f"cell cannot run: {self.missing}")
        return check(RunConfig.from_flat(self.params))


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    protocol: str  # mini | paper
    base: dict[str, Any]  # flat fields shared by every cell
    grid: (
        dict[str, list] | list[dict[str, list]]
    )  # axis → values; cells are the product (a list: a union of grids)
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-method flat fields
    overrides: list[tuple[dict[str, Any], dict[str, Any]]] = field(
        default_factory=list
    )  # (if these match, set)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    provenance: str = ""  # where the settings come from (paper table, official code file)
    notes: str = ""
    missing: dict[str, str] = field(default_factory=dict)  # method → why it cannot run yet
    # "design": a validation-only grid that chose another table's settings (reports show validation, never test);
    # design tables use their own seeds and are not part of `make demo`
    kind: str = "results"
    # non-empty: the table runs only when named (`--table`), never in "every table" runs (`transferlab run all`,
    # `make demo`); the text says why and how to run it (the mini NER table: `make ner`; the RL tables: `make reproduce-rl`)
    separate: str = ""
    steps_scale: float = 1.0  # every step count of every cell × this (the demo protocol's shortened schedule)
    eval_scale: float | None = None  # the validation interval × this (None: × steps_scale)

    def cells(self, seeds: tuple[int, ...] | list[int] | None = None, paper: str = "") -> list[Cell]:
        out = []
        for grid in [self.grid] if isinstance(self.grid, dict) else self.grid:
            axes = list(grid)
            for values in itertools.product(*(grid[a] for a in axes)):
                for seed in seeds if seeds is not None else self.seeds:
                    params = self.params_for(dict(zip(axes, values)), seed, paper)
                    out.append(Cell(params, self.missing.get(params.get("method", ""), "")))
        return out

    def params_for(self, identity: dict[str, Any], seed: int, paper: str = "") -> dict[str, Any]:
        """The flat fields of the cell with these grid values: base, grid values, per-method and conditional
        overrides, in that order."""
        params = {**self.base, **identity, "seed": seed, "table": self.name}
        params.update(self.method_overrides.get(params.get("method", ""), {}))
        for match, updates in self.overrides:
            if all(params.get(k) == v for k, v in match.items()):
                params.update(updates)
        params.setdefault("protocol", self.protocol)
        if paper:
            params.setdefault("paper", paper)
        if self.protocol == "demo":
            params = demo_weights(params)
        return scale_steps(params, self.steps_scale, self.eval_scale) if self.steps_scale != 1.0 else params

    def axes(self) -> dict[str, list]:
        """Every grid axis with the values it takes (over the union of grids)."""
        out: dict[str, list] = {}
        for grid in [self.grid] if isinstance(self.grid, dict) else self.grid:
            for axis, values in grid.items():
                out.setdefault(axis, [])
                out[axis] += [v for v in values if v not in out[axis]]
        return out


def scale_steps(params: dict[str, Any], scale: float, eval_scale: float | None = None) -> dict[str, Any]:
    """``params`` with every step count × ``scale``, the validation interval × ``eval_scale`` (default ``scale``); at
    least 1 step, milestones kept inside the schedule."""
    out = dict(params)
    for key, factor in (("iterations", scale), ("eval_every", scale if eval_scale is None else eval_scale)):
        default = next(f.default for f in dataclasses.fields(OptimConfig) if f.name == key)
        out[key] = max(1, round(out.get(key, default) * factor))
    if out.get("warmup_steps"):
        out["warmup_steps"] = max(1, round(out["warmup_steps"] * scale))
    if out.get("milestones"):
        out["milestones"] = [max(1, round(m * scale)) for m in out["milestones"]]
    return out


def demo_ref(ref: str) -> str:
    """A mini-hub weights reference as the demo protocol names it: ``mini:<m>`` → ``mini:demo_<m>`` (the demo hub's
    twin of model m), ``hub:mini`` → ``hub:demo``; any other reference unchanged."""
    if ref.startswith("mini:") and not ref.startswith(f"mini:{DEMO}"):
        return f"mini:{DEMO}{ref.removeprefix('mini:')}"
    return "hub:demo" if ref == "hub:mini" else ref


def demo_weights(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with every mini-hub reference on the demo hub: ``pretrained`` and an L2T-style ``source`` (``auto``
    resolved first, so a demo run never needs the full mini hub)."""
    out = dict(params)
    if "pretrained" in out:
        out["pretrained"] = demo_ref(str(out["pretrained"]))
    method = out.get("method", "")
    if method in METHODS and "source" in {f.name for f in dataclasses.fields(METHODS.get(method).Config)}:
        mp = dict(out.get("method_params") or {})
        source = mp.get("source", "auto")
        source = AUTO_SOURCE.get(out.get("backbone", ""), source) if source == "auto" else source
        if demo_ref(source) != source:
            out["method_params"] = {**mp, "source": demo_ref(source)}
    return out


def demo_table(table: Table) -> Table:
    """The demo protocol's version of a mini results table: seed 0, every step count × ``DEMO_STEPS_SCALE`` (the
    validation interval × ``DEMO_EVAL_SCALE``), the demo hub's models in place of the mini hub's."""
    return dataclasses.replace(
        table,
        protocol="demo",
        seeds=DEMO_SEEDS,
        steps_scale=DEMO_STEPS_SCALE,
        eval_scale=DEMO_EVAL_SCALE,
        notes=(f"Demo schedule: the mini table at seed 0 with every step count × {DEMO_STEPS_SCALE:g} (validation "
               f"interval × {DEMO_EVAL_SCALE:g}), on the demo hub (the mini hub pre-trained for × "
               f"{DEMO_STEPS_SCALE:g} of its steps) — a first look that the pipeline runs, not the mini protocol's "
               "numbers (`make reproduce-mini`). " + table.notes).strip(),
    )  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """A paper's claim that a table tests: ``method`` beats each of ``baselines`` (in the table's metric direction).
    The report and the README say, per baseline, whether the mini result agrees (better, the paired t-interval over
    seeds excludes 0), disagrees (worse, excludes 0) or does not resolve it."""

    table: str
    method: str
    baselines: tuple[str, ...]
    text: str  # the claim in the paper's words (or ours, labelled)
    where: dict[str, Any] = field(
        default_factory=dict
    )  # restrict to cells with these values (e.g. a dataset)


@dataclass(frozen=True)
class Paper:
    name: str
    title: str
    link: str
    notebook: str  # notebooks/<notebook>.py runs one cell or one table of this paper
    tables: dict[tuple[str, str], Table]  # (table name, protocol) → Table
    not_implemented: dict[str, str] = field(
        default_factory=dict
    )  # parts of the paper the suite does not cover
    claims: tuple[Claim, ...] = ()  # what the paper claims and which mini table tests it

    def table(self, name: str, protocol: str) -> Table:
        key = (name, protocol)
        if key not in self.tables:
            valid = sorted({t for t, p in self.tables if p == protocol})
            raise ConfigError(
                f"paper {self.name!r} has no table {name!r} for protocol {protocol!r}; "
                f"its {protocol} tables: {', '.join(valid) or 'none'}"
            )
        return self.tables[key]

    def table_names(self, protocol: str, kind: str | None = "results", separate: bool = False) -> list[str]:
        """The protocol's tables in the paper module's order (main table first); by default the results tables only
        (``kind=None``: design grids too), without the ``separate`` ones (run only when named) unless ``separate``."""
        return [
            t
            for (t, p), spec in self.tables.items()
            if p == protocol and kind in (None, spec.kind) and (separate or not spec.separate)
        ]


PAPERS: Registry[Paper] = Registry("paper")


def register(paper: Paper) -> Paper:
    for (name, protocol), t in list(
        paper.tables.items()
    ):  # the demo protocol: derived, never written by hand
        if protocol == "mini" and t.kind == "results" and not t.separate:
            paper.tables.setdefault((name, "demo"), demo_table(t))
    for t in paper.tables.values():
        for cell in t.cells(paper=paper.name)[:1]:
            if cell.available:  # validates the spec itself at import: a typo in a paper module fails loudly
                cell.config()
    PAPERS.register(paper.name)(paper)
    return paper


def resolve(paper: str, table: str, protocol: str = "mini", seed: int = 0, overrides: dict | None = None,
            **identity: Any) -> RunConfig:  # fmt: skip
    """The configuration of one cell of a paper's table, from what identifies it (``method``, ``dataset``,
    ``sample_rate``, ``shots``, ``pretrained``, ``method_params``: the values the cell takes on the table's axes;
    axes left out take the table's first value) plus ``overrides`` (any flat field, for exploration: the result
    then has its own config hash, so it never passes for the table's cell). ConfigError names what is wrong."""
    spec = PAPERS.get(paper).table(table, protocol)
    unknown = sorted(set(identity) - set(IDENTITY))
    if unknown:
        raise ConfigError(
            f"{unknown} do not identify a cell; use {', '.join(IDENTITY)} (other fields: overrides)"
        )
    grids = [spec.grid] if isinstance(spec.grid, dict) else spec.grid
    # the first sub-grid that holds every given value on its axes (values on no axis are off-grid: allowed, for
    # exploration, e.g. another method on the table's data)
    fits = [g for g in grids if all(v in g[a] for a, v in identity.items() if a in g)]
    if not fits:
        axes = spec.axes()
        wrong = {a: v for a, v in identity.items() if a in axes and v not in axes[a]}
        detail = (
            "; ".join(f"{a} is one of {axes[a]}, not {v!r}" for a, v in wrong.items())
            or "no sub-grid has them all"
        )
        raise ConfigError(f"table {paper}/{table} ({protocol}) has no cell with {identity}: {detail}")
    chosen = {a: identity.get(a, values[0]) for a, values in fits[0].items()}
    chosen.update(identity)
    params = spec.params_for(chosen, seed, paper)
    valid = set(flat_field_names())
    bad = sorted(set(overrides or {}) - valid)
    if bad:
        raise ConfigError(f"unknown override(s) {bad}; valid fields: {', '.join(sorted(valid))}")
    params.update(overrides or {})
    method = params.get("method", "")
    if method in spec.missing:
        raise ConfigError(f"{paper}/{table}: {method} cannot run yet: {spec.missing[method]}")
    return check(RunConfig.from_flat(params))


__all__ = ["DEMO_EVAL_SCALE", "DEMO_SEEDS", "DEMO_STEPS_SCALE", "IDENTITY", "PAPERS", "Cell", "Claim", "Paper", "Table", "demo_table",
           "register", "resolve", "scale_steps"]  # fmt: skip
