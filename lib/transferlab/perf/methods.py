"""``transferlab bench --suite methods``: the cost of one training step of a method relative to another, measured.

Each case pits a subject (``arms[0]``) against baselines on the SAME pre-generated batches (made once, on the device,
channels_last) in one process, with fit()'s optimizer and precision (fp32 CPU, bf16 autocast GPU). Every arm takes
``WARMUP_STEPS`` steps; then ``repeats`` runs of ``steps`` steps alternate the arms' order; ``t ratio`` = median over
repeats of subject time / arm time (> 1: subject slower). ``peak MB``: :func:`transferlab.perf.cost.step_peak_memory`
(CUDA max_memory_allocated; CPU: RSS high-water mark in a fresh process); ``mem ratio`` = subject / arm. An ensemble
arm is K separately built models, each stepped on every batch (not the ``ensemble`` method).

Cases (``mini_cases``: CPU, 1×28×28; ``gpu_cases``: CUDA, random weights — a step's time does not depend on them):
``l2t``: L2T-ww vs FM (same, no meta-step), fine-tuning the source net, scratch of the target net (mini: hub
``clusters`` ResNet-8 → ``mini_vgg``, b32; GPU: ``l2t_resnet32`` → ``vgg9_bn``, 32×32, b128). ``zoo``: Zoo-Tuning
vs one fine-tuning vs K fine-tuning steps (mini hub K=5, b32 and b64; GPU: 5 ResNet-50s, 224, b32). ``collapse``: lite
Zoo-Tuning inference after ``collapse()`` vs a plain backbone of the architecture (and vs not collapsed), with
``max_abs_logit_diff`` = max |collapsed − predict| logits in fp32. ``pathway``: Hub-Pathway k=2 vs ``ensemble`` over
all K, target t ratio <= 0.6. A case whose methods are not registered is skipped with a note.

The table goes to stdout; numbers, machine, load average and provenance to ``args.out`` (JSON, written atomically).
Return code 0 whatever the numbers: timings on a shared machine are evidence, not a gate.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import itertools
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from transferlab.config import ConfigError, RunConfig
from transferlab.experiment import setup_runtime
from transferlab.methods import METHODS, Method, method_config
from transferlab.models import BACKBONES, build_backbone
from transferlab.perf import fit as bench
from transferlab.perf.cost import count_macs, count_params, step_peak_memory, timed
from transferlab.perf.fit import _load, machine
from transferlab.results import atomic_write_json, provenance
from transferlab.tasks import Task
from transferlab.tasks.classification import Classification
from transferlab.train import autocast_dtype, channels_last, make_optimizer

WARMUP_STEPS = 3
MAX_DISTINCT_BATCHES = 4
NOISY_SPREAD = (
    1.25  # slowest / fastest timed run of an arm above this: say the median ratio is not to be trusted
)
OPTIONAL_METHOD_MODULES = ("hub_ensemble", "hub_distill", "hub_pathway")  # other workers' methods, if present


@dataclass(frozen=True)
class Arm:
    """One contender: ``method`` (registered) built from flat RunConfig overrides ``params``; ``copies`` > 1 is an
    ensemble of separately built models, each stepped on every batch; ``build(run, num_classes, copy index)``
    replaces ``METHODS.get(method).build`` where weights must be random (no published file offline)."""

    label: str
    method: str
    params: Mapping = field(default_factory=dict)
    copies: int = 1
    build: Callable | None = None


@dataclass(frozen=True)
class Case:
    name: str
    device: str
    shape: tuple[int, int, int]
    batch_size: int
    num_classes: int
    arms: tuple[Arm, ...]  # arms[0] is the subject; ratios are subject / arm
    kind: str = "train"  # "train": step time and memory; "collapse": inference of the collapsed lite model
    target: float | None = None  # the design target of the t ratio subject / arms[-1], where one is stated


# ----------------------------------------------------------------------------------- builders (random weights)
def finetune_from(run: RunConfig, task: Task, i: int) -> Method:
    """``finetune`` (as Method.build) of model i of the hub ``run.pretrained = "hub:<name>"``, or, with
    ``pretrained="none"``, of ``run.backbone`` with random weights (a step costs the same with any weights)."""
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
    cfg = method_config(run.method, dict(run.method_params))
    return cls(target, task, cfg, source, pairs, *widths)


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


# ------------------------------------------------------------------------------------------------------ cases
def hub_cases(device: str, hub: str, shape: tuple, batch_sizes, num_classes: int, tag: str) -> list[Case]:
    """zoo (per batch size), collapse and pathway cases for one hub."""
    from transferlab.models.hub import HUBS

    h = HUBS.get(hub)
    arch, k = h.require_identical_architectures("bench"), len(h.names())
    on = {"backbone": arch, "pretrained": f"hub:{hub}"}
    zoo = (Arm("zoo_tuning", "zoo_tuning", on), Arm("finetune x1", "finetune", on, 1, finetune_from),
           Arm(f"finetune x{k} (ensemble)", "finetune", on, k, finetune_from))  # fmt: skip
    every = {
        **on,
        "method_params": {"lite_downsample": True},
    }  # every conv lite: the collapse is fully ordinary
    lite = (Arm("lite collapsed", "zoo_tuning_lite", on), Arm(f"plain {arch}", "scratch", {"backbone": arch}),
            Arm("lite collapsed, lite_downsample", "zoo_tuning_lite", every))  # fmt: skip
    path = (Arm("hub_pathway k=2", "hub_pathway", {**on, "method_params": {"k": 2}}),
            Arm(f"ensemble K={k}", "ensemble", on))  # fmt: skip
    return [*(Case(f"zoo_{tag}_b{b}", device, shape, b, num_classes, zoo) for b in batch_sizes),
            Case(f"collapse_{tag}", device, shape, batch_sizes[-1], num_classes, lite, "collapse"),
            *(Case(f"pathway_{tag}_b{b}", device, shape, b, num_classes, path, target=0.6) for b in batch_sizes)]  # fmt: skip


def l2t_arms(target: str, l2t: dict, finetune: dict, build=None, finetune_build=None) -> tuple[Arm, ...]:
    return (Arm("l2t_ww", "l2t_ww", l2t, 1, build), Arm("fm (no meta step)", "fm", l2t, 1, build),
            Arm("finetune (source net)", "finetune", finetune, 1, finetune_build),
            Arm("scratch (target net)", "scratch", {"backbone": target}))  # fmt: skip


def mini_cases(hub: str = "mini", l2t_source: str = "mini:clusters", batch_sizes=(32, 128), num_classes=10):
    """The CPU cases on 1×28×28 images (tests pass a tiny hub and source)."""
    l2t = {"backbone": "mini_vgg", "method_params": {"source": l2t_source}}
    arms = l2t_arms("mini_vgg", l2t, {"backbone": "mini_resnet", "pretrained": l2t_source})
    l2t_case = Case("l2t_mini", "cpu", (1, 28, 28), 32, num_classes, arms)
    return [l2t_case, *hub_cases("cpu", hub, (1, 28, 28), batch_sizes, num_classes, "mini")]


def gpu_cases() -> list[Case]:
    arms = l2t_arms("vgg9_bn", {"backbone": "vgg9_bn"}, {"backbone": "cifar_resnet32"}, l2t_random_source,
                    finetune_from)  # fmt: skip
    l2t_case = Case("l2t_32", "cuda", (3, 32, 32), 128, 100, arms)
    return [l2t_case, *hub_cases("cuda", register_random_hub(), (3, 224, 224), (32,), 100, "r50")]


# ---------------------------------------------------------------------------------------------------- running
def run_config(case: Case, arm: Arm) -> RunConfig:
    """``transferlab bench``'s run (SGD, momentum 0.9, wd 5e-4, constant lr 0.01, precision auto) with the arm's
    overrides; no Nesterov, because L2T-ww's look-ahead replays plain momentum SGD (and all arms share one optimizer)."""
    c, h = case.shape[0], case.shape[1]
    fit_case = bench.Case(case.name, "mini_resnet", case.device, c, h, case.batch_size, case.num_classes)
    return bench.run_config(fit_case, case.batch_size, 1).replace(
        method=arm.method, nesterov=False, **arm.params
    )


def build_arm(case: Case, arm: Arm, device: torch.device) -> tuple[list[Method], RunConfig]:
    """The arm's model(s) in train mode, placed as fit() places them (device, channels_last, autocast dtype)."""
    run, task = run_config(case, arm), Classification(case.num_classes)
    torch.manual_seed(0)
    methods = [
        arm.build(run, task, i) if arm.build else METHODS.get(arm.method).build(run, task)
        for i in range(arm.copies)
    ]
    for m in methods:
        m.to(device).train()
        channels_last(m)
        m.set_precision(autocast_dtype(run, device))
    return methods, run


def alternate(case: Case, labels, fns: list[Callable], steps: int, repeats: int, device) -> list[dict]:
    """Warm-up, then ``repeats`` runs of ``steps`` calls of each fn in alternating order; one summary per fn."""
    for fn in fns:
        timed(fn, WARMUP_STEPS, device)
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        for i in range(len(fns)) if r % 2 == 0 else reversed(range(len(fns))):
            times[i].append(timed(fns[i], steps, device))
    return [{"label": label, "ms_all": [s / steps * 1e3 for s in t], "ms": statistics.median(t) / steps * 1e3,
             "images_per_s": steps * case.batch_size / statistics.median(t),
             "t_ratio": statistics.median(a / b for a, b in zip(times[0], t, strict=True)),
             "t_ratio_of_min": min(times[0]) / min(t), "spread": max(t) / min(t)}
            for label, t in zip(labels, times, strict=True)]  # fmt: skip


def run_train(case: Case, device, batches, steps: int, repeats: int, memory: bool) -> dict:
    built = [build_arm(case, a, device) for a in case.arms]
    opts = [[make_optimizer(m, run) for m in ms] for ms, run in built]

    def stepper(ms, optimizers):
        count = itertools.count()

        def step():
            x, y = batches[next(count) % len(batches)]
            for m, o in zip(ms, optimizers, strict=True):
                m.train_step(x, y, o)

        return step

    fns = [stepper(ms, o) for (ms, _), o in zip(built, opts, strict=True)]
    rows = alternate(case, [a.label for a in case.arms], fns, steps, repeats, device)
    del fns, opts
    x, y = batches[0]
    for row, arm, (ms, run) in zip(rows, case.arms, built, strict=True):
        row.update(method=arm.method, models=len(ms), params=sum(count_params(m) for m in ms))
        with torch.no_grad():
            row["macs_train_forward_per_image"] = sum(count_macs(m.loss, x, y) for m in ms) / len(x)
        gc.collect()
        row.update(step_peak_memory(ms, (x, y), run) if memory else {"peak_step_mb": None})
    for row in rows:
        a, b = rows[0]["peak_step_mb"], row["peak_step_mb"]
        row["mem_ratio"] = a / b if a and b else None
    return {"arms": rows}


def _collapsed(case: Case, arm: Arm, device, batches):
    """A lite model trained for the warm-up steps (so the EMA gates leave their zero start), in eval mode, and its
    collapse(); with the run config."""
    (lite,), run = build_arm(case, arm, device)
    opt = make_optimizer(lite, run)
    for x, y in batches[:WARMUP_STEPS]:
        lite.train_step(x, y, opt)
    lite.eval()
    collapsed = lite.collapse()
    channels_last(collapsed)
    return lite, collapsed, run


def run_collapse(case: Case, device, batches, steps: int, repeats: int) -> dict:
    lite, collapsed, run = _collapsed(case, case.arms[0], device, batches)
    _, every, _ = _collapsed(case, case.arms[2], device, batches)  # lite_downsample: every conv collapsed
    (plain,), _ = build_arm(case, case.arms[1], device)
    plain.eval()
    x, amp = batches[0][0], autocast_dtype(run, device)
    with torch.no_grad():  # the agreement check in fp32, whatever the timing precision
        diff = float((collapsed(x).float() - lite.predict(x).float()).abs().max())

    def infer(fn):
        def call():
            with torch.no_grad(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                fn(x)

        return call

    labels = [a.label for a in case.arms] + ["lite (not collapsed)"]
    models = (collapsed, plain, every, lite)
    fns = [infer(collapsed), infer(plain.predict), infer(every), infer(lite.predict)]
    rows = alternate(case, labels, fns, steps, repeats, device)
    for row, model in zip(rows, models, strict=True):
        row.update(params=count_params(model), peak_step_mb=None, mem_ratio=None)
    return {"arms": rows, "max_abs_logit_diff": diff}


def run_case(case: Case, steps: int, repeats: int, memory: bool) -> dict:
    device = setup_runtime(run_config(case, case.arms[0]))
    gen, shape = torch.Generator(device=device).manual_seed(0), (case.batch_size, *case.shape)
    batches = [(torch.randn(shape, generator=gen, device=device).contiguous(memory_format=torch.channels_last),
                torch.randint(0, case.num_classes, shape[:1], generator=gen, device=device))
               for _ in range(min(steps, MAX_DISTINCT_BATCHES))]  # fmt: skip
    out = {"name": case.name, "kind": case.kind, "device": str(device), "batch_size": case.batch_size,
           "image_shape": list(case.shape), "steps": steps, "repeats": repeats, "warmup_steps": WARMUP_STEPS,
           "precision": "bf16 autocast" if device.type == "cuda" else "fp32", "target_t_ratio": case.target}  # fmt: skip
    if case.kind == "collapse":
        out.update(run_collapse(case, device, batches, steps, repeats))
    else:
        out.update(run_train(case, device, batches, steps, repeats, memory))
    if case.target is not None:
        out["verdict"] = "ok" if out["arms"][-1]["t_ratio"] <= case.target else "OVER"
    return out


# ------------------------------------------------------------------------------------------------ report, main
def format_table(results: list[dict]) -> str:
    def f(v, spec):
        return "-" if v is None else format(v, spec)

    head = (f"{'case':<18} {'arm':<26} {'ms/step':>9} {'img/s':>9} {'peak MB':>8} {'MMAC/img':>9} "
            f"{'t ratio':>7} {'mem ratio':>9} | {'min ratio':>9} {'spread':>6}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in results:
        for i, a in enumerate(r["arms"]):
            macs = a.get("macs_train_forward_per_image")
            lines.append(f"{r['name'] if i == 0 else '':<18} {a['label']:<26} {a['ms']:>9.2f} {a['images_per_s']:>9.1f} "
                         f"{f(a['peak_step_mb'], '8.1f'):>8} {f(macs and macs / 1e6, '9.2f'):>9} "
                         f"{a['t_ratio']:>7.3f} {f(a['mem_ratio'], '9.2f'):>9} | {a['t_ratio_of_min']:>9.3f} {a['spread']:>6.2f}")  # fmt: skip
    return "\n".join(lines)


def main(args, cases: list[Case] | None = None) -> int:
    """Run the cases named by ``args.cases`` (comma list or "all"); ``cases`` replaces the default list (tests)."""
    steps, repeats = int(args.steps), int(args.repeats)
    if steps < 1 or repeats < 1:
        raise ConfigError("--steps and --repeats must be >= 1")
    for mod in OPTIONAL_METHOD_MODULES:  # hub methods that other modules may add: register them if present
        if importlib.util.find_spec(f"transferlab.methods.{mod}") is not None:
            importlib.import_module(f"transferlab.methods.{mod}")
    gpu = torch.cuda.is_available() and not getattr(args, "cpu_only", False)
    if cases is None:
        cases = ([] if getattr(args, "gpu_only", False) else mini_cases()) + (gpu_cases() if gpu else [])
    names = [c.name for c in cases]
    pick = [n for n in (getattr(args, "cases", None) or "all").split(",") if n and n != "all"] or names
    if unknown := sorted(set(pick) - set(names)):
        raise ConfigError(f"unknown bench case(s) {unknown}; cases: {', '.join(names)}")
    load_before, results, skipped = _load(), [], []
    for case in (c for c in cases if c.name in pick):
        if missing := [a.method for a in case.arms if a.method not in METHODS]:
            skipped.append({"case": case.name, "reason": f"method(s) {missing} not registered"})
            print(f"note: {case.name} skipped: method(s) {', '.join(missing)} not registered yet")
            continue
        t0, row = time.perf_counter(), None
        try:
            row = run_case(case, steps, repeats, getattr(args, "memory", True))
        except Exception as err:  # noqa: BLE001 (one failing case, e.g. out of memory, must not lose the others)
            skipped.append({"case": case.name, "reason": f"failed: {type(err).__name__}: {err}"})
            print(f"note: {case.name} failed: {type(err).__name__}: {err}")
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if row is not None:
            results.append({**row, "wall_s": time.perf_counter() - t0})
    mach, load_after = machine(), _load()
    gpu_text = f", GPU {mach['gpu']}" if mach["gpu"] else ""
    print(
        f"machine: {mach['cpu_model']}, {mach['cpu_count']} CPUs, {mach['torch_threads']} threads" + gpu_text
    )
    print(f"load average (1/5/15 min): before {load_before}, after {load_after}")
    print(f"t ratio = subject (first arm) time / arm time, median of {repeats} alternating repeat(s) of {steps} "
          "step(s); mem ratio = subject / arm peak step memory; MMAC/img: training forward; min ratio = best "
          "subject / best arm time; spread = slowest / fastest run of the arm")  # fmt: skip
    if results:
        print(format_table(results))
    for r in results:
        if noisy := [a["label"] for a in r["arms"] if a["spread"] > NOISY_SPREAD]:
            print(f"note: {r['name']}: runs of {', '.join(noisy)} varied > x{NOISY_SPREAD} (machine busy?): "
                  "trust the min ratio more than the median")  # fmt: skip
        if "max_abs_logit_diff" in r:
            print(f"note: {r['name']}: max |collapsed - predict| logits = {r['max_abs_logit_diff']:.2e}")
        if r["target_t_ratio"] is not None:
            print(f"note: {r['name']}: t ratio {r['arms'][-1]['t_ratio']:.3f} (target <= {r['target_t_ratio']}): "
                  f"{r['verdict']}")  # fmt: skip
    report = {"schema": 1, "suite": "methods", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "steps": steps,
              "repeats": repeats, "machine": mach, "load_average": {"before": load_before, "after": load_after},
              "provenance": provenance("cuda" if gpu else "cpu"), "benchmarks": results, "skipped": skipped}  # fmt: skip
    atomic_write_json(Path(args.out), report)
    print(f"wrote {args.out}")
    return 0


__all__ = ["Arm", "Case", "format_table", "gpu_cases", "hub_cases", "main", "mini_cases", "run_case"]
