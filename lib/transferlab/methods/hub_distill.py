"""Knowledge distillation from the hub's fine-tuned ensemble into one hub model (Hinton, Vinyals, Dean 2015).

https://arxiv.org/abs/1503.02531. Context: the "distillation" baseline of Zoo-Tuning (Shu et al., ICML 2021,
http://proceedings.mlr.press/v139/shu21b.html) and Hub-Pathway (Shu et al., NeurIPS 2022). Those papers' baseline
settings were **not verified** (``shared/docs/papers/zoo_tuning.md`` §6): every default below is ours or Hinton et
al.'s, as marked.

**Teacher.** Exactly the ``ensemble`` method (:class:`~transferlab.methods.hub_ensemble.HubEnsemble`) of this run:
the run's config with ``method="ensemble"``, default ensemble parameters (``combine="prob"``) and, if
``teacher_iterations`` > 0, that many iterations (0: the run's own). ``prepare()`` trains it with
:func:`transferlab.train.fit` on the target training split (model selection on validation) and keeps its
best-validation weights. It is built from the seed the run's own models are built from (``derive_seed(seed, 7)``)
and trained from ``derive_seed(seed, 8)`` on the same data stream, so on the CPU (deterministic kernels) it is bit
for bit the ``ensemble`` cell of the same table (tested). Afterwards it is frozen: no gradient, always in eval mode. It is a submodule,
so fit's checkpoints and best-state copies hold K + 1 models, and the result's ``params`` count them all.

Best-validation weights: ``fit(keep_best=True)`` leaves them loaded at its end.

**Cache.** ``<run dir>/teacher.pt`` holds the teacher's best-validation state, its metrics and a key: the sha256
(:func:`transferlab.methods.prepared.fingerprint`) of the teacher's initial weights (hub weights and new heads), the
ensemble config, the split, the dataset and the teacher run's config hash. A resumed or repeated distill run loads
it instead of training again; a file with another key is deleted. ``<run dir>/teacher/`` holds the teacher's own
learning curve, metrics and, while it trains, its checkpoint (an interrupted teacher resumes too).

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
or the hub papers. α = 0 is plain fine-tuning of the student. Only the student is evaluated
(``predict``); the logged terms are ``ce`` and ``kd``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from transferlab.config import ConfigError, RunConfig
from transferlab.data.pipeline import derive_seed
from transferlab.methods import prepared
from transferlab.methods.base import METHODS, Method, method_config
from transferlab.methods.hub_ensemble import HubEnsemble, combine_logits
from transferlab.methods.regularizers import kd_loss
from transferlab.methods.zoo_tuning import hub_of
from transferlab.models import Backbone
from transferlab.results import atomic_torch_save, remove_stale_temporaries

TEACHER_FILE = "teacher.pt"  # the cached best-validation teacher, in the run directory
TEACHER_DIR = "teacher"  # the teacher's own fit() output (history, metrics, checkpoint), in the run directory
SOFT_TARGETS = ("prob", "logits")
INIT_KEY = 7  # the seed key experiment.prepared_method builds the run's models from
TRAIN_KEY = 8  # the seed key experiment.train sets before fit()
TEACHER_METRICS = ("best_val", "best_step", "test_at_best_val", "test_last", "last_step", "selection")


def teacher_config(run: RunConfig, iterations: int = 0) -> RunConfig:
    """The teacher's run: ``run`` as method ``ensemble`` with its default parameters, ``iterations`` if > 0."""
    optim = dataclasses.replace(run.optim, iterations=iterations) if iterations else run.optim
    return dataclasses.replace(run, method=HubEnsemble.name, method_params={}, optim=optim)


@METHODS.register("distill")
class HubDistill(Method):
    name = "distill"
    paper = (
        "knowledge distillation (Hinton et al. 2015, https://arxiv.org/abs/1503.02531) from the fine-tuned hub "
        "ensemble: hub baseline of Zoo-Tuning (ICML 2021) and Hub-Pathway (NeurIPS 2022); settings ours"
    )

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

    def __init__(self, student: Backbone, num_classes: int, cfg: HubDistill.Config, teacher: HubEnsemble,
                 teacher_run: RunConfig, student_name: str = ""):  # fmt: skip
        super().__init__(student, num_classes, cfg)
        self.teacher = teacher.requires_grad_(False).eval()
        self.teacher_run = teacher_run
        self.student_name = student_name
        self.teacher_info: dict[str, Any] = {}  # the teacher's metrics, filled by prepare()
        self._teacher_key: str | None = None

    @classmethod
    def build(cls, run: RunConfig, num_classes: int) -> Method:
        cfg = method_config(run.method, run.method_params)
        hub = hub_of(run.pretrained, cls.name)
        names = hub.names()
        student = cfg.student or names[0]
        if student not in names:
            raise ConfigError(
                f"distill: student={student!r} is not a model of hub {hub.name!r}; valid: {', '.join(names)}"
            )
        arch = hub.model(student).arch
        if run.backbone != arch:
            raise ConfigError(
                f"distill: student {student!r} is a {arch}; the run asks for backbone {run.backbone!r}"
            )
        backbone = hub.load(student, data_root=run.data.data_root)
        backbone.reset_head(num_classes, keep_source=False)
        teacher_run = teacher_config(run, cfg.teacher_iterations)
        with torch.random.fork_rng(devices=[]):  # the teacher's heads as the ensemble run draws them
            torch.manual_seed(derive_seed(run.seed, INIT_KEY))
            teacher = HubEnsemble.build(teacher_run, num_classes)
        return cls(backbone, num_classes, cfg, teacher, teacher_run, student)

    # ------------------------------------------------------------------------------------------------ teacher
    def prepare(self, data: Any) -> None:
        """Load the cached teacher of this run, or train it (``fit``) and cache its best-validation weights."""
        if self._teacher_key is None:  # of the untrained teacher: a second prepare() finds the same file
            extra = {"teacher_run": self.teacher_run.config_hash()}
            self._teacher_key = prepared.fingerprint(self.teacher, self.teacher.cfg, data, extra)
        path = Path(data.out_dir) / TEACHER_FILE if data.out_dir else None
        saved = torch.load(path, map_location="cpu", weights_only=True) if path and path.exists() else None
        if saved is not None and saved.get("key") != self._teacher_key:
            path.unlink()  # trained from other weights, data or settings
            saved = None
        if saved is None:
            state, info = self._train_teacher(data)
            if path is not None:
                atomic_torch_save(path, {"key": self._teacher_key, "state": state, "teacher": info})
        else:
            state, info = saved["state"], saved["teacher"]
        self.teacher.load_state_dict(state)
        self.teacher.requires_grad_(False).eval()
        self.teacher_info = dict(info)

    def _train_teacher(self, data: Any) -> tuple[dict, dict]:
        from transferlab import train as tl_train  # at call time: train imports the methods package

        out = Path(data.out_dir) / TEACHER_DIR if data.out_dir else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(out)
        self.teacher.requires_grad_(True)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derive_seed(self.teacher_run.seed, TRAIN_KEY))
                result = tl_train.fit(
                    self.teacher, data.source, data.splits, data.preset, self.teacher_run, out, keep_best=True
                )
        finally:
            self.teacher.requires_grad_(False)
        m = (
            result.metrics
        )  # the teacher now holds its best-validation weights (the last step's without a val split)
        state = {k: v.detach().to("cpu", copy=True) for k, v in self.teacher.state_dict().items()}
        info = {f"teacher_{k}": m[k] for k in TEACHER_METRICS}
        info["teacher_train_time_s"] = result.cost["train_time_s"]
        return state, info

    def train(self, mode: bool = True) -> HubDistill:
        super().train(mode)
        self.teacher.eval()  # frozen: BatchNorm in inference mode whatever the student does
        return self

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """z_t [B, N] (fp32) with softmax(z_t / T) the teacher's soft targets (module docstring)."""
        z = self.teacher.member_logits(x)
        if self.cfg.soft_targets == "logits":
            return combine_logits(z, "logits")
        t = self.cfg.temperature
        return t * combine_logits([zi.float() / t for zi in z], "prob")  # T · log (1/K) Σ_i softmax(z_i / T)

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
        members = [getattr(m, "hub_model", "") for m in self.teacher.backbone]
        return {"hub": self.teacher.hub_name, "student": self.student_name, "teacher_members": members,
                "teacher_iterations": self.teacher_run.optim.iterations, **self.teacher_info}  # fmt: skip
