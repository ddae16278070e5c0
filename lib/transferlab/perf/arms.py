"""What the perf suites measure: the contenders (:class:`transferlab.perf.common.Arm`) of the method and data
suites, the builders that give them random weights where no published file is available offline (a step costs
the same with any weights), and how an arm is built and stepped as ``fit()`` would build and step it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from transferlab.config import RunConfig
from transferlab.methods import METHODS, Method, method_config
from transferlab.models import BACKBONES, build_backbone
from transferlab.perf.common import Arm, Case, bench_config
from transferlab.tasks import Task
from transferlab.tasks.classification import Classification
from transferlab.train import autocast_dtype, channels_last


# ----------------------------------------------------------------------------------- builders (random weights)
def finetune_from(run: RunConfig, task: Task, i: int) -> Method:
    """``finetune`` of model i of the hub ``run.pretrained = "hub:<name>"``, or, with ``pretrained="none"``, of
    ``run.backbone`` with random weights (a step costs the same with any weights)."""
    from transferlab.methods.hubs import hub_of

    if run.weights.is_none:
        backbone = build_backbone(run.backbone, "none")
    else:
        hub = hub_of(run)
        backbone = hub.load(hub.names()[i], data_root=run.data.data_root)
    backbone.reset_head(task.outputs)
    return METHODS.get("finetune")(backbone, task, method_config("finetune", dict(run.method_params)))


def l2t_random_source(run: RunConfig, task: Task, i: int) -> Method:
    """L2T-ww's 32×32 setting (l2t_resnet32 → vgg9_bn) with a randomly initialised source ResNet-32."""
    from transferlab.methods.l2t_ww_setup import SETTINGS, FrozenSource

    cls, setting = METHODS.get(run.method), SETTINGS[("l2t_resnet32", "vgg9_bn")]
    target = build_backbone(run.backbone, "none")
    target.reset_head(task.outputs, keep_source=False)
    source = FrozenSource(BACKBONES.get("cifar_resnet32")(200), "blocks")
    pairs, widths = cls.default_pairs(setting), (setting.source_widths, setting.target_widths)
    return cls(target, task, method_config(run.method, dict(run.method_params)), source, pairs, *widths)


@dataclass(frozen=True)
class RandomWeights:
    """Hub weights that are a seeded random initialisation of ``arch`` (for timing ResNet-50 hubs offline)."""

    arch: str
    seed: int
    file = url = "random initialisation (bench)"
    checksum, prefix, keys, licence = "none", None, "as is", "none"

    def state_dict(self, what: str, weights_dir=None, data_root: str = "data") -> dict[str, torch.Tensor]:
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            return BACKBONES.get(self.arch)(1000).state_dict()


def register_random_hub(name: str = "bench_random_resnet50", arch: str = "resnet50", k: int = 5) -> str:
    from transferlab.models.hub import HUBS, Hub, HubModel

    if name not in HUBS:
        models = tuple(HubModel(f"random{i}", arch, "random init", RandomWeights(arch, i)) for i in range(k))
        HUBS.register(name)(Hub(name, f"{k} randomly initialised {arch}s (bench only)", models))
    return name


# ------------------------------------------------------------------------------------------------------- arms
def hub_arms(hub: str) -> dict[str, tuple[Arm, ...]]:
    """The arms of the hub cases: "zoo", "collapse" and "pathway" (also used by ``--suite data``)."""
    from transferlab.models.hub import HUBS

    h = HUBS.get(hub)
    arch, k = h.require_identical_architectures("bench"), len(h.names())
    on = {"backbone": arch, "pretrained": f"hub:{hub}"}
    every = {
        **on,
        "method_params": {"lite_downsample": True},
    }  # every conv lite: the collapse is fully ordinary
    return {"zoo": (Arm("zoo_tuning", "zoo_tuning", on), Arm("finetune x1", "finetune", on, 1, finetune_from),
                    Arm(f"finetune x{k} (ensemble)", "finetune", on, k, finetune_from)),
            "collapse": (Arm("lite collapsed", "zoo_tuning_lite", on), Arm(f"plain {arch}", "scratch", {"backbone": arch}),
                         Arm("lite collapsed, lite_downsample", "zoo_tuning_lite", every)),
            "pathway": (Arm("hub_pathway k=2", "hub_pathway", {**on, "method_params": {"k": 2}}),
                        Arm(f"ensemble K={k}", "ensemble", on))}  # fmt: skip


def l2t_arms(target: str, l2t: dict, finetune: dict, build=None, finetune_build=None) -> tuple[Arm, ...]:
    return (Arm("l2t_ww", "l2t_ww", l2t, 1, build), Arm("fm (no meta step)", "fm", l2t, 1, build),
            Arm("finetune (source net)", "finetune", finetune, 1, finetune_build),
            Arm("scratch (target net)", "scratch", {"backbone": target}))  # fmt: skip


def gpu_l2t_arms() -> tuple[Arm, ...]:
    return l2t_arms(
        "vgg9_bn", {"backbone": "vgg9_bn"}, {"backbone": "cifar_resnet32"}, l2t_random_source, finetune_from
    )


# ------------------------------------------------------------------------------------------- build and step
def build_arm(case: Case, arm: Arm, device: torch.device) -> tuple[list[Method], RunConfig]:
    """The arm's model(s) in train mode, placed as fit() places them (device, channels_last, autocast dtype)."""
    run, task = bench_config(case, arm, nesterov=False), Classification(case.num_classes)
    torch.manual_seed(0)
    methods = [arm.build(run, task, i) if arm.build else METHODS.get(arm.method).build(run, task)
               for i in range(arm.copies)]  # fmt: skip
    for m in methods:
        m.to(device).train()
        channels_last(m)
        m.set_precision(autocast_dtype(run, device))
    return methods, run


def stepper(methods: list[Method], optimizers, batches):
    """One training step of every model of an arm on the next batch (cycling through ``batches``)."""
    count = itertools.count()

    def step():
        x, y = batches[next(count) % len(batches)]
        for m, o in zip(methods, optimizers, strict=True):
            m.train_step(x, y, o)

    return step


__all__ = ["RandomWeights", "build_arm", "finetune_from", "gpu_l2t_arms", "hub_arms", "l2t_arms", "l2t_random_source",
           "register_random_hub", "stepper"]  # fmt: skip
