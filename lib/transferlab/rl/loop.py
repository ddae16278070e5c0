"""``fit_rl``: the reinforcement-learning loop — PPO on interaction with seeded Atari environments — and evaluation.

Per update (``optim.iterations`` of them): the lr from PPO's linear annealing (a pure function of the update), a
rollout of ``num_steps`` in ``num_envs`` environments acting with the method's policy (sampled from a generator of
the TRAIN stream), one PPO update (``rl/ppo.py``). Every ``eval_every`` updates (and at the last): a learning-curve
point — the mean raw return of the training episodes that ended since the previous point — and a checkpoint.

At the end the final policy plays ``eval_episodes`` evaluation episodes (environments seeded from the ENV stream,
actions sampled from the policy with a generator of that stream): their mean return is the run's score. There is no
model selection: the score is the final policy's (``test_at_best_val`` and ``test_last`` both hold it, so the
runner, reports and paired gaps read an RL result like any other). ``best_val`` holds the final **training** return
(the mean of the last 16 training episodes): what a user picks the best single source by, without evaluation
episodes. ``auc`` is the area under the learning curve divided by its length: the mean of the curve's points.

Resume: a checkpoint holds the method, Adam, the loop's generator and torch's global RNG (Hub-Pathway's gate noise),
the curve and the episodes. ALE's vector environment cannot save its emulators' state, so at every checkpoint
boundary (every ``eval_every`` updates) **every** run — interrupted or not — re-seeds its training environments
from the ENV stream keyed by the update number, cutting the episodes in progress (counted as truncated: PPO has
already bootstrapped them, they are not counted in the curve). Hence a resumed run is exactly the run that was not
interrupted (bitwise on the CPU at one thread). ``checkpoint_every`` is not used by RL runs: the boundaries are part
of the experiment, so they follow ``eval_every``, which the config hash includes.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from transferlab import checkpoint
from transferlab.config import RunConfig
from transferlab.results import Result, atomic_torch_save, provenance
from transferlab.rl import ppo
from transferlab.rl.envs import EVAL, TRAIN, env_seed, make_envs
from transferlab.seeds import Stream, seed_for
from transferlab.train import Progress, make_optimizer, resolve_device

FINAL_EPISODES = 16  # training episodes whose mean is the final training return (best_val)


def sample(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.multinomial(torch.softmax(logits.float(), -1).cpu(), 1, generator=generator).squeeze(1)


@torch.no_grad()
def evaluate(method, spec, episodes: int, seed: int, device: torch.device) -> dict:
    """``episodes`` evaluation episodes of the method's policy (eval mode), one per environment, each environment's
    first episode; seeds from the ENV stream. Returns the returns and lengths (agent steps)."""
    was = method.training
    method.eval()
    env, obs = make_envs(spec, episodes, env_seed(seed, EVAL))
    gen = torch.Generator().manual_seed(seed_for(seed, Stream.ENV, EVAL, 1))
    returns, lengths = np.zeros(episodes), np.zeros(episodes, dtype=np.int64)
    open_ = np.ones(episodes, dtype=bool)
    try:
        while open_.any():
            logits, _ = method.act(torch.from_numpy(obs).to(device))
            obs, reward, term, trunc, _ = env.step(sample(logits, gen).numpy())
            returns += reward * open_
            lengths += open_
            open_ &= ~(term | trunc)
    finally:
        env.close()
        method.train(was)
    return {"returns": returns.tolist(), "lengths": lengths.tolist(), "mean": float(returns.mean())}


def fit_rl(method, run: RunConfig, out_dir: Path | None = None, on_update=None) -> Result:
    """Train ``method`` with PPO for ``run.optim.iterations`` updates (resuming ``out_dir/checkpoint.pt``), then
    evaluate it; writes history, weights (``saves_weights``) and metrics.json into ``out_dir``."""
    cfg, task = method.cfg, method.task
    spec, device = task.spec, resolve_device(run.device)
    method.to(device)
    state: dict = {"next_step": 0, "history": [], "episodes": [], "train_time": 0.0, "wall_time": 0.0}
    if method.trains:  # state["wall_time"]: the training's wall time, over every (resumed) session
        state = _train(method, run, cfg, spec, device, out_dir, state, on_update)
    eval_start = time.perf_counter()
    evaluation = evaluate(method, spec, cfg.eval_episodes, run.seed, device)
    return _finish(method, run, cfg, state, evaluation, device, out_dir, eval_start)


def _train(method, run, cfg, spec, device, out_dir, state, on_update) -> dict:
    o = run.optim
    optimizer = make_optimizer(method, run)
    generator = torch.Generator().manual_seed(seed_for(run.seed, Stream.TRAIN, 1))
    ckpt = Path(out_dir) / checkpoint.CHECKPOINT if out_dir else None
    if ckpt is not None and ckpt.exists():
        state = checkpoint.resume(ckpt, run.config_hash(), method, optimizer) or state
        if "generator" in state:
            generator.set_state(state.pop("generator"))
    wall_before, wall_start = state["wall_time"], time.perf_counter()
    env, obs = make_envs(spec, cfg.num_envs, env_seed(run.seed, TRAIN, state["next_step"]))
    running = np.zeros(cfg.num_envs)
    rollout = ppo.Rollout.empty(cfg.num_steps, cfg.num_envs, spec.observation_shape)
    progress = Progress(o.iterations, state["next_step"], desc=f"{run.method}/{run.data.dataset}/s{run.seed}")
    window, t0 = [], time.perf_counter()
    method.train()
    try:
        for it in range(state["next_step"], o.iterations):
            factor = 1.0 - it / o.iterations if cfg.anneal_lr else 1.0
            for g in optimizer.param_groups:
                g["lr"] = o.lr * g["lr_mult"] * factor
            for t in range(cfg.num_steps):  # the rollout: act, step, record
                x = torch.from_numpy(obs)
                with torch.no_grad():
                    logits, value = method.act(x.to(device))
                action = sample(logits, generator)
                rollout.obs[t], rollout.actions[t], rollout.values[t] = x, action, value.float().cpu()
                rollout.logprobs[t] = (
                    torch.log_softmax(logits.float().cpu(), -1).gather(1, action[:, None]).squeeze(1)
                )
                obs, reward, term, trunc, _ = env.step(action.numpy())
                ended = term | trunc
                running += reward
                rollout.rewards[t] = torch.from_numpy(np.sign(reward) if cfg.reward_clip else reward).float()
                rollout.ends[t] = torch.from_numpy(ended).float()
                step = (it * cfg.num_steps + t + 1) * cfg.num_envs
                for i in np.flatnonzero(ended):
                    state["episodes"].append([step, float(running[i])])
                    window.append(float(running[i]))
                running[ended] = 0.0
            with torch.no_grad():
                next_value = method.act(torch.from_numpy(obs).to(device))[1].float().cpu()
            terms = ppo.update(method, optimizer, rollout, next_value, cfg, generator)
            progress.update()
            if on_update is not None:
                on_update(it, terms)
            last = it + 1 == o.iterations
            if (it + 1) % o.eval_every and not last:
                continue
            if not all(math.isfinite(v) for v in terms.values()):
                raise FloatingPointError(
                    f"non-finite PPO terms {terms} at update {it + 1}: lower the lr ({o.lr})"
                )
            state["train_time"] += time.perf_counter() - t0
            entry = {"step": it + 1, "agent_steps": (it + 1) * cfg.batch, "lr": o.lr * factor,
                     "train_return": float(np.mean(window)) if window else float("nan"), "episodes": len(window),
                     **{f"train_{k}": v for k, v in terms.items()}}  # fmt: skip
            state["history"].append(entry)
            state["next_step"] = it + 1
            progress.line(f"update {it + 1}/{o.iterations} | {entry['agent_steps']} steps | return "
                          f"{entry['train_return']:.1f} ({len(window)} episodes)")  # fmt: skip
            window = []
            if not last:  # a checkpoint boundary: save, then re-seed the environments (module doc)
                if out_dir is not None:
                    checkpoint.write_history(Path(out_dir), state["history"])
                    state["wall_time"] = wall_before + time.perf_counter() - wall_start
                    checkpoint.save(ckpt, {**state, "generator": generator.get_state()}, run.config_hash(),
                                    method, optimizer)  # fmt: skip
                obs, _ = env.reset(seed=env_seed(run.seed, TRAIN, it + 1))
                running[:] = 0.0
            t0 = time.perf_counter()
    finally:
        env.close()
        progress.close()
    state["wall_time"] = wall_before + time.perf_counter() - wall_start
    return state


def _finish(method, run, cfg, state, evaluation, device, out_dir, eval_start) -> Result:
    curve = [h["train_return"] for h in state["history"] if math.isfinite(h["train_return"])]
    finals = [r for _, r in state["episodes"][-FINAL_EPISODES:]]
    agent_steps = run.optim.iterations * cfg.batch if method.trains else 0
    metrics = {
        **method.task.describe(),
        "best_val": float(np.mean(finals)) if finals else float("nan"),  # final training return (selection)
        "best_step": run.optim.iterations if method.trains else 0,
        "test_at_best_val": evaluation["mean"],
        "test_last": evaluation["mean"],
        "eval_returns": evaluation["returns"],
        "eval_lengths": evaluation["lengths"],
        "eval_episodes": len(evaluation["returns"]),
        "auc": float(np.mean(curve)) if curve else float("nan"),
        "train_episodes": len(state["episodes"]),
        "agent_steps": agent_steps,
        "frames": agent_steps * method.task.spec.frameskip,
        "last_step": run.optim.iterations,
        "selection": "final policy (no model selection in RL); best_val = mean return of the last "
        f"{FINAL_EPISODES} training episodes",
    }
    train_time = state["train_time"]
    cost = {"params": sum(p.numel() for p in method.parameters()),
            "trainable_params": sum(p.numel() for p in method.parameters() if p.requires_grad),
            "train_time_s": train_time, "agent_steps_per_s": agent_steps / max(train_time, 1e-9),
            "wall_time_s": state["wall_time"] + time.perf_counter() - eval_start}  # fmt: skip
    extra = method.artifacts()
    if hasattr(
        method, "routing"
    ):  # Hub-Pathway: which source policies the final policy routes to (eval frames)
        extra["routing_fraction"] = _routing(method, device, run.seed)
    result = Result(run_id=run.run_id(), config=run.to_flat(), config_hash=run.config_hash(), metrics=metrics,
                    history=state["history"], cost=cost, provenance=provenance(device),
                    extra={**extra, "training_episodes": state["episodes"]})  # fmt: skip
    if out_dir is not None:
        checkpoint.write_history(Path(out_dir), state["history"])
        if method.saves_weights:
            atomic_torch_save(Path(out_dir) / checkpoint.WEIGHTS, checkpoint.cpu_state(method.backbone))
        result.write(Path(out_dir))  # last, atomically: its presence marks the run finished
        (Path(out_dir) / checkpoint.CHECKPOINT).unlink(missing_ok=True)
    return result


def _routing(method, device, seed: int) -> list[float]:
    """The fraction of 256 frames (4 environments × 64 steps of the final policy) each source policy serves."""
    spec = method.task.spec
    env, obs = make_envs(spec, 4, env_seed(seed, EVAL, 2))
    frames = [obs]
    gen = torch.Generator().manual_seed(seed_for(seed, Stream.ENV, EVAL, 3))
    with torch.no_grad():
        for _ in range(63):
            logits, _ = method.act(torch.from_numpy(obs).to(device))
            obs, *_ = env.step(sample(logits, gen).numpy())
            frames.append(obs)
    env.close()
    return method.routing(torch.from_numpy(np.concatenate(frames)).to(device))


__all__ = ["FINAL_EPISODES", "evaluate", "fit_rl", "sample"]
