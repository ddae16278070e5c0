"""The policy hub: source policies pre-trained by the suite on Atari games, cached with sha256 checksums.

Hub-Pathway's reproducibility summary: "We use the Seaquest and Riverraid tasks as source tasks and construct the
model hub consisting of optimal policies for the source tasks." No source policy was published, so the suite trains
its own with its own RL loop (``transferlab.rl``: PPO from scratch, the recipe below), once, and caches it like the
mini hub (``models/mini_hub.py``): ``$TRANSFERLAB_CACHE/policy_hub/<name>-<recipe hash>.pt`` with a JSON manifest
holding its sha256 and its evaluation score; a file that does not match its checksum is deleted and trained again,
never used. Training sits above the experiment layer (``transferlab.hubbuild``); this module describes, caches,
checks and loads.

| hub            | policies                          | network     | frames | budget (agent steps)         |
|----------------|-----------------------------------|-------------|--------|------------------------------|
| ``atari``      | ``seaquest``, ``riverraid``       | nature_cnn  | 84×84  | 2.5M (10M frames; our reading) |
| ``atari_mini`` | ``seaquest_mini``, ``riverraid_mini`` | mini_cnn | 42×42  | 102,400 (ours, 2 CPU cores)  |

The papers' policies are "optimal" policies whose algorithm and budget are not known here; 10M frames is the
budget of the PPO paper's Atari experiments (Schulman et al. 2017), our choice for the paper protocol.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from transferlab.config import ConfigError, DataConfig, OptimConfig, RunConfig
from transferlab.models.policy import POLICY_ARCHS, PolicyNet, build_policy
from transferlab.models.weights import WeightsError, cache_lock, load_checked, valid_cached
from transferlab.registry import Registry

# PPO's Atari settings as CleanRL publishes them (ppo_atari.py defaults; facts, not code): Adam lr 2.5e-4, 8
# environments × 128 steps per update. The recipe's method parameters are RL methods' defaults (rl/ppo.py).
RECIPE_LR = 2.5e-4


@dataclass(frozen=True)
class SourcePolicy:
    name: str
    dataset: str  # an atari_* / mini_atari_* dataset (data/atari.py): the source game and its frames
    arch: str  # a POLICY_ARCHS name
    iterations: int  # PPO updates of 8 × 128 agent steps
    description: str = ""
    protocol: str = "mini"

    def recipe(self) -> RunConfig:
        return RunConfig(
            paper="policy_hub", table="pretrain", protocol=self.protocol, method="rl_scratch", backbone=self.arch,
            pretrained="none", seed=0, device="cpu",
            data=DataConfig(dataset=self.dataset),
            optim=OptimConfig(optimizer="adam", lr=RECIPE_LR, momentum=0.9, weight_decay=0.0, nesterov=False,
                              head_lr_mult=1.0, schedule="constant", iterations=self.iterations,
                              eval_every=max(1, self.iterations // 8)),
        )  # fmt: skip


POLICIES: Registry[SourcePolicy] = Registry("source policy")
for _p in (
    SourcePolicy("seaquest_mini", "mini_atari_seaquest", "mini_cnn", 100, "PPO on Seaquest, 42×42, 102,400 steps"),
    SourcePolicy("riverraid_mini", "mini_atari_riverraid", "mini_cnn", 100, "PPO on Riverraid, 42×42, 102,400 steps"),
    SourcePolicy("seaquest", "atari_seaquest", "nature_cnn", 2442, "PPO on Seaquest, 84×84, 10M frames", "paper"),
    SourcePolicy("riverraid", "atari_riverraid", "nature_cnn", 2442, "PPO on Riverraid, 84×84, 10M frames", "paper"),
):  # fmt: skip
    POLICIES.register(_p.name)(_p)


@dataclass(frozen=True)
class PolicyHub:
    name: str
    description: str
    policies: tuple[str, ...]  # POLICIES names, in hub (expert) order


POLICY_HUBS: Registry[PolicyHub] = Registry("policy hub")
POLICY_HUBS.register("atari")(PolicyHub("atari", "Seaquest and Riverraid policies, Nature CNN at 84×84 (paper protocol)",
                                        ("seaquest", "riverraid")))  # fmt: skip
POLICY_HUBS.register("atari_mini")(PolicyHub("atari_mini", "Seaquest and Riverraid policies, mini CNN at 42×42",
                                             ("seaquest_mini", "riverraid_mini")))  # fmt: skip


def cache_dir() -> Path:
    return Path(os.environ.get("TRANSFERLAB_CACHE", Path.home() / ".cache" / "transferlab")) / "policy_hub"


def paths(policy: SourcePolicy) -> tuple[Path, Path]:
    stem = f"{policy.name}-{policy.recipe().config_hash()[:10]}"
    return cache_dir() / f"{stem}.pt", cache_dir() / f"{stem}.json"


def cached(name: str) -> tuple[Path, dict] | None:
    """(weights, manifest) of source policy ``name`` if it is trained and intact; a corrupt pair is deleted."""
    weights, manifest = paths(POLICIES.get(name))
    meta = valid_cached(weights, manifest, "policy hub cache")
    return None if meta is None else (weights, meta)


def locked(policy: SourcePolicy):
    """The policy's cache lock: a parallel process waits here instead of training the same policy."""
    return cache_lock(paths(policy)[0])


def sources_of(ref) -> list[str]:
    """The source policies a ``pretrained`` reference names: ``policy:<name>`` → [name]; ``hub:<policy hub>`` →
    its policies in hub order; anything else → []."""
    if ref.kind == "policy" and ref.name in POLICIES:
        return [ref.name]
    if ref.kind == "hub" and ref.name in POLICY_HUBS:
        return list(POLICY_HUBS.get(ref.name).policies)
    return []


def check_ref(ref, backbone: str) -> None:
    """ConfigError (with a "did you mean") unless ``ref`` names a known source policy or policy hub."""
    if ref.kind == "policy" and ref.name not in POLICIES:
        raise ConfigError(POLICIES.unknown(ref.name))
    if ref.kind == "hub" and ref.name not in POLICY_HUBS:
        raise ConfigError(POLICY_HUBS.unknown(ref.name))
    if ref.kind not in ("none", "policy", "hub"):
        raise ConfigError(f"pretrained={ref}: an RL run starts from 'none', 'policy:<name>' "
                          f"({', '.join(POLICIES.names())}) or 'hub:<policy hub>' ({', '.join(POLICY_HUBS.names())})")  # fmt: skip
    POLICY_ARCHS.check(backbone)


class PolicyMissing(WeightsError):
    """A source policy is not trained yet (or its cached file was corrupt and removed)."""


def load_policy(name: str, actions: int) -> tuple[PolicyNet, str]:
    """Source policy ``name`` with its trained weights (checksum verified) and its sha256."""
    policy = POLICIES.get(name)
    found = cached(name)
    if found is None:
        raise PolicyMissing(f"source policy {name!r} is not trained yet (cache {cache_dir()}): run `transferlab hub "
                            "build atari_mini` (`transferlab run` trains what a run needs first)")  # fmt: skip
    weights, meta = found
    net = build_policy(policy.arch, actions)
    try:
        net.load_state_dict(load_checked(weights, meta["sha256"]), strict=True)
    except (RuntimeError, KeyError) as err:
        raise WeightsError(f"source policy {name!r}: {weights} does not fit a {policy.arch} with {actions} actions "
                           f"({str(err).strip().splitlines()[0][:200]}); delete it to train it again") from None  # fmt: skip
    return net, meta["sha256"]


__all__ = ["POLICIES", "POLICY_HUBS", "PolicyHub", "PolicyMissing", "SourcePolicy", "cache_dir", "cached",
           "check_ref", "load_policy", "locked", "paths", "sources_of"]  # fmt: skip
