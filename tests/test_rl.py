"""Reinforcement learning: the Atari environments, PPO on a problem whose answer is known, the transfer methods on
the policy CNN (Zoo-Tuning, Hub-Pathway, ensemble), exact resume of the RL loop, and the checks before training.

Source policies are synthetic here (random networks written into the session's private cache with their checksum),
so nothing pre-trains a real policy; runs use 2 environments × 8 steps on the 42×42 mini frames."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from transferlab.config import ConfigError, RunConfig
from transferlab.data import register_dataset
from transferlab.data.atari import ACTIONS, SPECS, EnvSpec, _builder, spec_of
from transferlab.experiment import check, prepared_method
from transferlab.methods import METHODS
from transferlab.models.policy import build_policy
from transferlab.models.policy_hub import POLICIES, paths
from transferlab.models.weights import sha256_file
from transferlab.results import atomic_torch_save, atomic_write_json
from transferlab.rl import ppo
from transferlab.rl.envs import env_kwargs, make_envs
from transferlab.rl.loop import fit_rl
from transferlab.rl.methods.zoo_tuning import build_zoo_policy
from transferlab.tasks.rl import Returns

RL_METHODS = [m for m in METHODS.names() if "rl" in METHODS.get(m).tasks]
# Alien with episodes cut at 400 frames (100 agent steps): the evaluation episodes of an untrained policy stay short
SHORT = "test_mini_atari_alien_short"
if SHORT not in SPECS:
    SPECS[SHORT] = EnvSpec("alien", frame=42, max_episode_frames=400)
    register_dataset(SHORT, task="rl")(_builder(SHORT, SPECS[SHORT]))
TINY_PPO = {"num_envs": 2, "num_steps": 8, "num_minibatches": 2, "update_epochs": 2, "eval_episodes": 1}


def _rl_config(**overrides) -> RunConfig:
    flat = {"paper": "tests", "table": "rl", "method": "rl_scratch", "backbone": "mini_cnn", "pretrained": "none",
            "device": "cpu", "dataset": "mini_atari_alien", "optimizer": "adam", "lr": 2.5e-4, "weight_decay": 0.0,
            "nesterov": False, "head_lr_mult": 1.0, "schedule": "constant", "iterations": 4, "eval_every": 2,
            "method_params": dict(TINY_PPO)}  # fmt: skip
    flat.update(overrides)
    return check(RunConfig.from_flat(flat))


@pytest.fixture(scope="module")
def fake_policies():
    """The mini hub's two source policies as random networks, cached with their checksums (as if trained)."""
    for i, name in enumerate(("seaquest_mini", "riverraid_mini")):
        torch.manual_seed(100 + i)
        weights, manifest = paths(POLICIES.get(name))
        atomic_torch_save(weights, build_policy("mini_cnn", len(ACTIONS)).state_dict())
        atomic_write_json(manifest, {"name": name, "sha256": sha256_file(weights), "eval_return": 0.0,
                                     "eval_returns": [0.0]})  # fmt: skip
    return ["seaquest_mini", "riverraid_mini"]


# ------------------------------------------------------------------------------------------------ environments
def _trajectory(spec: EnvSpec, seed: int, steps: int = 40) -> list:
    env, obs = make_envs(spec, 2, seed)
    rng = np.random.default_rng(0)
    out = [obs.copy()]
    for _ in range(steps):
        obs, reward, *_ = env.step(rng.integers(0, 18, 2))
        out.append((obs.copy(), reward.copy()))
    env.close()
    return out


def _same(a, b) -> bool:
    return all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a[1:], b[1:]))


def test_env_seeding_full_actions_and_sticky_actions():
    spec = spec_of("mini_atari_alien")
    assert spec.sticky == 0.25 and spec.full_action_space and spec.actions == 18 and spec.frame == 42
    kw = env_kwargs(spec)
    assert kw["repeat_action_probability"] == 0.25 and kw["full_action_space"] and not kw["reward_clipping"]
    env, obs = make_envs(spec_of("mini_atari_gopher"), 1, 0)  # Gopher's own action set has 8
    assert env.single_action_space.n == 18 and obs.shape == (1, 4, 42, 42) and obs.dtype == np.uint8
    env.close()
    assert _same(_trajectory(spec, 3), _trajectory(spec, 3))  # the same seed: the same trajectory
    # sticky actions are on: with no random no-ops, the emulator is deterministic except for them
    sticky = dataclasses.replace(spec, noop_max=0)
    plain = dataclasses.replace(sticky, sticky=0.0)
    assert _same(_trajectory(plain, 1), _trajectory(plain, 2))
    assert not _same(_trajectory(sticky, 1), _trajectory(sticky, 2))


def test_unknown_games_and_environments_name_the_valid_ones():
    with pytest.raises(
        ConfigError, match=r"unknown Atari game 'alein'. Did you mean 'alien'\?.*Valid games: alien"
    ):
        EnvSpec("alein")
    with pytest.raises(ConfigError, match=r"Did you mean 'mini_atari_alien'\?"):
        _rl_config(dataset="mini_atari_alein")


# ------------------------------------------------------------------------------------------------ PPO
def test_gae_on_hand_made_numbers():
    r = ppo.Rollout.empty(2, 1, (1,))
    r.rewards[:, 0] = torch.tensor([1.0, 2.0])
    r.values[:, 0] = torch.tensor([0.5, 0.25])
    r.ends[:, 0] = torch.tensor(
        [0.0, 1.0]
    )  # the episode ends at the second step: no bootstrap from next_value
    adv, ret = ppo.gae(r, torch.tensor([100.0]), gamma=0.9, lam=0.5)
    d1 = 2.0 - 0.25
    d0 = 1.0 + 0.9 * 0.25 - 0.5
    assert torch.allclose(adv[:, 0], torch.tensor([d0 + 0.9 * 0.5 * d1, d1]))
    assert torch.allclose(ret, adv + r.values)


class Bandit(gym.Env):
    """Two arms: arm 1 pays 1, arm 0 pays 0; one-step episodes. The optimal policy is known: always arm 1."""

    observation_space = gym.spaces.Box(0, 255, (1, 2, 2), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        return np.zeros((1, 2, 2), np.uint8), {}

    def step(self, action):
        return np.zeros((1, 2, 2), np.uint8), float(action == 1), True, False, {}


class TinyPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(2))
        self.v = nn.Parameter(torch.zeros(1))

    def act(self, obs):
        return self.logits.expand(len(obs), 2), self.v.expand(len(obs))

    def ppo_loss(self, obs, objective):
        return objective(*self.act(obs))


def test_ppo_learns_the_better_arm_of_a_bandit():
    cfg = ppo.PPOConfig(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=4, ent_coef=0.0)
    envs = gym.vector.SyncVectorEnv([Bandit for _ in range(cfg.num_envs)])
    obs, _ = envs.reset(seed=0)
    policy, gen = TinyPolicy(), torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(policy.parameters(), lr=0.05, eps=cfg.adam_eps)
    for _ in range(30):
        r = ppo.Rollout.empty(cfg.num_steps, cfg.num_envs, (1, 2, 2))
        for t in range(cfg.num_steps):
            logits, value = policy.act(torch.from_numpy(obs))
            a = torch.multinomial(logits.detach().softmax(-1), 1, generator=gen).squeeze(1)
            r.obs[t], r.actions[t], r.values[t] = torch.from_numpy(obs), a, value.detach()
            r.logprobs[t] = logits.detach().log_softmax(-1).gather(1, a[:, None]).squeeze(1)
            obs, reward, term, trunc, _ = envs.step(a.numpy())
            r.rewards[t], r.ends[t] = torch.from_numpy(reward).float(), torch.from_numpy(term | trunc).float()
        terms = ppo.update(policy, opt, r, torch.zeros(cfg.num_envs), cfg, gen)
    assert policy.logits.softmax(0)[1] > 0.95  # the known answer
    assert abs(policy.v.item() - 1.0) < 0.2  # the value of the learnt policy is ≈ 1
    assert {"loss", "policy", "value", "entropy", "approx_kl", "clipfrac"} <= set(terms)


# ------------------------------------------------------------------------------------------------ methods
def _task() -> Returns:
    return Returns(18, list(ACTIONS), **dataclasses.asdict(spec_of("mini_atari_alien")))


def _obs(n=6):
    return torch.randint(
        0, 256, (n, 4, 42, 42), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def _goal(n=6):
    z = torch.zeros(n)
    return ppo.objective(ppo.PPOConfig(), torch.arange(n) % 18, z - 2.9, z, torch.randn(n), torch.randn(n))


@pytest.mark.parametrize("lite", [False, True])
def test_zoo_tuning_on_the_policy_cnn(lite):
    torch.manual_seed(0)
    sources = [build_policy("mini_cnn", 18) for _ in range(2)]
    net = build_zoo_policy(sources, _task(), lite=lite)
    for name, layer in net.extractor.items():  # every layer holds the sources' kernels, in source order
        assert torch.equal(layer.weight[1], sources[1].extractor[name].weight)
    logits, value = net(_obs())
    assert logits.shape == (6, 18) and value.shape == (6,)
    (logits.sum() + value.sum()).backward()
    fc = net.extractor["fc"]
    assert fc.weight.grad.abs().sum() > 0 and fc.gate[3].weight.grad.abs().sum() > 0
    if lite:  # evaluation: the EMA gates; collapse gives an ordinary CNN computing the same
        from transferlab.models.zoo import collapse_lite

        net.eval()
        with torch.no_grad():
            before = net(_obs())[0]
            after = collapse_lite(net)(_obs())[0]
        assert torch.allclose(before, after, atol=1e-5)


def test_hub_pathway_on_policies(fake_policies):
    cfg = _rl_config(method="rl_hub_pathway", pretrained="hub:atari_mini")
    method, _ = prepared_method(cfg)
    method.train()
    out = method.ppo_loss(_obs(), _goal())
    assert {"ppo", "explore", "exploit"} <= set(out) and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert method.generator.gate.weight.grad.abs().sum() > 0
    assert all(
        m.policy.weight.grad is not None for m in method.backbone
    )  # k = K = 2: both serve every sample
    method.eval()
    with torch.no_grad():  # k = K, clean gate: the output is the weighted sum of both source policies
        r = method.route(_obs())
        outs = [m(_obs()) for m in method.backbone]
        expected = sum(r.weights[:, i : i + 1] * outs[i][0] for i in range(2))
        assert torch.allclose(method.act(_obs())[0], expected, atol=1e-5)
    assert abs(sum(method.routing(_obs())) - 2.0) < 1e-9


@pytest.mark.parametrize("method", RL_METHODS)
def test_the_rl_method_contract(method, fake_policies, tmp_path):
    cls = METHODS.get(method)
    pretrained = {"forbidden": "none", "policy": "policy:seaquest_mini", "hub": "hub:atari_mini"}[cls.weights]
    cfg = _rl_config(method=method, pretrained=pretrained)
    assert cfg.method_params == dataclasses.asdict(cls.Config(**cfg.method_params)) and cls.paper
    wrong = {"forbidden": "policy:seaquest_mini", "policy": "hub:atari_mini", "hub": "none"}[cls.weights]
    with pytest.raises(ConfigError, match="needs pretrained="):
        _rl_config(method=method, pretrained=wrong)
    with pytest.raises(ConfigError, match=r"has no parameter\(s\) \['not_a_parameter'\]"):
        _rl_config(method=method, pretrained=pretrained, method_params={"not_a_parameter": 1})
    deps = {}
    if cls.dependencies(cfg):  # the ensemble reads finished fine-tuning runs: stand-ins with saved weights
        for role in cls.dependencies(cfg):
            run = tmp_path / role.replace(":", "_")
            run.mkdir()
            torch.save(build_policy("mini_cnn", 18).state_dict(), run / "weights.pt")
            (run / "metrics.json").write_text(json.dumps({"metrics": {"test_last": 1.0}, "cost": {}}))
            deps[role] = run
    torch.manual_seed(0)
    first, _ = prepared_method(cfg, dependencies=deps)
    if cls.trains:  # one training forward and backward (lite Zoo-Tuning's EMA gates move here)
        first.train()
        out = first.ppo_loss(_obs(), _goal())
        out["loss"].backward()
        assert torch.isfinite(out["loss"])
    first.eval()
    with torch.no_grad():
        logits, value = first.act(_obs())
    assert logits.shape == (6, 18) and value.shape == (6,) and torch.isfinite(logits).all()
    torch.manual_seed(1)
    second, _ = prepared_method(cfg, dependencies=deps)
    second.load_state_dict(first.state_dict())
    second.eval()
    with torch.no_grad():
        assert torch.equal(second.act(_obs())[0], logits)
    json.dumps(first.artifacts())


def test_a_source_policy_that_does_not_fit_is_refused_before_training(fake_policies):
    with pytest.raises(
        ConfigError, match=r"source policy 'seaquest' .* does not fit the target 'mini_atari_alien'"
    ):
        _rl_config(method="rl_finetune", pretrained="policy:seaquest")  # 84×84 Nature CNN on 42×42 frames
    with pytest.raises(ConfigError, match=r"4×84×84, the target's 4×42×42"):
        _rl_config(method="rl_zoo_tuning", pretrained="hub:atari")
    with pytest.raises(ConfigError, match=r"Did you mean 'seaquest_mini'\?"):
        _rl_config(method="rl_finetune", pretrained="policy:seaquest_mni")
    with pytest.raises(ConfigError, match="Adam without weight decay"):
        _rl_config(optimizer="sgd")


# ------------------------------------------------------------------------------------------------ the loop
def test_rl_resume_is_exact(tmp_path):
    cfg = _rl_config(iterations=4, eval_every=2, dataset=SHORT)
    torch.manual_seed(0)
    method, _ = prepared_method(cfg)
    full = fit_rl(method, cfg, tmp_path / "full")

    class Stop(Exception):
        pass

    def interrupt(it, terms):
        if it == 2:  # after the checkpoint of update 2
            raise Stop

    out = tmp_path / "resumed"
    torch.manual_seed(0)
    method, _ = prepared_method(cfg)
    with pytest.raises(Stop):
        fit_rl(method, cfg, out, on_update=interrupt)
    assert (out / "checkpoint.pt").exists()
    torch.manual_seed(123)  # a fresh process: the checkpoint alone must restore everything
    method2, _ = prepared_method(cfg)
    resumed = fit_rl(method2, cfg, out)
    assert json.dumps(resumed.history) == json.dumps(full.history)  # every loss term, bit for bit
    assert resumed.metrics["eval_returns"] == full.metrics["eval_returns"]
    full_w = torch.load(tmp_path / "full" / "weights.pt", weights_only=True)
    res_w = torch.load(out / "weights.pt", weights_only=True)
    assert all(torch.equal(full_w[k], res_w[k]) for k in full_w)
    assert resumed.metrics["metric"] == "return" and resumed.metrics["agent_steps"] == 4 * 16
    assert not (out / "checkpoint.pt").exists()


def test_the_runner_accepts_source_policies_before_it_starts_any_cell(fake_policies, tmp_path, monkeypatch):
    """The runner's pre-flight builds what the cells need and loads each mini-hub model once; a source policy
    (``policy:<name>``) is a cached policy, not a mini-hub model, and must pass through it (a regression: it was looked
    up in the mini hub and stopped every RL table before its first cell)."""
    from transferlab.runner import table as table_mod

    started = []
    monkeypatch.setattr(
        table_mod, "run_pool", lambda todo, *a, **k: started.extend(todo) or {"done": len(todo)}
    )
    where = {"method": ["rl_finetune", "rl_ensemble"]}
    counts = table_mod.run_tables([("zoo_tuning", "rl")], "mini", seeds=[0], root=tmp_path, where=where,
                                  out=lambda *_: None)  # fmt: skip
    assert counts["to_run"] == len(started) == 3  # two fine-tunings and their ensemble reached the workers
    assert {p.cfg.pretrained for p in started} >= {"policy:seaquest_mini", "policy:riverraid_mini"}


def test_the_rl_iqm_table_shows_a_bootstrap_interval_only_from_ten_runs():
    import pandas as pd
    from transferlab import reports_rl

    def frame(n):
        return pd.DataFrame({"method": ["rl_scratch"] * n, "variant": ["rl_scratch"] * n, "pretrained": ["none"] * n,
                             "dataset": ["mini_atari_alien"] * n, "seed": range(n),
                             "test_at_best_val": [200.0 + 10 * i for i in range(n)], "auc": [1.0] * n})  # fmt: skip

    five = reports_rl.iqm_table(frame(5)).iloc[0]["mini_atari_alien: IQM [95 % CI]"]
    assert five == "220.0 (n=5; no interval below n = 10)"  # IQM of 200..240 with the quartiles trimmed
    ten = reports_rl.iqm_table(frame(10)).iloc[0]["mini_atari_alien: IQM [95 % CI]"]
    assert ten.startswith("245.0 [") and ten.endswith("(n=10)")
