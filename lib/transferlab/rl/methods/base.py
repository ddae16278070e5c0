"""What every transfer method on policies shares: PPO's settings, the checks before training, the policy interface.

A :class:`PolicyMethod` is a :class:`~transferlab.methods.base.Method` for the ``rl`` task: the experiment layer
checks, builds and prepares it like any method, and ``rl.loop.fit_rl`` trains it with PPO (``rl/ppo.py``). What a
method decides is how its network(s) act and how they enter PPO's objective:

- ``act(obs)`` → (action logits [B, A], values [B]) on observations [B, stack, H, W] (uint8);
- ``ppo_loss(obs, objective)`` → dict with ``loss`` and named terms; ``objective(logits, values, idx=None)`` is PPO's
  clipped loss on the minibatch (or its rows ``idx``); by default the method's ``act`` output goes in once;
- ``trains``: False for a method that only combines finished runs (the ensemble of fine-tuned policies).

Its ``Config`` extends :class:`~transferlab.rl.ppo.PPOConfig`, so every RL run records its PPO settings in
``method_params`` (and its config hash). Optimisation: Adam (``optim.optimizer="adam"``, β1 = ``momentum``), the lr
``optim.lr``, ``optim.iterations`` PPO updates, no weight decay; these are checked here.

Sources: ``pretrained`` is ``none``, ``policy:<name>`` (one source policy) or ``hub:<policy hub>``
(``models/policy_hub.py``). A source policy is refused before training, with the reason, unless its network,
observation (frame side, stack, frame skip) and action space are the target's (:func:`check_fit`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from transferlab.config import ConfigError, OptimConfig, RunConfig
from transferlab.data.atari import spec_of
from transferlab.methods.base import Method, method_config
from transferlab.models.policy_hub import POLICIES, POLICY_HUBS, check_ref, sources_of
from transferlab.refs import WeightsRef
from transferlab.rl.ppo import PPOConfig

RL = ("rl",)


def check_fit(name: str, target_dataset: str, arch: str) -> None:
    """ConfigError unless source policy ``name`` can act in ``target_dataset`` with network ``arch``: the same
    network, the same observation (frame side, stack, frame skip) and the same action space."""
    policy = POLICIES.get(name)
    src, dst = spec_of(policy.dataset), spec_of(target_dataset)
    problems = []
    if policy.arch != arch:
        problems.append(f"it is a {policy.arch}, the run's network is {arch}")
    if (src.frame, src.stack) != (dst.frame, dst.stack):
        problems.append(f"its observations are {src.stack}×{src.frame}×{src.frame}, the target's "
                        f"{dst.stack}×{dst.frame}×{dst.frame}")  # fmt: skip
    if src.frameskip != dst.frameskip:
        problems.append(f"it acts every {src.frameskip} frames, the target every {dst.frameskip}")
    if src.full_action_space != dst.full_action_space:
        problems.append("its action space (the full 18 actions) differs from the target's")
    if problems:
        fits = [p for p in POLICIES.names() if spec_of(POLICIES.get(p).dataset).frame == dst.frame]
        raise ConfigError(f"source policy {name!r} (trained on {policy.dataset}) does not fit the target "
                          f"{target_dataset!r}: {'; '.join(problems)}. Policies that fit its frames: "
                          f"{', '.join(fits) or 'none'}")  # fmt: skip


class PolicyMethod(Method):
    tasks = RL
    trains: ClassVar[bool] = True
    weights: ClassVar[str] = "policy"  # none (forbidden) | policy (one source) | hub (a policy hub)

    Config = PPOConfig

    @classmethod
    def check(cls, run: RunConfig) -> None:
        method_config(cls.name, run.method_params)
        ref, o = run.weights, run.optim
        want = {"forbidden": "none", "policy": "policy", "hub": "hub"}[cls.weights]
        if ref.kind != want:
            examples = {"none": "'none'", "policy": f"'policy:<name>' ({', '.join(POLICIES.names())})",
                        "hub": f"'hub:<policy hub>' ({', '.join(f'hub:{h}' for h in POLICY_HUBS.names())})"}  # fmt: skip
            raise ConfigError(f"method {cls.name!r} needs pretrained={examples[want]}, not {ref}")
        check_ref(ref, run.backbone)
        for name in sources_of(ref):
            check_fit(name, run.data.dataset, run.backbone)
        if o.optimizer != "adam" or o.weight_decay != 0:
            raise ConfigError(f"{cls.name}: PPO uses Adam without weight decay; set optimizer='adam', "
                              f"weight_decay=0 (got {o.optimizer!r}, {o.weight_decay})")  # fmt: skip
        if o.schedule != "constant":
            raise ConfigError(f"{cls.name}: set schedule='constant' (PPO anneals its lr itself: anneal_lr)")

    @classmethod
    def assets(cls, run: RunConfig) -> list[WeightsRef]:
        return []  # source policies are trained through hubbuild.policies_of (models/policy_hub.py)

    # ------------------------------------------------------------------------------------------------ policy
    def act(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone(obs)

    def ppo_loss(self, obs: torch.Tensor, objective) -> dict:
        return objective(*self.act(obs))

    def predict(self, obs: torch.Tensor) -> torch.Tensor:
        return self.act(obs)[0]

    def new_parameters(self) -> list[nn.Parameter]:
        return self.backbone.head_parameters()

    def param_groups(self, optim: OptimConfig) -> list[dict]:
        groups = super().param_groups(optim)
        return [{**g, "eps": self.cfg.adam_eps} for g in groups]

    def artifacts(self) -> dict:
        return {"sources": getattr(self, "source_sha256", {})}


__all__ = ["RL", "PolicyMethod", "check_fit"]
