"""The batch runner: a paper table → cells → an executor (warm local workers or a SLURM job array) → results.

- :mod:`~transferlab.runner.plan` — expand, validate, mark finished cells, order the rest;
- :mod:`~transferlab.runner.cell` — execute one cell (in-process, or through its notebook with papermill);
- :mod:`~transferlab.runner.workers` — the local executor's warm worker processes;
- :mod:`~transferlab.runner.slurm` — the SLURM executor (submitit job arrays);
- :mod:`~transferlab.runner.table` — ``run_table``: the whole flow with progress.

Nothing finished is ever lost: a cell's result is written atomically by the cell itself, a killed runner leaves
finished cells untouched and unfinished ones with a checkpoint, and the next ``run`` resumes them. A failed cell is
recorded in ``failed.json`` next to its log and the table goes on.
"""

from transferlab.runner.plan import Planned, order, plan, reuse, select_cells, status_json
from transferlab.runner.table import run_table, run_tables

__all__ = ["Planned", "order", "plan", "reuse", "run_table", "run_tables", "select_cells", "status_json"]
