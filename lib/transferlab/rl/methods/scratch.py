"""PPO from random weights on the target game: the no-transfer baseline (and how the suite trains its source
policies, ``models/policy_hub.py``). The network is the run's ``backbone`` (``nature_cnn`` / ``mini_cnn``,
``models/policy.py``), initialised as PPO's Atari network (orthogonal; CleanRL's published setting)."""

from __future__ import annotations

from transferlab.methods.base import METHODS, method_config
from transferlab.models.policy import build_policy
from transferlab.rl.methods.base import PolicyMethod


@METHODS.register("rl_scratch")
class RLScratch(PolicyMethod):
    name = "rl_scratch"
    paper = "PPO (Schulman et al. 2017, https://arxiv.org/abs/1707.06347) from random initialisation"
    weights = "forbidden"
    saves_weights = True  # a source policy is the final weights of a scratch run

    @classmethod
    def build(cls, run, task):
        net = build_policy(run.backbone, task.outputs)
        return cls(net, task, method_config(run.method, run.method_params))

    def new_parameters(self):
        return []  # nothing pre-trained: one lr for all
