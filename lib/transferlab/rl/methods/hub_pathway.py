"""Hub-Pathway on policies (Shu, Cao, Zhang, Wang, Long; NeurIPS 2022, https://arxiv.org/abs/2206.03726): each
observation takes a data-dependent pathway through the hub's source policy networks.

The paper's RL experiment (reproducibility summary: sources Seaquest and Riverraid, targets Alien, Gopher, James
Bond) has no released code; the classification reading (``methods/hub_pathway.py``, §6 of
``shared/docs/papers/hub_pathway.md``) carries over, with PPO's objective in place of cross-entropy (our reading).
The routing is the classification method's own code (its ``PathwayGenerator``, ``HubPathway.route`` and
``HubPathway.load``, ``exploration_loss``). For observations s [B, 4, H, W] (scaled to [0, 1] for the generator):

    z̃(s) = G(s) (+ noise in training),  T(s) = top-k(z̃),  w_i(s) = softmax_{j ∈ T}(z̃_j)_i for i ∈ T, else 0
    logits(s) = Σ_{i ∈ T(s)} w_i(s) · π-head_i(f_i(s)),   V(s) = Σ_{i ∈ T(s)} w_i(s) · V-head_i(f_i(s))
    L = L_PPO(logits, V) + λ_explore · (CV²(importance) + CV²(load)) + λ_exploit · mean_{i ∈ A} L_PPO,i

where f_i is source policy i's extractor (fine-tuned), each with new policy and value heads, L_PPO,i PPO's loss of
model i's own (logits, value) on the samples routed to it (the exploitation term: each activated source policy must
act well on its own), A the models the minibatch activates. PPO's rollouts act in training mode, so the noisy
gating explores pathways while it explores actions; the importance ratio is computed against a fresh draw of the
gate noise (our reading). Evaluation routes with the clean gate. Defaults: the classification method's (k = 2 of
K — with the papers' two source policies, every observation uses both, weighted; k = 1 is a hard choice).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from transferlab.config import ConfigError
from transferlab.methods.base import METHODS, method_config
from transferlab.methods.hub_pathway import PAPER, HubPathway, PathwayGenerator, exploration_loss
from transferlab.models.policy_hub import POLICY_HUBS, load_policy
from transferlab.rl.methods.base import PolicyMethod
from transferlab.rl.ppo import PPOConfig


@METHODS.register("rl_hub_pathway")
class RLHubPathway(PolicyMethod):
    name = "rl_hub_pathway"
    paper = PAPER
    weights = "hub"

    @dataclass(frozen=True)
    class Config(PPOConfig):
        k: int = 2  # source policies per observation, 1..K (classification default: 2)
        noise: bool = True  # noisy gating in training
        explore_weight: float = 0.1  # λ_explore (classification default)
        exploit_weight: float = 1.0  # λ_exploit (classification default)
        generator_width: int = 16
        generator_size: int = 32  # the generator sees the frames area-pooled to at most this side

        def __post_init__(self) -> None:
            super().__post_init__()
            HubPathway.Config(self.k, self.noise, self.explore_weight, self.exploit_weight, self.generator_width,
                              self.generator_size)  # the classification method's checks  # fmt: skip

    def __init__(self, members: nn.ModuleList, task, cfg, experts: list[str]):
        if not 1 <= cfg.k <= len(members):
            raise ConfigError(
                f"k={cfg.k} must be in 1..K = 1..{len(members)} (the hub's policies: {experts})"
            )
        super().__init__(members, task, cfg)
        self.experts = experts
        stack = members[0].arch.stack
        self.generator = PathwayGenerator(stack, len(members), cfg.generator_width, cfg.generator_size)

    @classmethod
    def check(cls, run) -> None:
        super().check(run)
        cfg, hub = method_config(run.method, run.method_params), POLICY_HUBS.get(run.weights.name)
        if not 1 <= cfg.k <= len(hub.policies):
            raise ConfigError(f"k={cfg.k} must be in 1..K = 1..{len(hub.policies)} (hub {hub.name!r}: "
                              f"{', '.join(hub.policies)})")  # fmt: skip

    @classmethod
    def build(cls, run, task):
        cfg = method_config(run.method, run.method_params)
        names = list(POLICY_HUBS.get(run.weights.name).policies)
        members, shas = [], {}
        for name in names:
            net, shas[name] = load_policy(name, task.outputs)
            net.policy, net.value = task.head(net.arch.hidden), task.value_head(net.arch.hidden)
            members.append(net)
        method = cls(nn.ModuleList(members), task, cfg, names)
        method.source_sha256 = shas
        return method

    def new_parameters(self):
        heads = [p for m in self.backbone for p in m.head_parameters()]
        return heads + list(self.generator.parameters())

    # ------------------------------------------------------------------------------------------------ pathways
    def route(self, obs: torch.Tensor):
        return HubPathway.route(
            self, obs.float() / 255.0
        )  # the classification method's gate (duck-typed self)

    def dispatch(self, obs: torch.Tensor, r) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(logits [B, A], values [B], {i: (sample idx, logits_i, values_i)}), each model run on its samples only."""
        logits = values = None
        per_model = {}
        for i, member in enumerate(self.backbone):
            hit = (r.top == i).any(1)
            if not hit.any():
                continue
            idx = hit.nonzero().squeeze(1)
            z, v = member(obs.index_select(0, idx))
            w = r.weights[idx, i]
            per_model[i] = (idx, z, v)
            if logits is None:
                logits = obs.new_zeros(len(obs), z.shape[1], dtype=torch.float32)
                values = obs.new_zeros(len(obs), dtype=torch.float32)
            logits = logits.index_add(0, idx, w[:, None] * z.float())
            values = values.index_add(0, idx, w * v.float())
        return logits, values, per_model

    def act(self, obs):
        logits, values, _ = self.dispatch(obs, self.route(obs))
        return logits, values

    def ppo_loss(self, obs, objective) -> dict:
        r = self.route(obs)
        logits, values, per_model = self.dispatch(obs, r)
        out = objective(logits, values)
        explore = exploration_loss(r.weights.sum(0), HubPathway.load(self, r))
        exploit = torch.stack([objective(z, v, idx)["loss"] for idx, z, v in per_model.values()]).mean()
        c = self.cfg
        return {**out, "loss": out["loss"] + c.explore_weight * explore + c.exploit_weight * exploit,
                "ppo": out["loss"], "explore": explore, "exploit": exploit}  # fmt: skip

    @torch.no_grad()
    def routing(self, obs: torch.Tensor) -> list[float]:
        """The fraction of ``obs`` each source policy serves (eval-mode gate; a row of top-k sums to k)."""
        was = self.training
        self.eval()
        used = (self.route(obs).weights > 0).double().mean(0).tolist()
        self.train(was)
        return used

    def artifacts(self) -> dict:
        return {"hub_pathway": {"experts": self.experts, "k": self.cfg.k}, **super().artifacts()}
