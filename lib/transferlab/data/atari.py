"""Atari games as the "datasets" of the reinforcement-learning task: ``atari_<game>`` (84×84) and ``mini_atari_<game>``.

A run names its environment the way a classification run names its data (``dataset="atari_alien"``), so the
registry's "did you mean", the task kind (``rl``) and the config hash work unchanged. The builder reads no files: it
checks that ALE ships the game (``ale-py`` bundles the ROMs in its wheel, so this works offline) and returns an
:class:`EnvSource` whose ``task_params`` are the :class:`EnvSpec` — what ``transferlab.rl.envs`` builds.

Protocol (Machado et al. 2018, "Revisiting the Arcade Learning Environment", https://arxiv.org/abs/1709.06009):
sticky actions with p = 0.25 (ALE's vector env defaults to 0, so it is set explicitly), the full action set of 18
actions for every game (so one policy head fits every game: Gopher's own set has 8), no life-loss terminal. Frame
preprocessing as DQN (Mnih et al. 2015, Nature): grey, 84×84, frame skip 4 with max-pooling of the last two frames,
a stack of 4; up to 30 no-op actions at reset and FIRE at reset where the game needs it (CleanRL's Atari wrappers,
facts only). The mini protocol halves the frame to 42×42 and caps an episode at 27,000 frames (7.5 min of play) so
that a CPU run's evaluation cannot hang on one long episode; the paper protocol keeps ALE's 108,000 (30 min).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path

from transferlab.data.base import register_dataset
from transferlab.errors import ConfigError

# ALE ids of the games registered here: the papers' sources (Seaquest, Riverraid) and targets (Alien, Gopher, James
# Bond), plus a few common games as options for other hubs.
GAMES = (
    "alien",
    "gopher",
    "jamesbond",
    "seaquest",
    "riverraid",
    "breakout",
    "pong",
    "space_invaders",
    "ms_pacman",
)
# The 18 actions of ALE's full action set, in ALE's order (ale_py.Action).
ACTIONS = ("NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT", "UPFIRE",
           "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE", "DOWNLEFTFIRE")  # fmt: skip


@dataclass(frozen=True)
class EnvSpec:
    game: str  # ALE id (GAMES)
    frame: int = 84  # side of the square grey frame (84: DQN; 42: mini)
    stack: int = 4  # frames stacked into one observation [stack, frame, frame]
    frameskip: int = 4  # emulator frames per agent step (the action is repeated; the last two are max-pooled)
    sticky: float = 0.25  # repeat_action_probability (Machado et al. 2018); ALE's vector env default is 0
    full_action_space: bool = True  # 18 actions for every game
    max_episode_frames: int = 108_000  # emulator frames before an episode is truncated (ALE default: 30 min)
    noop_max: int = 30  # random no-ops at reset (CleanRL's NoopResetEnv)
    fire_reset: bool = True  # press FIRE at reset in games that need it (CleanRL's FireResetEnv)
    episodic_life: bool = False  # a life loss is not a terminal (Machado et al. 2018)

    def __post_init__(self) -> None:
        check_game(self.game)
        if not 0.0 <= self.sticky < 1.0:
            raise ConfigError(f"sticky={self.sticky} must lie in [0, 1) (0.25: Machado et al. 2018)")
        if self.frame < 16 or self.stack < 1 or self.frameskip < 1:
            raise ConfigError(f"frame={self.frame} must be >= 16, stack and frameskip >= 1")

    @property
    def actions(self) -> int:
        if not self.full_action_space:
            raise ConfigError(
                "only the full action space (18 actions) is supported: one head fits every game"
            )
        return len(ACTIONS)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (self.stack, self.frame, self.frame)


def check_game(game: str) -> None:
    """ConfigError naming the valid games (and the closest one) unless ``game`` is one."""
    if game not in GAMES:
        close = difflib.get_close_matches(str(game), GAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown Atari game {game!r}.{hint} Valid games: {', '.join(GAMES)}")


@dataclass(frozen=True)
class EnvSource:
    """What ``tasks.task_of`` reads from a dataset: here an environment, not samples."""

    name: str
    spec: EnvSpec
    classes: list[str] = field(default_factory=lambda: list(ACTIONS))  # the policy's outputs: actions
    info: dict = field(default_factory=dict)
    task: str = "rl"

    @property
    def task_params(self) -> dict:
        return dataclasses.asdict(self.spec)


PROTOCOL_SPECS = {"atari": {}, "mini_atari": {"frame": 42, "max_episode_frames": 27_000}}
SPECS: dict[str, EnvSpec] = {}


def spec_of(dataset: str) -> EnvSpec:
    """The environment of a registered ``atari_*`` / ``mini_atari_*`` dataset (no I/O)."""
    if dataset not in SPECS:
        raise ConfigError(f"{dataset!r} is not an Atari environment; valid: {', '.join(sorted(SPECS))}")
    return SPECS[dataset]


def _builder(name: str, spec: EnvSpec):
    def build(root: Path) -> EnvSource:  # root: unused, the ROMs ship inside ale-py
        try:
            import ale_py.roms
        except ImportError as err:
            raise ConfigError(f"{name} needs ale-py (pip install ale-py==0.12.1): {err}") from None
        if spec.game not in ale_py.roms.get_all_rom_ids():
            raise ConfigError(f"ale-py {ale_py.__version__} does not ship the ROM of {spec.game!r}")
        return EnvSource(name, spec, info={"source": f"ALE ROM {spec.game} (ale-py {ale_py.__version__})"})

    return build


for _prefix, _extra in PROTOCOL_SPECS.items():
    for _game in GAMES:
        _name = f"{_prefix}_{_game}"
        SPECS[_name] = EnvSpec(_game, **_extra)
        register_dataset(_name, task="rl")(_builder(_name, SPECS[_name]))

__all__ = ["ACTIONS", "GAMES", "EnvSource", "EnvSpec", "SPECS", "check_game", "spec_of"]
