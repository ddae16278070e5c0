"""transferlab: reproduce and extend transfer learning from pre-trained models and model hubs.

Entry points: ``RunConfig`` (one table cell), ``run(cfg)`` (train and write results), ``load_results()`` (pandas),
and the ``transferlab`` command line (``run``, ``report``, ``bench``, ``data``, ``hub``).
"""

__version__ = "0.1.0"

from transferlab.config import ConfigError, DataConfig, OptimConfig, RunConfig  # noqa: E402
from transferlab.experiment import run  # noqa: E402
from transferlab.results import Result, load_results  # noqa: E402

__all__ = [
    "ConfigError",
    "DataConfig",
    "OptimConfig",
    "Result",
    "RunConfig",
    "__version__",
    "load_results",
    "run",
]
