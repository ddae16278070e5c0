"""Knowledge distillation from the hub's fine-tuned ensemble into one hub model (Hinton, Vinyals, Dean 2015).

https://arxiv.org/abs/1503.02531. Context: the "distillation" baseline of Zoo-Tuning (Shu et al., ICML 2021,
http://proceedings.mlr.press/v139/shu21b.html) and Hub-Pathway (Shu et al., NeurIPS 2022). Those papers' baseline
settings were **not verified** (``shared/docs/papers/zoo_tuning.md`` §6): every default below is ours or Hinton et
al.'s, as marked.

**Teacher.** Exactly the ``ensemble`` cell of the same table: the run's config with ``method="ensemble"``, default
ensemble parameters (``combine="prob"``) and, if ``teacher_iterations`` > 0, that many iterations (0: the run's
own). It is a declared dependency (:meth:`HubDistill.dependencies`): the experiment layer finds the finished
ensemble run under the results root — or trains it there first, as the table would — and ``prepare()`` loads its
selected (best-validation) weights from its ``weights.pt`` (the ensemble ``saves_weights``). So the teacher *is* the
ensemble cell, bit for bit, and is never trained twice. Afterwards it is frozen: no gradient, always in eval mode.
It is a submodule, so fit's checkpoints hold K + 1 models, and the result's ``params`` count them all.

**Student.** Hub model ``student`` (default ``""``: the hub's first model — supervised ImageNet in the paper hub;
ours), with a new head (N(0, 0.01), bias 0). The run's ``backbone`` must be its architecture. For x [B, C, H, W],
student logits z_s [B, N], member logits z_i [B, N]:

    L = (1 − α) · CE(z_s, y) + α · T² · (1/B) Σ_b KL(softmax(z_t/T) ‖ softmax(z_s/T))

(:func:`~transferlab.methods.regularizers.kd_loss` with ``t_squared=True``, Hinton et al.'s T² factor). Teacher
targets (Hinton et al. name both the arithmetic and the geometric mean of an ensemble's distributions):

- ``soft_targets="prob"`` (default; ours): softmax(z_t/T) = p̄_T = (1/K) Σ_i softmax(z_i/T), the arithmetic mean
  of the members' tempered distributions, given to ``kd_loss`` as z_t = T · log p̄_T; at T = 1 it is the ensemble's
  own prediction (log of the mean probabilities).
- ``soft_targets="logits"``: z_t = (1/K) Σ_i z_i, the normalised geometric mean.

Defaults T = 4, α = 0.5 (equal weight on the hard and soft objectives) are ours, not values read from Hinton et al.
or the hub papers. α = 0 is plain fine-tuning of the student. Only the student is evaluated (``predict``); the
logged terms are ``ce`` and ``kd``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from transferlab.checkpoint import WEIGHTS
from transferlab.config import ConfigError, RunConfig
from transferlab.methods.base import METHODS, Method, method_config
from transferlab.methods.context import PrepareData
from transferlab.methods.hub_ensemble import HubEnsemble
from transferlab.methods.hubs import check_hub_backbone, hub_of
from transferlab.methods.regularizers import kd_loss
from transferlab.models import Backbone
from transferlab.models.weights import load_tensors
from transferlab.results import finished_result
from transferlab.tasks import Task

SOFT_TARGETS = ("prob", "logits")
TEACHER_METRICS = ("best_val", "best_step", "test_at_best_val", "test_last", "last_step", "selection")


def teacher_config(run: RunConfig, iterations: int = 0) -> RunConfig:
    """The teacher's run: ``run`` as method ``ensemble`` with its default parameters, ``iterations`` if > 0."""
    optim = dataclasses.replace(run.optim, iterations=iterations) if iterations else run.optim
    params = dataclasses.asdict(HubEnsemble.Config())
    return dataclasses.replace(run, method=HubEnsemble.name, method_params=params, optim=optim)


@METHODS.register("distill")
class HubDistill(Method):
    name = "distill"
    paper = (
        "knowledge distillation (Hinton et al. 2015, https://arxiv.org/abs/1503.02531) from the fine-tuned hub "
        "ensemble: hub baseline of Zoo-Tuning (ICML 2021) and Hub-Pathway (NeurIPS 2022); settings ours"
    )
    weights = "hub"

    @dataclass(frozen=True)
    class Config:
        student: str = ""  # the hub model distilled into ("": the hub's first model; ours)
        temperature: float = 4.0  # T (ours)
        alpha: float = 0.5  # α: weight of the soft (KD) term, 1 − α on the hard CE (ours)
        # "prob": the mean of the members' tempered softmaxes; "logits": the mean logits (ours)
        soft_targets: str = "prob"
        teacher_iterations: int = 0  # the teacher's training iterations (0: the run's own)

        def __post_init__(self) -> None:
            if self.temperature <= 0:
                raise ConfigError(f"temperature={self.temperature} must be > 0")
            if not 0 <= self.alpha <= 1:
                raise ConfigError(f"alpha={self.alpha} must lie in [0, 1]")
            if self.soft_targets not in SOFT_TARGETS:
                raise ConfigError(
                    f"soft_targets={self.soft_targets!r} is not valid; choose one of: {', '.join(SOFT_TARGETS)}"
                )
            if self.teacher_iterations < 0:
                raise ConfigError(
                    f"teacher_iterations={self.teacher_iterations} must be >= 0 (0: the run's own)"
                )

    def __init__(self, student: Backbone, task: Task, cfg: HubDistill.Config, teacher: HubEnsemble,
                 teacher_run: RunConfig, student_name: str = ""):  # fmt: skip
        super().__init__(student, task, cfg)
        self.teacher = teacher.requires_grad_(False).eval()
        self.teacher_run = teacher_run
        self.student_name = student_name
        self.teacher_info: dict[str, Any] = {}  # the teacher run's metrics, filled by prepare()

    @classmethod
    def _student(cls, run: RunConfig) -> str:
        cfg = method_config(run.method, run.method_params)
        hub = hub_of(run)
        student = cfg.student or hub.names()[0]
        if student not in hub.names():
            raise ConfigError(f"distill: student={student!r} is not a model of hub {hub.name!r}; valid: "
                              f"{', '.join(hub.names())}")  # fmt: skip
        return student

    @classmethod
    def check(cls, run: RunConfig) -> None:
        super().check(run)
        hub = check_hub_backbone(run, cls.name)
        student = cls._student(run)
        if run.backbone != hub.model(student).arch:
            raise ConfigError(f"distill: student {student!r} is a {hub.model(student).arch}; the run asks for "
                              f"backbone {run.backbone!r}")  # fmt: skip

    @classmethod
    def dependencies(cls, run: RunConfig) -> dict[str, RunConfig]:
        cfg = method_config(run.method, run.method_params)
        return {"teacher": teacher_config(run, cfg.teacher_iterations)}

    @classmethod
    def build(cls, run: RunConfig, task: Task) -> Method:
        cfg = method_config(run.method, run.method_params)
        student = cls._student(run)
        backbone = hub_of(run).load(student, data_root=run.data.data_root)
        backbone.reset_head(task.head(backbone.feature_dim), keep_source=False, spatial=task.spatial)
        teacher_run = cls.dependencies(run)["teacher"]
        with torch.random.fork_rng(devices=[]):  # the teacher's weights come from its run, not from this RNG
            teacher = HubEnsemble.build(teacher_run, task)
        return cls(backbone, task, cfg, teacher, teacher_run, student)

    # ------------------------------------------------------------------------------------------------ teacher
    def prepare(self, data: PrepareData) -> None:
        """Load the finished ensemble run's selected weights (``weights.pt``) into the frozen teacher."""
        try:
            run_dir = data.dependency("teacher")
        except KeyError:
            raise ConfigError(
                "distill needs its teacher, the ensemble run of the same cell: run it through "
                "transferlab.run() or `transferlab run`, which train or find it first"
            ) from None
        result = finished_result(run_dir, self.teacher_run.config_hash())
        if result is None or not (run_dir / WEIGHTS).exists():
            raise ConfigError(f"distill's teacher run {run_dir} is not finished or kept no {WEIGHTS}")
        state = load_tensors(run_dir / WEIGHTS, f"delete the teacher's run folder {run_dir} and run again")
        self.teacher.load_state_dict(state)
        self.teacher.requires_grad_(False).eval()
        m = result.metrics
        self.teacher_info = {f"teacher_{k}": m[k] for k in TEACHER_METRICS if k in m}
        self.teacher_info["teacher_run"] = str(run_dir)

    def train(self, mode: bool = True) -> HubDistill:
        super().train(mode)
        self.teacher.eval()  # frozen: BatchNorm in inference mode whatever the student does
        return self

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """z_t [B, N] (fp32) with softmax(z_t / T) the teacher's soft targets (module docstring)."""
        z = self.teacher.member_logits(x)
        if self.cfg.soft_targets == "logits":
            return self.task.combine(z, "logits")
        t = self.cfg.temperature
        return t * self.task.combine(
            [zi.float() / t for zi in z], "prob"
        )  # T · log (1/K) Σ_i softmax(z_i / T)

    # ------------------------------------------------------------------------------------------------ student
    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.cfg
        logits = self.backbone(x)
        ce = F.cross_entropy(logits, y)
        kd = kd_loss(logits.float(), self.teacher_logits(x), c.temperature, t_squared=True)
        return {"loss": (1 - c.alpha) * ce + c.alpha * kd, "ce": ce, "kd": kd, "logits": logits}

    # predict (the student), new_parameters (its head): Method's defaults; the frozen teacher has no trainable
    # parameter, so Method.param_groups leaves it out

    def artifacts(self) -> dict:
        members = [m.hub_model for m in self.teacher.backbone]
        return {"hub": self.teacher.hub_name, "student": self.student_name, "teacher_members": members,
                "teacher_iterations": self.teacher_run.optim.iterations, **self.teacher_info}  # fmt: skip
