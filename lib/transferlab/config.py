"""Frozen, validated run configuration, and its flat form for papermill parameters.

A run is described by one ``RunConfig`` (identity + ``DataConfig`` + ``OptimConfig`` + method parameters). Papermill
can only inject flat values into a notebook, so ``to_flat()`` / ``from_flat()`` map the nested dataclasses to and from
one flat dict whose keys are the field names (they are unique across the three dataclasses by construction).

Validation happens on construction: a bad value raises ``ConfigError`` naming the field and the valid values, before
any data is read or any model is built. ``config_hash()`` identifies a run by everything that changes its numbers
(run-time knobs such as the data root, the device or the worker count are left out), so the batch runner can skip
cells that already finished with the same configuration.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any

from transferlab.errors import ConfigError
from transferlab.refs import WeightsRef

PROTOCOLS = ("mini", "paper", "demo")  # demo: the mini tables at one seed on a shortened schedule (spec.py)
# The demo protocol's schedule (ours, chosen so that `make demo` fits in about ten minutes on two cores; README): every
# step count of a mini table × DEMO_STEPS_SCALE — the mini hub's pre-training included (models/mini_hub.py: the demo
# hub) — except the validation interval, × DEMO_EVAL_SCALE (about half as many validations per run as the mini run)
DEMO_STEPS_SCALE = 0.25
DEMO_EVAL_SCALE = 0.5
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "multistep", "cosine", "linear")
PRECISIONS = ("auto", "bf16", "fp32")
PIPELINES = ("pil", "cache", "device")  # transferlab.data.cached_input: the same input values, bit for bit
# torch.compile modes of the training step (transferlab.train.compile_step)
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")

# Fields that change how a run executes or how it is labelled, but not what it computes; left out of the config
# hash, so the same experiment listed in two tables (e.g. single-model rows of Zoo-Tuning and Hub-Pathway) is one run.
# ``pipeline`` gives bit-identical inputs (tested); ``compile``, like ``device``, changes which kernels compute the
# step (last-bit differences, as between two GPUs), not the experiment.
RUNTIME_FIELDS = frozenset(
    {"data_root", "num_workers", "pipeline", "device", "compile", "checkpoint_every", "paper", "table"}
)


def _choice(name: str, value: str, valid: tuple[str, ...] | list[str]) -> None:
    if value not in valid:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {', '.join(valid)}")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mini_fmnist"  # registered dataset name (transferlab.data.DATASETS)
    data_root: str = "data"  # where real datasets live (run-time only)
    sample_rate: float = 1.0  # fraction of each class's training images kept, in (0, 1]
    shots: int = 0  # k images per class instead of a rate (0: use sample_rate)
    val_fraction: float = 0.1  # share of the sampled train set carved out per class for validation
    val_per_class: int = (
        0  # >0: a fixed validation set of this many images per class, held out of the pool first
    )
    batch_size: int = 48  # training batch size
    eval_batch_size: int = 256  # batch size for validation and test
    preset: str = "auto"  # transform preset (transferlab.data.TRANSFORMS); auto: the dataset's default
    ten_crop: bool = False  # 10-crop test-time evaluation (the papers' protocol at 224 px)
    num_workers: int = 0  # DataLoader workers for file-based datasets (run-time only)
    pipeline: str = "pil"  # file-based input: pil | cache (decoded-image cache) | device (augments on device)

    def __post_init__(self) -> None:
        typed_fields(self)
        if not 0.0 < self.sample_rate <= 1.0:
            raise ConfigError(f"sample_rate={self.sample_rate} must lie in (0, 1] (e.g. 0.15, 0.3, 0.5, 1.0)")
        if self.shots < 0:
            raise ConfigError(f"shots={self.shots} must be >= 0 (0 means: use sample_rate)")
        if self.shots and self.sample_rate != 1.0:
            raise ConfigError("give either shots (k per class) or sample_rate, not both")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction={self.val_fraction} must lie in [0, 1)")
        if self.val_per_class < 0:
            raise ConfigError(
                f"val_per_class={self.val_per_class} must be >= 0 (0: carve val_fraction instead)"
            )
        for name in ("batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.num_workers < 0:
            raise ConfigError("num_workers must be >= 0")
        _choice("pipeline", self.pipeline, PIPELINES)


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.01  # base learning rate (backbone)
    momentum: float = 0.9  # SGD momentum (Adam: beta1)
    weight_decay: float = 5e-4  # L2 weight decay, applied by the optimizer
    nesterov: bool = True  # Nesterov momentum for SGD
    head_lr_mult: float = 10.0  # lr multiplier of newly initialised parameters (the target head)
    schedule: str = "multistep"  # constant | multistep | cosine | linear
    milestones: tuple[int, ...] = ()  # multistep: iterations at which lr is multiplied by gamma
    gamma: float = 0.1  # multistep decay factor
    warmup_steps: int = 0  # linear warm-up iterations before the schedule
    iterations: int = 1000  # total optimisation steps
    eval_every: int = 100  # evaluate on validation every N steps (and at the last step)
    checkpoint_every: int = (
        0  # save a resumable checkpoint every N steps (0: at every evaluation; run-time only)
    )

    def __post_init__(self) -> None:
        typed_fields(self)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        for name in ("lr", "momentum", "weight_decay", "head_lr_mult", "gamma"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name}={getattr(self, name)} must be a finite number")
        if self.lr <= 0:
            raise ConfigError(f"lr={self.lr} must be > 0 (e.g. 0.01)")
        if self.iterations < 1 or self.eval_every < 1:
            raise ConfigError("iterations and eval_every must be >= 1")
        if (
            self.weight_decay < 0
            or self.head_lr_mult <= 0
            or self.warmup_steps < 0
            or self.checkpoint_every < 0
        ):
            raise ConfigError(
                "weight_decay, warmup_steps, checkpoint_every must be >= 0 and head_lr_mult > 0"
            )
        if list(self.milestones) != sorted(self.milestones) or any(m <= 0 for m in self.milestones):
            raise ConfigError(f"milestones={self.milestones} must be increasing positive iterations")
        if self.schedule == "multistep" and not self.milestones:
            pass  # a multistep schedule without milestones is a constant lr: allowed, it is explicit


@dataclass(frozen=True)
class RunConfig:
    paper: str = "finetune"  # paper (transferlab.papers) whose table this run belongs to
    table: str = "adhoc"  # table name inside the paper ("adhoc" for interactive runs)
    protocol: str = "mini"  # mini (embedded, CPU) | paper (real data and weights, GPU) | demo (mini, short)
    method: str = "finetune"  # registered method (transferlab.methods.METHODS)
    backbone: str = "mini_resnet"  # registered backbone (transferlab.models.BACKBONES)
    pretrained: str = (
        "mini:clusters"  # weights to start from: "none", "hub:<hub>", "mini:<hub model>" or a weights name
    )
    seed: int = 0  # seeds data sampling, initialisation and augmentation
    precision: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU) | bf16 | fp32
    device: str = "auto"  # auto | cpu | cuda | cuda:N (run-time only)
    compile: str = "off"  # torch.compile the step's forward + loss: off | default | reduce-overhead | ...
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    method_params: dict[str, Any] = field(default_factory=dict)  # the method's own Config fields

    def __post_init__(self) -> None:
        typed_fields(self, skip=("data", "optim"))
        _choice("protocol", self.protocol, PROTOCOLS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("compile", self.compile, COMPILE_MODES)
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device={self.device!r} is not valid; choose auto, cpu, cuda or cuda:N")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be an integer >= 0")
        for name in ("paper", "table", "method", "backbone"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a non-empty name")
        object.__setattr__(self, "_weights", WeightsRef.parse(self.pretrained))
        # Registry names (dataset, method, backbone, preset, weights) and the method's own parameters are checked,
        # and the method's defaults filled in, by transferlab.experiment.check(): this module sits below the
        # registries. Every path to training goes through it (papers' cells, the runner, transferlab.run).

    @property
    def weights(self):
        """``pretrained`` parsed: a :class:`transferlab.refs.WeightsRef`."""
        return self._weights

    # ----------------------------------------------------------------------------------------------- flat form
    def to_flat(self) -> dict[str, Any]:
        flat: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                flat.update({g.name: _plain(getattr(value, g.name)) for g in fields(value)})
            else:
                flat[f.name] = _plain(value)
        return flat

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> RunConfig:
        """Build from a flat dict (papermill parameters). Unknown keys are an error, listing the valid ones."""
        valid = flat_field_names()
        unknown = sorted(set(flat) - set(valid))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown}; valid parameters: {', '.join(valid)}")
        sub = {"data": DataConfig, "optim": OptimConfig}
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in sub:
                kwargs[f.name] = _build(sub[f.name], flat)
            elif f.name in flat:
                kwargs[f.name] = coerce(f.name, field_type(cls, f.name), flat[f.name])
        return cls(**kwargs)

    @classmethod
    def from_namespace(cls, namespace: dict[str, Any]) -> RunConfig:
        """Build from a notebook's globals: picks exactly the flat field names (the ``parameters`` cell)."""
        names = flat_field_names()
        missing = [n for n in names if n not in namespace]
        if missing:
            raise ConfigError(f"the parameters cell does not define {missing}")
        return cls.from_flat({n: namespace[n] for n in names})

    def replace(self, **flat_overrides: Any) -> RunConfig:
        """A copy with some flat fields changed, validated again."""
        return RunConfig.from_flat({**self.to_flat(), **flat_overrides})

    def config_hash(self) -> str:
        ident = {k: v for k, v in self.to_flat().items() if k not in RUNTIME_FIELDS}
        blob = json.dumps(ident, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def run_id(self) -> str:
        """Readable and unique: the cell's coordinates plus the config hash."""
        d = self.data
        amount = f"k{d.shots}" if d.shots else f"r{round(d.sample_rate * 100):g}"
        return f"{self.table}-{d.dataset}-{self.method}-{amount}-s{self.seed}-{self.config_hash()[:8]}"


def flat_field_names() -> list[str]:
    names = []
    for f in fields(RunConfig):
        if f.name == "data":
            names += [g.name for g in fields(DataConfig)]
        elif f.name == "optim":
            names += [g.name for g in fields(OptimConfig)]
        else:
            names.append(f.name)
    return names


def _build(cls: type, flat: dict[str, Any]) -> Any:
    return cls(
        **{
            f.name: coerce(f.name, field_type(cls, f.name), flat[f.name])
            for f in fields(cls)
            if f.name in flat
        }
    )


def typed_fields(obj: Any, skip: tuple[str, ...] = ()) -> None:
    """Coerce every field of the frozen dataclass ``obj`` to its annotated type in place (an int given for a float
    becomes a float; "1,2" for a tuple of ints becomes (1, 2)), or raise ConfigError naming the field: a wrong type
    is a clear error at construction, never a TypeError deep in a comparison."""
    for f in fields(obj):
        if f.name not in skip:
            object.__setattr__(
                obj, f.name, coerce(f.name, field_type(type(obj), f.name), getattr(obj, f.name))
            )


def field_type(cls: type, name: str) -> Any:
    return _type_hints(cls)[name]


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """A class's resolved annotations, once per class: ``typing.get_type_hints`` evaluates every annotation string
    again on each call, and configs are built for every cell a table plans (it was 90 % of a report's time)."""
    return typing.get_type_hints(cls)


def _plain(value: Any) -> Any:
    """JSON-friendly: tuples become lists, dicts are sorted."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _plain(value[k]) for k in sorted(value)}
    return value


def coerce(name: str, hint: Any, value: Any) -> Any:
    """Accept what papermill, YAML and the command line produce (ints for floats, lists for tuples, "1,2")."""
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            if isinstance(value, bool | int) and value in (0, 1):
                return bool(value)
            raise TypeError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if hint is str:
            if not isinstance(value, str):
                raise TypeError
            return value
        if origin is tuple:
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v]
            if isinstance(value, int | float):
                value = [value]
            return tuple(int(v) for v in value)
        if origin is dict or hint is dict:
            if isinstance(value, str):
                value = json.loads(value) if value.strip() else {}
            if not isinstance(value, dict):
                raise TypeError
            return dict(value)
        if isinstance(hint, types.UnionType):
            return value
    except (TypeError, ValueError, json.JSONDecodeError):
        pass
    else:
        return value
    raise ConfigError(f"{name}={value!r} has the wrong type; expected {getattr(hint, '__name__', hint)}")
