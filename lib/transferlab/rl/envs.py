"""Vectorised, seeded Atari environments for an :class:`~transferlab.data.atari.EnvSpec`.

``make_envs(spec, n, seed)`` builds ALE's C++ vector environment (``ale_py.vector_env.AtariVectorEnv``: grey
resize, frame skip with max-pooling, frame stack and no-op starts in C++; no OpenCV needed) with the spec's
settings spelled out — sticky actions p = 0.25 explicitly (its default is 0), the full action set of 18, raw
(unclipped) rewards so that returns are game scores (PPO clips rewards to their sign itself), same-step
auto-reset (the observation after a terminal is the next episode's first), one emulator thread (the suite runs
single-threaded; 2 CPU cores are shared). Seeds: environment i of a batch seeded with ``seed`` starts from
``seed + i`` (ALE's vector reset), and ``env_seed`` draws ``seed`` from the run's ENV stream — training
environments, evaluation environments and the re-seeding at each checkpoint use different keys, so they never share
a sequence, and the same run seed always gives the same trajectories.
"""

from __future__ import annotations

from transferlab.data.atari import EnvSpec, check_game
from transferlab.seeds import Stream, seed_for

# ENV stream keys: (purpose, index)
TRAIN, EVAL = 0, 1


def env_seed(run_seed: int, purpose: int, index: int = 0) -> int:
    """A 31-bit environment seed from the run's ENV stream (ALE seeds are 32-bit signed; the batch adds n − 1)."""
    return seed_for(run_seed, Stream.ENV, purpose, index) % (2**31 - 1024)


def env_kwargs(spec: EnvSpec) -> dict:
    """The ``AtariVectorEnv`` keyword arguments of ``spec`` (everything explicit: defaults differ between versions)."""
    return {
        "img_height": spec.frame,
        "img_width": spec.frame,
        "grayscale": True,
        "stack_num": spec.stack,
        "frameskip": spec.frameskip,
        "maxpool": True,
        "repeat_action_probability": spec.sticky,
        "full_action_space": spec.full_action_space,
        "max_num_frames_per_episode": spec.max_episode_frames,
        "noop_max": spec.noop_max,
        "use_fire_reset": spec.fire_reset,
        "episodic_life": spec.episodic_life,
        "reward_clipping": False,
        "autoreset_mode": "SameStep",
        "num_threads": 1,
    }


def make_envs(spec: EnvSpec, n: int, seed: int):
    """``n`` environments of ``spec``, reset with ``seed``: returns (env, first observations [n, stack, H, W] uint8)."""
    check_game(spec.game)
    from ale_py.vector_env import AtariVectorEnv

    env = AtariVectorEnv(spec.game, n, **env_kwargs(spec))
    if env.single_action_space.n != spec.actions:
        env.close()
        raise RuntimeError(
            f"{spec.game}: ALE gives {env.single_action_space.n} actions, the spec {spec.actions}"
        )
    obs, _ = env.reset(seed=int(seed))
    return env, obs


__all__ = ["EVAL", "TRAIN", "env_kwargs", "env_seed", "make_envs"]
