"""The ``transferlab`` commands that look after the machine rather than the tables: ``bench``, ``cost``, ``data``,
``hub`` (the parser and ``run`` / ``report`` are in :mod:`transferlab.cli`)."""

from __future__ import annotations

import sys
from pathlib import Path

from transferlab.errors import ConfigError


def say_separate(paper, protocol: str) -> None:
    """Name the paper's tables that run only when named (``Table.separate``), and how to run them."""
    for t in paper.table_names(protocol, separate=True):
        table = paper.table(t, protocol)
        if table.separate:
            print(f"{paper.name}/{t} ({protocol}): skipped, runs only when named: {table.separate}")


BENCH_DEFAULTS = {  # suite → (out, steps, repeats)
    "fit": ("reports/bench.json", 60, 7),
    "methods": ("reports/bench_methods.json", 10, 5),
    "data": ("reports/bench_data.json", 20, 3),
}


def cmd_bench(args) -> int:
    out, steps, repeats = BENCH_DEFAULTS[args.suite]
    args.out = args.out or out
    args.steps = steps if args.steps is None else args.steps
    args.repeats = repeats if args.repeats is None else args.repeats
    if args.suite == "methods":
        from transferlab.perf.methods import main as bench_main
    elif args.suite == "data":
        from transferlab.perf.data import main as bench_main
    else:
        from transferlab.perf.fit import main as bench_main

    return bench_main(args)


def cmd_cost(args) -> int:
    from transferlab.papers import PAPERS
    from transferlab.perf.table import measure_tables

    work = []
    for name in args.papers:  # validate every name before measuring anything
        paper = PAPERS.get(name)
        if not args.table:
            say_separate(paper, args.protocol)
        for t in [args.table] if args.table else paper.table_names(args.protocol):
            paper.table(t, args.protocol)
            work.append((name, t))
    quick = {"steps": 5, "repeats": 3} if args.quick else {}
    measure_tables(
        work, args.protocol, args.results, memory=args.memory, **quick
    )  # shared rows: measured once
    return 0


def cmd_data(args) -> int:
    from transferlab import data
    from transferlab.data.download import FetchError
    from transferlab.data.fetch import fetch
    from transferlab.data.inventory import catalog
    from transferlab.data.sources import lookup

    if args.action == "list":
        print(f"{'dataset':22s} {'state':9s} {'fetch':7s} detail   (under {args.root})")
        for s in catalog(args.root):
            print(f"{s.name:22s} {s.state:9s} {s.how:7s} {s.detail}")
        return 0
    if args.action == "check":
        if len(args.name) > 1:
            raise ConfigError(f"check takes one dataset, got {len(args.name)}: {' '.join(args.name)}")
        src = data.load(args.name[0] if args.name else None, args.root)  # raises with the expected layout
        print(f"{src.name}: {src.num_classes} classes, {len(src.train)} train / {len(src.test)} test images")
        return 0
    if not args.name:
        raise ConfigError("fetch needs dataset names (see `transferlab data list`), e.g. cifar10 cub200")
    for name in args.name:  # every name is checked before anything is downloaded
        lookup(name)
    failed = 0
    for name in args.name:
        try:
            fetch(name, args.root, force=args.force, keep_archives=args.keep_archives)
        except FetchError as err:
            print(f"transferlab: error: {err}", file=sys.stderr)
            failed += 1
    if len(args.name) > 1:
        print(f"fetched {len(args.name) - failed} of {len(args.name)}")
    return 2 if failed else 0


def cmd_hub(args) -> int:
    from transferlab import hubbuild
    from transferlab.models.hub import HUBS
    from transferlab.models.policy_hub import POLICIES, POLICY_HUBS

    if args.hub in POLICY_HUBS:  # a hub of source policies (RL): trained by the suite, cached with checksums
        policies = POLICY_HUBS.get(args.hub).policies
        if args.action == "list":
            for p in map(POLICIES.get, policies):
                print(f"  {p.name:16s} {p.arch:10s} {p.dataset:22s} {p.description}")
            return 0
        if args.action not in ("build", "fetch", "check"):
            raise ConfigError(f"hub {args.hub!r}: choose list, build or check")
        from transferlab.models.policy_hub import cached

        for name in policies:
            meta = (
                (cached(name) or (None, None))[1]
                if args.action == "check"
                else hubbuild.ensure_policy(name)[1]
            )
            state = "not trained" if meta is None else (f"evaluation return {meta['eval_return']:.1f} "
                                                        f"({len(meta['eval_returns'])} episodes), sha256 {meta['sha256'][:12]}")  # fmt: skip
            print(f"{name:16s} {state}")
        return 0
    if args.action == "list":
        for hub in map(HUBS.get, [args.hub] if args.hub else HUBS.names()):
            print(f"{hub.name}: {hub.description}")
            for m in hub.models:
                print(f"  {m.name:22s} {m.arch:12s} {m.provenance}")
        return 0
    hub = HUBS.get(args.hub or "mini")
    if args.weights_dir and not Path(args.weights_dir).is_dir():
        raise ConfigError(
            f"--weights-dir {args.weights_dir} is not a folder: name the folder that holds the weight files"
        )
    if (
        args.action == "profile"
    ):  # how the models differ and what each offers each mini target (validation only)
        from transferlab.perf.hub_profile import format_profile, profile
        from transferlab.results import atomic_write_json

        measured = profile(hub.name)
        print(format_profile(measured))
        atomic_write_json(Path(args.out), measured)
        print(f"wrote {args.out}")
        return 0
    # pre-train and cache, with the pretext accuracies
    if args.action == "build" and hub.name in ("mini", "demo"):
        metas = hubbuild.ensure_all([m.weights.model for m in hub.models], data_root=args.root, jobs=args.jobs,
                                    from_scratch=args.from_scratch)  # fmt: skip
        for name, meta in metas.items():
            origin = "released build" if meta.get("installed_from") else "trained here"
            print(f"{name:14s} pretext test {meta['pretext_test_top1']:.1f}%  sha256 {meta['sha256'][:12]}  "
                  f"({origin})")  # fmt: skip
        return 0
    if args.action == "check":
        statuses = hub.check(args.weights_dir)
    else:  # fetch (build, for a hub of published weights): download or pre-train what is missing
        statuses = hub.fetch(args.weights_dir, args.root)
    ok = sum(s.ok for s in statuses)
    print(f"hub {hub.name}: {ok} of {len(statuses)} files ok")
    print(f"{'model':22s} {'status':8s} {'file':45s} source")
    for s in statuses:
        print(f"{s.model:22s} {s.status:8s} {s.file:45s} {s.source}")
        if s.path is not None:
            print(f"{'':31s} at {s.path}")
        for line in s.detail.splitlines():
            print(f"{'':31s} {line}")
    return 0 if ok == len(statuses) else 1


__all__ = ["BENCH_DEFAULTS", "cmd_bench", "cmd_cost", "cmd_data", "cmd_hub", "say_separate"]
