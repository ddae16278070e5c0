"""Transfer methods on policies (the ``rl`` task), one file each, registered in ``transferlab.methods.METHODS``."""

from transferlab.rl.methods.base import PolicyMethod

from transferlab.rl.methods import scratch, finetune, ensemble, zoo_tuning, hub_pathway  # noqa: E402,F401  isort: skip

__all__ = ["PolicyMethod"]
