"""Paper specs: each paper's experiment tables as grids of run configurations, with their provenance.

A :class:`Table` is a base configuration (flat ``RunConfig`` fields) plus grid axes (e.g. dataset × method ×
sample_rate) and per-method overrides, expanded over seeds into :class:`Cell`\\ s. A cell whose method is not
implemented yet is kept and marked ``missing`` (never silently dropped), so a report can say so.

Each paper module registers a :class:`Paper` in ``PAPERS``; its tables exist for both protocols (``paper``: the
published setting; ``mini``: the same structure at CPU scale).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from transferlab.config import ConfigError, RunConfig
from transferlab.registry import Registry


@dataclass(frozen=True)
class Cell:
    params: dict[str, Any]  # flat RunConfig fields
    missing: str = ""  # why the cell cannot run yet (e.g. the method is not implemented), "" if it can

    @property
    def available(self) -> bool:
        return not self.missing

    def config(self) -> RunConfig:
        if self.missing:
            raise ConfigError(f"cell cannot run: {self.missing}")
        return RunConfig.from_flat(self.params)


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
    seeds: tuple[int, ...] = (0, 1, 2)
    provenance: str = ""  # where the settings come from (paper table, official code file)
    notes: str = ""

    def cells(self, seeds: tuple[int, ...] | list[int] | None = None, paper: str = "") -> list[Cell]:
        out = []
        for grid in [self.grid] if isinstance(self.grid, dict) else self.grid:
            axes = list(grid)
            for values in itertools.product(*(grid[a] for a in axes)):
                for seed in seeds if seeds is not None else self.seeds:
                    params = {**self.base, **dict(zip(axes, values)), "seed": seed, "table": self.name}
                    params.update(self.method_overrides.get(params.get("method", ""), {}))
                    for match, updates in self.overrides:
                        if all(params.get(k) == v for k, v in match.items()):
                            params.update(updates)
                    params.setdefault("protocol", self.protocol)
                    if paper:
                        params.setdefault("paper", paper)
                    out.append(Cell(params, missing_reason(params)))
        return out


def missing_reason(params: dict[str, Any]) -> str:
    """Why a cell cannot run with the code as it is ("" if it can): unimplemented method, backbone, data, weights."""
    from transferlab.data import DATASETS
    from transferlab.methods import METHODS
    from transferlab.models import BACKBONES, weights_supported

    for kind, registry, key in (("method", METHODS, "method"), ("backbone", BACKBONES, "backbone"),
                                ("dataset", DATASETS, "dataset")):  # fmt: skip
        name = params.get(key)
        if name is not None and name not in registry:
            return f"{kind} {name!r} is not implemented yet"
    return weights_supported(params.get("backbone", ""), str(params.get("pretrained", "none")))


@dataclass(frozen=True)
class Paper:
    name: str
    title: str
    link: str
    notebook: str  # notebooks/<notebook>.py runs one cell of any of its tables
    tables: dict[tuple[str, str], Table]  # (table name, protocol) → Table
    not_implemented: dict[str, str] = field(
        default_factory=dict
    )  # parts of the paper the suite does not cover

    def table(self, name: str, protocol: str) -> Table:
        key = (name, protocol)
        if key not in self.tables:
            valid = sorted({t for t, p in self.tables if p == protocol})
            raise ConfigError(
                f"paper {self.name!r} has no table {name!r} for protocol {protocol!r}; "
                f"its {protocol} tables: {', '.join(valid) or 'none'}"
            )
        return self.tables[key]

    def table_names(self, protocol: str) -> list[str]:
        return [t for t, p in self.tables if p == protocol]  # in the paper module's order: main table first


PAPERS: Registry[Paper] = Registry("paper")


def register(paper: Paper) -> Paper:
    for t in paper.tables.values():
        for cell in t.cells(paper=paper.name)[:1]:
            if cell.available:  # validates the spec itself at import: a typo in a paper module fails loudly
                cell.config()
    PAPERS.register(paper.name)(paper)
    return paper


from transferlab.papers import co_tuning, finetune, hub_pathway, l2t_ww, zoo_tuning  # noqa: E402,F401  isort: skip

__all__ = ["PAPERS", "Cell", "Paper", "Table", "register"]
