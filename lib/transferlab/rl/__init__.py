"""Reinforcement learning on Atari: environments (``envs``), PPO (``ppo``), the loop (``loop.fit_rl``) and the
transfer methods on policies (``methods``), next to the supervised ``train.fit`` in the layers."""

from transferlab.rl import methods  # noqa: F401  registers the RL methods
from transferlab.rl.loop import evaluate, fit_rl

__all__ = ["evaluate", "fit_rl"]
