"""Transfer-learning methods, one file each, registered in ``METHODS``."""

from transferlab.methods.base import METHODS, Method, method_config

# Importing a method module registers it.
from transferlab.methods import (  # noqa: E402,F401  isort: skip
    bss,
    co_tuning,
    delta,
    finetune,
    hub_distill,
    hub_ensemble,
    hub_pathway,
    l2sp,
    l2t_lwf,
    l2t_ww,
    lwf,
    scratch,
    zoo_tuning,
)

__all__ = ["METHODS", "Method", "method_config"]
