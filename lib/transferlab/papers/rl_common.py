"""The reinforcement-learning tables Zoo-Tuning and Hub-Pathway share: Atari transfer from a hub of source policies.

Facts (the papers' reproducibility summaries, ``shared/docs/papers/hub_pathway.md`` §5, ``zoo_tuning.md`` §6):
sources Seaquest and Riverraid ("optimal policies for the source tasks"), targets Alien, Gopher and James Bond;
Zoo-Tuning's RL uses Adam with lr 1e-4. **Unknown** (no RL code was released; the papers' RL sections could not be
read): the RL algorithm, the network, the frame budget, the number of evaluation episodes, the score reported
(final or area under the curve), the baselines' settings. Our reading, each a setting below: PPO (``rl/ppo.py``,
CleanRL's published Atari defaults) on the Nature-DQN network at 84×84 with sticky actions (Machado et al. 2018),
10M frames per target (the PPO paper's Atari budget) = 2,442 updates of 8 × 128 agent steps, 30 evaluation
episodes; Hub-Pathway's RL lr is assumed to be Zoo-Tuning's 1e-4.

Mini protocol (ours, 2 CPU cores): the 42×42 mini CNN (91k parameters), the ``atari_mini`` hub (Seaquest and
Riverraid policies of 102,400 agent steps each), one target — Alien, the one game on which a 100k-step PPO learned
above random on the development machine (Gopher did not) — 100 updates = 102,400 agent steps per run, CleanRL's lr
2.5e-4, 8 evaluation episodes. Measured: ≈1.5 CPU-s per update on an idle core (≈4.5 s on the shared 2-core
machine), so a seed of the table (6 trained runs; the ensemble only evaluates) takes ≈15–50 min.
"""

from __future__ import annotations

from transferlab.papers.spec import Table

PAPER_TARGETS = ["atari_alien", "atari_gopher", "atari_jamesbond"]
MINI_TARGETS = ["mini_atari_alien"]
PAPER_SOURCES = ["policy:seaquest", "policy:riverraid"]
MINI_SOURCES = ["policy:seaquest_mini", "policy:riverraid_mini"]
PPO_OPTIM = {"optimizer": "adam", "momentum": 0.9, "weight_decay": 0.0, "nesterov": False, "head_lr_mult": 1.0,
             "schedule": "constant"}  # fmt: skip
PAPER_BASE = {**PPO_OPTIM, "backbone": "nature_cnn", "lr": 1e-4, "iterations": 2442, "eval_every": 61,
              "method_params": {"eval_episodes": 30}}  # fmt: skip
MINI_BASE = {**PPO_OPTIM, "backbone": "mini_cnn", "lr": 2.5e-4, "iterations": 100, "eval_every": 10}
PROVENANCE = ("targets, sources and Adam lr 1e-4: the papers' reproducibility summaries; algorithm (PPO), network, "
              "budget and evaluation: unknown, our reading (papers/rl_common.py)")  # fmt: skip
# the papers' RL claims (their direction; no RL number could be transcribed); the RL report states whether a table
# has the seeds to speak to them (reports_rl.claim_note)
RL_CLAIMS = {
    "zoo_tuning": "Zoo-Tuning transfers better than fine-tuning the best single source policy and than the ensemble "
    "of the fine-tuned policies",
    "hub_pathway": "Hub-Pathway transfers better than the best single source policy, the ensemble and Zoo-Tuning",
}
MINI_PROVENANCE = "transferlab mini RL protocol (papers/rl_common.py): 42×42, 102,400 agent steps per run"


def rl_table(protocol: str, methods: list[str], title: str, notes: str = "") -> Table:
    """An RL table: scratch and fine-tuning from each source, then the hub methods on the whole policy hub."""
    paper = protocol == "paper"
    targets, sources = (PAPER_TARGETS, PAPER_SOURCES) if paper else (MINI_TARGETS, MINI_SOURCES)
    hub = "hub:atari" if paper else "hub:atari_mini"
    return Table(
        name="rl", title=title, protocol=protocol, base=PAPER_BASE if paper else MINI_BASE,
        grid=[{"dataset": targets, "method": ["rl_scratch"], "pretrained": ["none"]},
              {"dataset": targets, "method": ["rl_finetune"], "pretrained": sources},
              {"dataset": targets, "method": methods, "pretrained": [hub]}],
        provenance=PROVENANCE if paper else MINI_PROVENANCE, notes=notes,
        separate="hours of CPU (source policies, then 5 seeds of every cell): `make reproduce-rl` runs it",
    )  # fmt: skip


__all__ = ["MINI_TARGETS", "PAPER_TARGETS", "rl_table", "rl_tables"]


def rl_tables(methods: list[str], paper_title: str) -> dict:
    """Both protocols' ``rl`` tables of a hub paper (the mini one shared in title and settings)."""
    return {("rl", "paper"): rl_table("paper", methods, paper_title),
            ("rl", "mini"): rl_table("mini", methods, "Mini: Atari transfer (42×42) from two source policies")}  # fmt: skip
