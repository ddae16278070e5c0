"""Fine-tuning one source policy on the target game with PPO (the single-source baseline of both papers).

The source policy's extractor (all convolutions and the fc layer, ``models/policy.py``) starts from its trained
weights; the policy and value heads are new (orthogonal, gains 0.01 and 1: a near-uniform policy and an untrained
critic), because the source's values are in the source game's reward scale (our reading; no paper states it). All
parameters train at the run's lr (``head_lr_mult`` multiplies the heads'). The best single source of a table is
chosen by the final **training** return (``reports.with_best_single``: the mean return of the last training
episodes), never by evaluation episodes. ``saves_weights``: the ensemble of fine-tuned policies reads them.
"""

from __future__ import annotations

from transferlab.methods.base import METHODS, method_config
from transferlab.models.policy_hub import load_policy
from transferlab.rl.methods.base import PolicyMethod


@METHODS.register("rl_finetune")
class RLFinetune(PolicyMethod):
    name = "rl_finetune"
    paper = "fine-tuning a source policy (the papers' single-model baseline; our reading for RL)"
    weights = "policy"
    saves_weights = True

    @classmethod
    def build(cls, run, task):
        net, sha = load_policy(run.weights.name, task.outputs)
        net.policy = task.head(net.arch.hidden)
        net.value = task.value_head(net.arch.hidden)
        method = cls(net, task, method_config(run.method, run.method_params))
        method.source_sha256 = {run.weights.name: sha}
        return method
