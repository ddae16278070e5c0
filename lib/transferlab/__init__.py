"""transferlab: reproduce and extend transfer learning from pre-trained models and model hubs.

Entry points: ``RunConfig`` (one table cell), ``resolve(paper, table, ...)`` (a paper cell's configuration),
``run(cfg)`` (train and write results), ``load_results()`` (pandas), and the ``transferlab`` command line
(``run``, ``report``, ``bench``, ``cost``, ``data``, ``hub``).

Errors a user can act on all derive from ``TransferlabError`` and name the value, file or folder and the fix:
``ConfigError`` (a bad name, value or environment variable), ``DatasetNotFoundError`` / ``DatasetCorruptError``
(data missing or unreadable), ``WeightsError`` (weights missing, corrupt or refused), ``WriteError`` (a folder
that cannot be written, a full disk), ``NonFiniteLossError`` (training diverged).
"""

from transferlab.api import prepared_method, run  # noqa: E402
from transferlab.config import DataConfig, OptimConfig, RunConfig  # noqa: E402
from transferlab.data import DatasetCorruptError, DatasetNotFoundError  # noqa: E402
from transferlab.errors import ConfigError, TransferlabError, WriteError  # noqa: E402
from transferlab.models.weights import WeightsError  # noqa: E402
from transferlab.results import Result, load_results  # noqa: E402
from transferlab.train import NonFiniteLossError  # noqa: E402
from transferlab.version import __version__  # noqa: E402

__all__ = [
    "ConfigError",
    "DataConfig",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "NonFiniteLossError",
    "OptimConfig",
    "Result",
    "RunConfig",
    "TransferlabError",
    "WeightsError",
    "WriteError",
    "__version__",
    "load_results",
    "prepared_method",
    "run",
]
