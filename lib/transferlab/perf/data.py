"""``transferlab bench --suite data``: images/s from JPEG files on disk, through an input path, into a training step,
beside the same step on batches already on the device — the loss to data loading as one ratio, per input path.

Per case arm (a model or hub method at its paper input size) and per ``--pipelines`` entry (``pil``: decode and PIL
augmentation per image in the workers; ``cache``: the decoded-image cache, PIL augmentation; ``device``: the cache,
augmentation on the device — :mod:`transferlab.data.cached_input`):

- ``bare img/s``: the arm's ``train_step`` on synthetic batches already on the device (as ``--suite methods``);
- ``loader img/s``: the training stream alone, batches delivered to the device, no model;
- ``e2e img/s``: the training stream feeding the arm's ``train_step``; ``ratio`` = e2e / bare (1: loading is free).

Each stream is built before timing (``cache_build_s``: the first build of a dataset × preset's cache, paid once) and
warmed up; then ``repeats`` alternating rounds of ``steps`` steps of bare, loader and e2e (medians). With ``--check``
(default on) the first training batch of the device path is compared with the PIL path's on the case's device:
``identical_to_pil`` (bit for bit). ``--compile MODE`` also times the bare step ``torch.compile``-d.

Cases on CUDA (random weights): ResNet-50 at 224 px, batch 48 and 128; the 5-model hub methods at 224 px, batch 48
(Zoo-Tuning, Hub-Pathway k = 2, the ensemble); L2T-ww's 32 px step (batch 128). On the CPU: small stand-ins (VGG-9
and L2T-ww at 32 px, ResNet-18 at 224 px). The tree: ``--tree`` (an ImageFolder, e.g. CIFAR-10's JPEGs), else a
generated one (``make_tree``: gradients and noise, 500 × 375 px like the papers' photos, so decoding costs what
theirs does); ``--images`` training images of it (an evenly spaced subset).
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from transferlab.config import ConfigError
from transferlab.data.base import DatasetSource
from transferlab.data.folders import ImageFiles, read_image_folder
from transferlab.data.pipeline import TrainStream
from transferlab.data.transforms import TRANSFORMS
from transferlab.experiment import setup_runtime
from transferlab.perf.arms import build_arm, gpu_l2t_arms, hub_arms, register_random_hub, stepper
from transferlab.perf.common import (
    WARMUP_STEPS,
    Arm,
    Case,
    Column,
    alternate,
    bench_config,
    format_table,
    load_average,
    summary,
    synthetic_batches,
    timed,
    write_report,
)
from transferlab.train import compile_step, make_optimizer


def make_tree(root: Path, classes: int = 4, per_class: int = 32, size=(500, 375)) -> Path:
    """An ImageFolder tree ``root/{train,test}/c<k>/*.jpg`` of JPEGs (gradient + noise, quality 90)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for part, n in (("train", per_class), ("test", max(1, per_class // 4))):
        for c in range(classes):
            folder = root / part / f"c{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                base = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, (37 * c + i) % 256)], -1)
                noisy = np.clip(base + rng.integers(-30, 31, base.shape), 0, 255).astype(np.uint8)
                Image.fromarray(noisy).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def load_tree(tree: Path, images: int) -> DatasetSource:
    """The tree's training part limited to ``images`` evenly spaced files (every class kept in proportion)."""
    parts = read_image_folder(Path(tree))
    files: ImageFiles = parts.train.dataset  # type: ignore[assignment]
    pick = np.linspace(0, len(files) - 1, min(images, len(files))).round().astype(int)
    train = ImageFiles([files.paths[i] for i in pick], files.targets[pick]).part()
    return DatasetSource(f"bench_tree_{len(pick)}", parts.classes, train, parts.test)


def gpu_cases(num_classes: int) -> list[Case]:
    def r50(b):
        return Case(f"resnet50_b{b}", "cuda", (3, 224, 224), b, num_classes,
                    (Arm("resnet50", "scratch", {"backbone": "resnet50"}),), "data", preset="imagenet224")  # fmt: skip

    hub = hub_arms(register_random_hub())
    arms = (hub["zoo"][0], hub["pathway"][0], hub["pathway"][1])  # zoo_tuning, hub_pathway k=2, ensemble K=5
    return [r50(48), r50(128), Case("hub5_r50_b48", "cuda", (3, 224, 224), 48, num_classes, arms, "data",
                                    preset="imagenet224"),
            Case("l2t_32_b128", "cuda", (3, 32, 32), 128, num_classes, gpu_l2t_arms()[:1], "data", preset="cifar32")]  # fmt: skip


def cpu_cases(num_classes: int) -> list[Case]:
    return [Case("vgg9_32_b64", "cpu", (3, 32, 32), 64, num_classes, (Arm("vgg9_bn", "scratch", {"backbone": "vgg9_bn"}),),
                 "data", preset="cifar32"),
            Case("l2t_32_b32", "cpu", (3, 32, 32), 32, num_classes, gpu_l2t_arms()[:1], "data", preset="cifar32"),
            Case("resnet18_b16", "cpu", (3, 224, 224), 16, num_classes,
                 (Arm("resnet18", "scratch", {"backbone": "resnet18"}),), "data", preset="imagenet224")]  # fmt: skip


def _stream(case: Case, src: DatasetSource, pipeline: str, workers: int, device) -> tuple[TrainStream, float]:
    t0 = time.perf_counter()
    stream = TrainStream(src.train, np.arange(len(src.train)), TRANSFORMS.get(case.preset), case.batch_size, 0,
                         device, workers, pipeline)  # fmt: skip
    return stream, time.perf_counter() - t0


def _identical(case: Case, src: DatasetSource, device) -> bool:
    """The device path's first training batch equals the PIL path's, bit for bit, on ``device``."""
    a = next(_stream(case, src, "pil", 0, device)[0].batches(0))
    b = next(_stream(case, src, "device", 0, device)[0].batches(0))
    return bool(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]))


def measure_arm(
    case: Case, arm: Arm, src, pipelines, workers: int, steps: int, repeats: int, compile_mode: str
):
    device = setup_runtime(bench_config(case, arm))
    methods, run = build_arm(case, arm, device)
    optimizers = [make_optimizer(m, run) for m in methods]
    bare = stepper(methods, optimizers, synthetic_batches(case, device))
    runs, labels, builds = [lambda: timed(bare, steps, device)], ["bare"], {}
    for pipeline in pipelines:
        stream, builds[pipeline] = _stream(case, src, pipeline, workers, device)
        feed, load = stream.batches(0), stream.batches(0)

        def e2e(feed=feed):
            x, y = next(feed)
            for m, o in zip(methods, optimizers, strict=True):
                m.train_step(x, y, o)

        def loader(load=load):
            next(
                load
            )  # its copies and augmentation are queued on the device: timed() synchronises at the end

        runs += [lambda fn=loader: timed(fn, steps, device), lambda fn=e2e: timed(fn, steps, device)]
        labels += [f"{pipeline} loader", f"{pipeline} e2e"]
        timed(loader, WARMUP_STEPS, device)
        timed(e2e, WARMUP_STEPS, device)
    timed(bare, WARMUP_STEPS, device)
    times = alternate(runs, repeats)
    rows = [{"arm": arm.label, "label": label, **summary(t, times[0], steps, case.batch_size)}
            for label, t in zip(labels, times, strict=True)]  # fmt: skip
    for row in rows[1:]:
        row["ratio"] = row["images_per_s"] / rows[0]["images_per_s"]  # e2e (or loader) / bare
        row["cache_build_s"] = builds[row["label"].split()[0]]
    if compile_mode != "off":
        compile_step(methods[0], compile_mode)  # shadows loss on the first model only: single-model arms
        timed(bare, WARMUP_STEPS, device)
        t = [timed(bare, steps, device) for _ in range(repeats)]
        rows.append({"arm": arm.label, "label": f"bare compiled ({compile_mode})", **summary(t, times[0], steps,
                     case.batch_size)})  # fmt: skip
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


COLUMNS = [Column("case", "case", width=14), Column("arm", "arm", width=16), Column("label", "path", width=24),
           Column("images_per_s", "img/s", ".1f"), Column("ms", "ms/step", ".2f"),
           Column("ratio", "/ bare", ".3f", 7), Column("cache_build_s", "build s", ".2f", 8),
           Column("spread", "spread", ".2f", 6)]  # fmt: skip


def main(args, cases: list[Case] | None = None) -> int:
    steps, repeats = int(args.steps), int(args.repeats)
    if steps < 1 or repeats < 1:
        raise ConfigError("--steps and --repeats must be >= 1")
    pipelines = [p for p in (getattr(args, "pipelines", None) or "pil,cache,device").split(",") if p]
    workers = getattr(args, "workers", None)
    workers = min(8, torch.multiprocessing.cpu_count()) if workers is None else int(workers)
    gpu = torch.cuda.is_available() and not getattr(args, "cpu_only", False)
    with tempfile.TemporaryDirectory(prefix="transferlab-bench-data-") as tmp:
        tree = Path(args.tree) if getattr(args, "tree", None) else make_tree(Path(tmp) / "tree")
        src = load_tree(tree, int(getattr(args, "images", 2048)))
        if cases is None:
            cases = gpu_cases(src.num_classes) if gpu else cpu_cases(src.num_classes)
        names = [c.name for c in cases]
        pick = [n for n in (getattr(args, "cases", None) or "all").split(",") if n and n != "all"] or names
        if unknown := sorted(set(pick) - set(names)):
            raise ConfigError(f"unknown bench case(s) {unknown}; cases: {', '.join(names)}")
        load_before, results = load_average(), []
        for case in (c for c in cases if c.name in pick):
            device, rows = torch.device(case.device), []
            for arm in case.arms:
                rows += measure_arm(
                    case, arm, src, pipelines, workers, steps, repeats, getattr(args, "compile", "off")
                )
            check = _identical(case, src, device) if getattr(args, "check", True) else None
            results.append({"name": case.name, "device": str(device), "preset": case.preset,
                            "batch_size": case.batch_size, "image_shape": list(case.shape), "steps": steps,
                            "repeats": repeats, "warmup_steps": WARMUP_STEPS, "workers": workers,
                            "identical_to_pil": check, "rows": rows})  # fmt: skip
    legend = (f"img/s: medians of {repeats} alternating round(s) of {steps} step(s); loader = the input path alone "
              "(to the device), e2e = input path + training step; / bare = img/s over the step on device-resident "
              f"batches; {workers} DataLoader worker(s); build s: building the stream (and its decoded-image cache)")  # fmt: skip
    lines = [{"case": r["name"] if i == 0 else "", **row} for r in results for i, row in enumerate(r["rows"])]
    body = {"steps": steps, "repeats": repeats, "tree": str(getattr(args, "tree", None) or "generated"), "images": len(src.train),
            "pipelines": pipelines, "benchmarks": results}  # fmt: skip
    write_report(args.out, "data", load_before, body, legend, format_table(lines, COLUMNS) if lines else "",
                 "cuda" if gpu else "cpu")  # fmt: skip
    for r in results:
        if r["identical_to_pil"] is not None:
            print(
                f"note: {r['name']}: device-path batch identical to the PIL path's: {r['identical_to_pil']}"
            )
    return 0


__all__ = ["cpu_cases", "gpu_cases", "load_tree", "main", "make_tree", "measure_arm"]
