"""transferlab: reproduce and extend transfer learning from pre-trained models and model hubs.

Entry points: ``RunConfig`` (one table cell), ``resolve(paper, table, ...)`` (a paper cell's configuration),
``run(cfg)`` (train and write results), ``load_results()`` (pandas), and the ``transferlab`` command line
(``run``, ``report``, ``bench``, ``cost``, ``data``, ``hub``).
"""

from transferlab.api import prepared_method, run  # noqa: E402
from transferlab.config import DataConfig, OptimConfig, RunConfig  # noqa: E402
from transferlab.errors import ConfigError  # noqa: E402
from transferlab.results import Result, load_results  # noqa: E402
from transferlab.version import __version__  # noqa: E402

__all__ = [
    "ConfigError",
    "DataConfig",
    "OptimConfig",
    "Result",
    "RunConfig",
    "__version__",
    "load_results",
    "prepared_method",
    "run",
]
