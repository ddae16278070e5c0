"""Zoo-Tuning on policies (Shu, Kou, Cao, Wang, Long; ICML 2021, http://proceedings.mlr.press/v139/shu21b.html):
one target policy whose every layer aggregates the source policies' kernels per input.

The paper evaluates RL transfer but no RL code was released; how the paper builds its RL zoo is not known here
(``shared/docs/papers/zoo_tuning.md``: "[UNVERIFIED] how the RL zoo is built"). Our reading: the K source policies
(one architecture, ``models/policy.py``) become one network in which each extractor layer — the convolutions and
the fully connected layer, held as a whole-map convolution — is an
:class:`~transferlab.models.zoo.AdaptiveAggregationConv` over the K source kernels and biases (the classification
layer, unchanged): for layer input x_b of observation b,

    a_b = σ(V · relu(U · GAP(x_b)) + c) ∈ (0, 1)^K,   Ŵ_b = Σ_k a_{b,k} A_k W_k,   β_b = Σ_k a_{b,k} β_k,
    y_b = relu(conv(x_b, Ŵ_b) + β_b)

and new policy / value heads on the aggregated feature (as ``rl_finetune``). The whole network trains with PPO's
loss, no extra term (the official classification code has none either). Adam lr 1e-4 is the paper's RL setting (the
reproducibility summary); the table sets it. Channel alignment A_k (``align_in``, layer names) is off by default
(our reading: the official code aligns the ResNet stem and last stages; the policy CNN has no such stages).

Lite (``rl_zoo_tuning_lite``): each layer uses the batch-mean gate in training and keeps its EMA (m = 0.1) as the
gate in evaluation, where the policy is an ordinary CNN (``collapse``). PPO's rollouts run in training mode, so the
EMA follows the rollout and minibatch batches alike (our reading).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from transferlab.config import ConfigError
from transferlab.methods.base import METHODS, method_config
from transferlab.models.policy import PolicyNet
from transferlab.models.policy_hub import POLICY_HUBS, load_policy
from transferlab.models.zoo import GATE_INITS, AdaptiveAggregationConv, collapse_lite
from transferlab.rl.methods.base import PolicyMethod
from transferlab.rl.ppo import PPOConfig

PAPER = "Zoo-Tuning: Adaptive Transfer from a Zoo of Models (ICML 2021), http://proceedings.mlr.press/v139/shu21b.html"


def build_zoo_policy(sources: list[PolicyNet], task, lite: bool = False, align_in: tuple[str, ...] = (),
                     gate_init: str = "official", ema_momentum: float = 0.1) -> PolicyNet:  # fmt: skip
    """A policy whose extractor layers aggregate the ``sources``' kernels (in source order) with new heads."""
    arch = sources[0].arch
    if any(s.arch != arch for s in sources):
        raise ConfigError(
            f"Zoo-Tuning needs one architecture; the sources are {[s.arch.name for s in sources]}"
        )

    def conv(name, cin, cout, k, s):
        layer = AdaptiveAggregationConv(cin, cout, k, s, bias=True, experts=len(sources), align=name in align_in,
                                        lite=lite, ema_momentum=ema_momentum, gate_init=gate_init)  # fmt: skip
        for i, src in enumerate(sources):
            layer.weight.data[i].copy_(src.extractor[name].weight.data)
            layer.bias.data[i].copy_(src.extractor[name].bias.data)
        return layer

    return PolicyNet(arch, task.head(arch.hidden), task.value_head(arch.hidden), conv)


@METHODS.register("rl_zoo_tuning")
class RLZooTuning(PolicyMethod):
    name = "rl_zoo_tuning"
    paper = PAPER
    weights = "hub"
    lite = False

    @dataclass(frozen=True)
    class Config(PPOConfig):
        align_in: str = (
            ""  # comma-separated layer names (conv0, conv1, …, fc) with channel alignment ("" = none)
        )
        gate_init: str = "official"  # models/zoo.py GATE_INITS

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.gate_init not in GATE_INITS:
                raise ConfigError(f"gate_init={self.gate_init!r}; choose one of: {', '.join(GATE_INITS)}")

    @classmethod
    def build(cls, run, task):
        cfg = method_config(run.method, run.method_params)
        names = list(POLICY_HUBS.get(run.weights.name).policies)
        loaded = [load_policy(n, task.outputs) for n in names]
        align = tuple(a for a in cfg.align_in.replace(" ", "").split(",") if a)
        net = build_zoo_policy([net for net, _ in loaded], task, cls.lite, align, cfg.gate_init)
        method = cls(net, task, cfg)
        method.source_sha256 = {n: sha for n, (_, sha) in zip(names, loaded)}
        return method

    def zoo_layers(self) -> list[AdaptiveAggregationConv]:
        return [m for m in self.modules() if isinstance(m, AdaptiveAggregationConv)]


@METHODS.register("rl_zoo_tuning_lite")
class RLZooTuningLite(RLZooTuning):
    name = "rl_zoo_tuning_lite"
    lite = True

    def collapse(self) -> PolicyNet:
        """The ordinary CNN this policy computes in evaluation (EMA gates); this method is left unchanged."""
        return collapse_lite(copy.deepcopy(self.backbone).eval())

    def inference_model(self):
        return self.collapse()
