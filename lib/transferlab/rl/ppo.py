"""Proximal Policy Optimization (Schulman et al. 2017, https://arxiv.org/abs/1707.06347), one readable file.

Per update, from a rollout of T steps in N environments (obs_t, a_t, log π_old(a_t|obs_t), V_old(obs_t), r_t, e_t
with e_t = 1 when the episode ended at step t, terminal or truncated):

    GAE (Schulman et al. 2016, https://arxiv.org/abs/1506.02438):
        δ_t = r̃_t + γ (1 − e_t) V(obs_{t+1}) − V(obs_t),   Â_t = δ_t + γλ (1 − e_t) Â_{t+1},   R_t = Â_t + V(obs_t)
        r̃_t = sign(r_t) (reward clipping, DQN's), V(obs_T) the value of the observation after the rollout
    for E epochs over M minibatches of the N·T samples (a fresh permutation per epoch):
        ρ = π_θ(a|obs) / π_old(a|obs),  Â normalised per minibatch (mean 0, std 1)
        L_clip = −mean(min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â))
        L_V    = ½ mean(max((V_θ − R)², (V_old + clip(V_θ − V_old, −ε, ε) − R)²))   (clipped value loss)
        L      = L_clip + c_V · L_V − c_H · mean(H[π_θ(·|obs)]) (+ the method's own terms)
        one Adam step after clipping the global gradient norm to g_max

Truncation (an episode cut at the frame limit or at a checkpoint) is treated as a terminal, as CleanRL does. The
defaults are CleanRL's published Atari settings (``ppo_atari.py``; facts, not code); each field's comment names the
PPO paper's Table 5 value where it differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from transferlab.config import ConfigError


@dataclass(frozen=True)
class PPOConfig:
    num_envs: int = 8  # N parallel environments (PPO paper Table 5: 8 actors)
    num_steps: int = 128  # T steps per environment per update (Table 5: horizon 128)
    update_epochs: int = 4  # E (Table 5: 3; CleanRL: 4)
    num_minibatches: int = 4  # M: minibatch = N·T/M = 256 (Table 5: 32 × 8)
    gamma: float = 0.99  # γ (Table 5)
    gae_lambda: float = 0.95  # λ (Table 5)
    clip_coef: float = 0.1  # ε (Table 5: 0.1 × α; CleanRL: 0.1, not annealed)
    clip_vloss: bool = True  # clipped value loss (CleanRL default; Engstrom et al. 2020 discuss it)
    norm_adv: bool = True  # advantage normalisation per minibatch (CleanRL default)
    ent_coef: float = 0.01  # c_H (Table 5)
    vf_coef: float = 0.5  # c_V (CleanRL; Table 5: 1 with a shared network)
    max_grad_norm: float = 0.5  # g_max (CleanRL default)
    anneal_lr: bool = True  # lr × (1 − update / updates), linear to 0 (Table 5's α annealing)
    adam_eps: float = 1e-5  # Adam ε (CleanRL default; torch's is 1e-8)
    reward_clip: bool = True  # learn from sign(r) (DQN, CleanRL's ClipRewardEnv); returns are reported raw
    eval_episodes: int = 8  # episodes of the final evaluation (seeded from the ENV stream)

    def __post_init__(self) -> None:
        for name in ("num_envs", "num_steps", "update_epochs", "num_minibatches", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ConfigError(f"num_envs × num_steps = {self.num_envs * self.num_steps} must divide into "
                              f"num_minibatches={self.num_minibatches} minibatches")  # fmt: skip
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1 and self.clip_coef > 0):
            raise ConfigError("gamma must lie in (0, 1], gae_lambda in [0, 1], clip_coef > 0")
        if self.ent_coef < 0 or self.vf_coef < 0 or self.max_grad_norm <= 0 or self.adam_eps <= 0:
            raise ConfigError("ent_coef, vf_coef must be >= 0; max_grad_norm, adam_eps > 0")

    @property
    def batch(self) -> int:
        return self.num_envs * self.num_steps


@dataclass
class Rollout:
    """T × N transitions: obs [T, N, C, H, W] uint8, actions/logprobs/values/rewards/ends [T, N]."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    ends: torch.Tensor

    @classmethod
    def empty(cls, steps: int, envs: int, obs_shape: tuple[int, ...]) -> Rollout:
        z = torch.zeros(steps, envs)
        return cls(torch.zeros(steps, envs, *obs_shape, dtype=torch.uint8), z.long(), z.clone(), z.clone(),
                   z.clone(), z.clone())  # fmt: skip


def gae(
    rollout: Rollout, next_value: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) [T, N] by generalised advantage estimation (module doc)."""
    steps = rollout.rewards.shape[0]
    adv = torch.zeros_like(rollout.rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(steps)):
        following = next_value if t == steps - 1 else rollout.values[t + 1]
        alive = 1.0 - rollout.ends[t]
        delta = rollout.rewards[t] + gamma * alive * following - rollout.values[t]
        last = delta + gamma * lam * alive * last
        adv[t] = last
    return adv, adv + rollout.values


Objective = Callable[..., dict]


def objective(cfg: PPOConfig, actions, old_logprobs, old_values, advantages, returns) -> Objective:
    """PPO's loss for one minibatch, as a function of the policy's (logits [B, A], values [B]) on it — or on the
    subset ``idx`` of its rows (Hub-Pathway scores each source policy on the samples routed to it)."""

    def loss(logits: torch.Tensor, values: torch.Tensor, idx: torch.Tensor | None = None) -> dict:
        a, lp, v, adv, ret = actions, old_logprobs, old_values, advantages, returns
        if idx is not None:
            a, lp, v, adv, ret = a[idx], lp[idx], v[idx], adv[idx], ret[idx]
        logp_all = F.log_softmax(logits.float(), dim=-1)
        new_lp = logp_all.gather(1, a[:, None]).squeeze(1)
        entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
        log_ratio = new_lp - lp
        ratio = log_ratio.exp()
        if cfg.norm_adv and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
        values = values.float()
        if cfg.clip_vloss:
            clipped = v + (values - v).clamp(-cfg.clip_coef, cfg.clip_coef)
            v_loss = 0.5 * torch.max((values - ret) ** 2, (clipped - ret) ** 2).mean()
        else:
            v_loss = 0.5 * ((values - ret) ** 2).mean()
        total = pg + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
        with torch.no_grad():  # diagnostics (Schulman's approx KL estimator k3, fraction clipped)
            approx_kl = ((ratio - 1) - log_ratio).mean()
            clipfrac = ((ratio - 1).abs() > cfg.clip_coef).float().mean()
        return {"loss": total, "policy": pg, "value": v_loss, "entropy": entropy, "approx_kl": approx_kl,
                "clipfrac": clipfrac}  # fmt: skip

    return loss


def update(method, optimizer, rollout: Rollout, next_value: torch.Tensor, cfg: PPOConfig,
           generator: torch.Generator) -> dict[str, float]:  # fmt: skip
    """E epochs of minibatch PPO on ``rollout``; returns the mean of each logged term over the minibatches.

    ``method.ppo_loss(obs, objective)`` returns a dict with ``loss`` (what is minimised) and named terms: the
    method decides how its network(s) enter PPO's objective (most call it once on their logits and values)."""
    adv, ret = gae(rollout, next_value, cfg.gamma, cfg.gae_lambda)
    flat = {"obs": rollout.obs.flatten(0, 1), "actions": rollout.actions.flatten(), "logprobs": rollout.logprobs.flatten(),
            "values": rollout.values.flatten(), "adv": adv.flatten(), "ret": ret.flatten()}  # fmt: skip
    n, size = cfg.batch, cfg.batch // cfg.num_minibatches
    sums: dict[str, float] = {}
    count = 0
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for _ in range(cfg.update_epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, size):
            mb = order[start : start + size]
            goal = objective(cfg, flat["actions"][mb], flat["logprobs"][mb], flat["values"][mb], flat["adv"][mb],
                             flat["ret"][mb])  # fmt: skip
            out = method.ppo_loss(flat["obs"][mb], goal)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            for k, v in out.items():
                if torch.is_tensor(v) and v.dim() == 0:
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
            count += 1
    explained = 1 - torch.var(ret - rollout.values) / (torch.var(ret) + 1e-8)
    return {**{k: v / count for k, v in sums.items()}, "explained_variance": float(explained)}


__all__ = ["PPOConfig", "Rollout", "gae", "objective", "update"]
