"""The ensemble of fine-tuned policies: the K ``rl_finetune`` runs of a policy hub's sources, acting together.

Zoo-Tuning's and Hub-Pathway's hub baseline (their RL settings are not known here; this is our reading, and the
same mechanism as the classification ensemble, ``methods/hub_ensemble.py``): K independent fine-tunings, one per
source policy, then one prediction from the K members. The members are the table's own ``rl_finetune`` cells
(declared ``dependencies``, found by config hash or trained first, their final weights read from ``weights.pt``), so
no interaction is spent twice. The ensemble acts with the mixture of the members' action distributions

    π(a | s) = (1/K) Σ_i π_i(a | s),     logits = log (1/K) Σ_i softmax(z_i)      (``task.combine("prob")``)

and its value is the members' mean. It does not train (``trains = False``): its result is the evaluation of the
mixture on the run's evaluation episodes; its cost is the members' (K × the interaction of one fine-tuning).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from transferlab.checkpoint import WEIGHTS
from transferlab.methods.base import METHODS, method_config
from transferlab.models.policy import build_policy
from transferlab.models.policy_hub import POLICY_HUBS
from transferlab.results import read_json
from transferlab.rl.methods.base import PolicyMethod
from transferlab.rl.ppo import PPOConfig


def member_config(run, policy: str):
    """The ``rl_finetune`` run of source ``policy`` that is member ``policy`` of ``run``'s ensemble."""
    ppo = {k: v for k, v in run.method_params.items() if k in PPOConfig.__dataclass_fields__}
    return run.replace(method="rl_finetune", pretrained=f"policy:{policy}", method_params=ppo)


@METHODS.register("rl_ensemble")
class RLEnsemble(PolicyMethod):
    name = "rl_ensemble"
    paper = (
        "ensemble of fine-tuned policies (the hub baseline of Zoo-Tuning / Hub-Pathway; our reading for RL)"
    )
    weights = "hub"
    trains = False

    def __init__(self, members: nn.ModuleList, task, cfg, names: list[str]):
        super().__init__(members, task, cfg)
        self.names = names
        self.member_runs: dict[str, dict] = {}

    @classmethod
    def dependencies(cls, run):
        return {f"member:{p}": member_config(run, p) for p in POLICY_HUBS.get(run.weights.name).policies}

    @classmethod
    def build(cls, run, task):
        names = list(POLICY_HUBS.get(run.weights.name).policies)
        members = nn.ModuleList([build_policy(run.backbone, task.outputs) for _ in names])
        return cls(members, task, method_config(run.method, run.method_params), names)

    def prepare(self, data) -> None:
        """Load each member's final weights from its finished ``rl_finetune`` run."""
        for name, member in zip(self.names, self.backbone):
            run_dir = Path(data.dependency(f"member:{name}"))
            member.load_state_dict(torch.load(run_dir / WEIGHTS, map_location="cpu", weights_only=True))
            metrics = read_json(run_dir / "metrics.json")
            self.member_runs[name] = {"run": str(run_dir), "return": metrics["metrics"]["test_last"],
                                      "cost": metrics.get("cost", {})}  # fmt: skip

    def act(self, obs):
        outs = [member(obs) for member in self.backbone]
        logits = self.task.combine([o[0] for o in outs], "prob")
        return logits, torch.stack([o[1] for o in outs]).mean(0)

    def new_parameters(self):
        return []

    def artifacts(self) -> dict:
        return {"members": self.member_runs}
