"""The ``transferlab`` command line: ``run``, ``report``, ``bench``, ``cost``, ``data``, ``hub``.

Every command validates its arguments before doing any work and names the valid values when one is wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from transferlab import env
from transferlab.cli_tools import BENCH_DEFAULTS, cmd_bench, cmd_cost, cmd_data, cmd_hub, say_separate
from transferlab.errors import ConfigError, TransferlabError


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds must be integers like '0 1 2' or '0,1,2', got {text!r}"
        ) from None


def _assignment(text: str) -> tuple[str, object]:
    """``key=value`` → (key, value); the value is read as JSON where it parses (numbers, true/false, lists)."""
    import json

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def cmd_run(args) -> int:
    from transferlab.papers import PAPERS

    if args.paper == "all" and args.table:
        raise ConfigError("--table needs one paper, not 'all'")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    if args.seeds and any(s < 0 for chunk in args.seeds for s in chunk):
        raise ConfigError(f"--seeds must be integers >= 0, got {[s for chunk in args.seeds for s in chunk]}")
    papers = PAPERS.names() if args.paper == "all" else [args.paper]
    work = []
    for name in papers:  # validate every paper and table before running any
        paper = PAPERS.get(name)
        if not args.table:
            say_separate(paper, args.protocol)
        for t in [args.table] if args.table else paper.table_names(args.protocol):  # design grids: when named
            table = paper.table(t, args.protocol)
            if args.complete_only and any(c.missing for c in table.cells(paper=name)):
                print(f"{name}/{t} ({args.protocol}): skipped, some of its methods are not implemented yet")
                continue
            work.append((name, t))
    seeds = [s for chunk in args.seeds for s in chunk] if args.seeds else None
    where: dict = {}
    for key, value in args.where or []:
        where.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    overrides = dict(args.set or [])
    from transferlab.runner import plan, run_tables

    for name, t in work:  # every cell of every table validated (names, values, methods' preconditions) first
        plan(name, t, args.protocol, seeds, args.results, where, overrides)
    if args.via_notebook:
        if where or overrides or args.executor != "local" or args.dry_run:
            raise ConfigError(
                "--via-notebook runs the tables as they are: no --where, --set, --dry-run or slurm"
            )
        from transferlab.runner.via_notebook import run_papers

        return run_papers(work, args.protocol, seeds, args.jobs, args.results)
    counts = run_tables(work, args.protocol, seeds, args.jobs, args.executor, args.dry_run, args.results,
                        where=where, overrides=overrides, notebooks=args.notebooks)  # fmt: skip
    return 1 if counts.get("failed") else 0


def cmd_report(args) -> int:
    from transferlab.papers import PAPERS
    from transferlab.publish import build_index, build_reports
    from transferlab.results import writable_folder

    names = PAPERS.names() if args.all else [args.paper]
    if not args.all and args.paper is None:
        raise ConfigError(f"name a paper or pass --all; papers: {', '.join(PAPERS.names())}")
    for name in names:
        PAPERS.get(name)
    if not Path(args.results).is_dir():
        raise ConfigError(f"results folder {args.results} does not exist; run a table first "
                          "(`transferlab run <paper>`) or pass --results <folder>")  # fmt: skip
    if args.markdown:  # the result tables and claim verdicts as Markdown, on stdout
        from transferlab.reports_markdown import paper_markdown

        for name in names:
            print(paper_markdown(name, args.results, args.protocol))
        return 0
    writable_folder(args.out, "report folder", "pass --out <a writable folder>")  # before papermill starts
    build_reports(names, args.results, args.out, jobs=args.jobs)
    print(f"wrote {build_index(PAPERS.names(), args.out, args.results)}")
    return 0


def _papers_and_tables() -> str:
    from transferlab.papers import PAPERS

    lines = []
    for name in PAPERS.names():
        spec = PAPERS.get(name)
        mini = ", ".join(spec.table_names("mini", separate=True))
        paper = ", ".join(spec.table_names("paper", separate=True))
        lines.append(f"  {name:12s} mini: {mini or '-'}; paper: {paper or '-'}")
    return ("papers and their tables:\n" + "\n".join(lines) + "\n  --protocol demo runs each paper's mini results "
            "tables (not the separate ones) at seed 0 with every step count x 1/4: make demo's first look")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    from transferlab.config import PROTOCOLS
    from transferlab.version import __version__

    p = argparse.ArgumentParser(prog="transferlab", description=__doc__)
    p.add_argument("--version", action="version", version=f"transferlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a paper's table(s) on warm workers (or SLURM), resumable",
                       epilog=_papers_and_tables(), formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    r.add_argument("paper", help="a paper (see below) or 'all'")
    r.add_argument("--table", help="table name (default: every table of the paper for the protocol)")
    r.add_argument("--protocol", default="mini", choices=PROTOCOLS)
    r.add_argument("--seeds", nargs="+", type=_seeds, help="seeds to run (default: the table's)")
    r.add_argument(
        "--jobs", type=int, default=1, help="cells run at once (local: capped at the number of GPUs)"
    )
    r.add_argument("--executor", default="local", choices=["local", "slurm"],
                   help="local: warm worker processes on this machine; slurm: a submitit job array")  # fmt: skip
    r.add_argument("--via-notebook", action="store_true",
                   help="execute each paper's notebook with papermill (scope='table'), which runs its tables through "
                   "this runner and shows their results; the executed notebooks are kept (what make demo does)")  # fmt: skip
    r.add_argument("--notebooks", action="store_true",
                   help="run each cell through its paper notebook with papermill and keep the executed run.ipynb "
                   "(slower: a kernel per cell)")  # fmt: skip
    r.add_argument("--dry-run", action="store_true", help="list the cells and what would run, run nothing")
    r.add_argument(
        "--complete-only", action="store_true", help="only tables whose methods all exist (make demo)"
    )
    r.add_argument("--results", default="results", help="results root (default: results)")
    r.add_argument(
        "--where",
        nargs="+",
        action="extend",
        type=_assignment,
        metavar="KEY=VALUE",
        help="only the cells with these values (e.g. shots=25 method=fm; a key given twice: either)",
    )
    r.add_argument("--set", nargs="+", action="extend", type=_assignment, metavar="KEY=VALUE",
                   help="override fields in every cell (e.g. dataset=cifar10_jpeg iterations=500): a validation "
                   "run of your own, with its own run directories; best with its own --results root")  # fmt: skip
    r.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="build reports/<paper>.html (and reports/index.html) from the results",
                         epilog=_papers_and_tables(), formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    rep.add_argument("paper", nargs="?", help="a paper (see below); or --all")
    rep.add_argument("--markdown", action="store_true", help="print the result tables and claims as Markdown")
    rep.add_argument("--protocol", default="mini", choices=PROTOCOLS, help="with --markdown")
    rep.add_argument("--all", action="store_true", help="every paper, plus an index page")
    rep.add_argument("--results", default="results")
    rep.add_argument("--out", default="reports")
    rep.add_argument("--jobs", type=int, default=1, help="--all: reports built at once (one kernel each)")
    rep.set_defaults(func=cmd_report)

    b = sub.add_parser(
        "bench",
        help="fit: fit() overhead against a bare PyTorch loop; methods: per-step cost of methods relative to "
        "each other (L2T-ww, Zoo-Tuning, lite collapse, Hub-Pathway); data: images/s end to end from JPEG files "
        "(decode or cache, augmentation, step) beside the bare step",
    )
    b.add_argument("--suite", default="fit", choices=sorted(BENCH_DEFAULTS))
    b.add_argument(
        "--out", help="JSON report (default: reports/bench.json, bench_methods.json, bench_data.json)"
    )
    b.add_argument("--steps", type=int, help="timed steps per run (default: fit 60, methods 10, data 20)")
    b.add_argument(
        "--repeats",
        type=int,
        help="alternating timed runs; medians are reported (default: fit 7, methods 5, data 3)",
    )
    b.add_argument(
        "--cases", default="all", help="methods / data suites: comma-separated case names (default: all)"
    )
    b.add_argument(
        "--tree", help="data suite: an ImageFolder tree (train/<class>/*.jpg); default: a generated one"
    )
    b.add_argument("--images", type=int, default=2048, help="data suite: training images used from the tree")
    b.add_argument("--pipelines", default="pil,cache,device", help="data suite: input paths to measure")
    b.add_argument("--workers", type=int, help="data suite: DataLoader workers (default: min(8, CPUs))")
    b.add_argument(
        "--compile", default="off", help="data suite: also time the bare step torch.compile-d in this mode"
    )
    b.add_argument("--gpu-only", action="store_true")
    b.add_argument("--cpu-only", action="store_true")
    b.add_argument(
        "--no-memory", dest="memory", action="store_false", help="methods suite: skip the peak-memory runs"
    )
    b.set_defaults(func=cmd_bench)

    c = sub.add_parser("cost", help="measure tables' cost: parameters, MACs, images/s, peak memory")
    c.add_argument("papers", nargs="+", metavar="paper", help="one or more papers")
    c.add_argument("--table", help="table name (default: every table of the paper for the protocol)")
    c.add_argument("--protocol", default="mini", choices=PROTOCOLS)
    c.add_argument(
        "--results", default="results", help="results root; writes <paper>/<protocol>/cost-<table>.json"
    )
    c.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory processes")
    c.add_argument("--quick", action="store_true",
                   help="images/s from 3 runs of 5 steps instead of 5 of 10 (make demo; rows record which)")  # fmt: skip
    c.set_defaults(func=cmd_cost)

    d = sub.add_parser(
        "data",
        help="datasets under a data root: list them with their state, check one with its loader, fetch "
        "(download, verify, unpack into the loader's layout) or print the manual steps; fetch exits 2 on a failure",
    )
    d.add_argument("action", choices=["list", "check", "fetch"])
    d.add_argument("name", nargs="*", help="dataset(s); fetch also takes name:variant (e.g. cub200:tllib)")
    d.add_argument("--root", default="data", help="data root (default: data)")
    d.add_argument("--force", action="store_true", help="fetch again even if the dataset is already there")
    d.add_argument("--keep-archives", action="store_true", help="keep the archives after unpacking")
    d.set_defaults(func=cmd_data)

    h = sub.add_parser(
        "hub",
        help="model hubs: list them, check their files (presence, checksums), fetch (download) what is missing, "
        "build (pre-train) the mini hub or a policy hub (atari_mini: Seaquest and Riverraid policies); check/fetch "
        "exit 1 if a file is missing or bad",
    )
    h.add_argument("action", choices=["list", "check", "fetch", "build", "profile"])
    h.add_argument("--out", default="reports/mini_hub_profile.json", help="profile: where the JSON goes")
    h.add_argument("hub", nargs="?", help="a hub (default: every hub for list, 'mini' otherwise)")
    h.add_argument("--weights-dir", help="user-supplied weights files (also: $TRANSFERLAB_WEIGHTS_DIR)")
    h.add_argument("--root", default="data", help="data root (pre-training the mini hub)")
    h.add_argument(
        "--jobs", type=int, default=0, help="build: parallel single-thread processes (0: one per core)"
    )
    h.add_argument("--from-scratch", action="store_true",
                   help="build mini: train every model here instead of installing the released build")  # fmt: skip
    h.set_defaults(func=cmd_hub)
    return p


def _message(err: BaseException) -> str:
    """The one line the user reads: a TransferlabError's own message; an OS error's cause and file."""
    if isinstance(err, TransferlabError) or not isinstance(err, OSError):
        return str(err)
    where = f": {err.filename}" if err.filename else ""
    return f"{err.strerror or err}{where} (set TRANSFERLAB_DEBUG=1 to see the traceback)"


def main(argv: list[str] | None = None) -> int:
    """Run one command. Expected errors (a bad name, value, file, folder or environment variable; an OS error such
    as a read-only folder or a full disk) are one ``transferlab: error: ...`` line and exit status 2, before any
    training where they can be known then; anything else is a bug and keeps its traceback. TRANSFERLAB_DEBUG=1
    shows the traceback of every error."""
    args = parser().parse_args(argv)
    try:
        env.check()  # an environment variable that points nowhere is an error, not a fall-back
        return args.func(args)
    except (TransferlabError, OSError) as err:
        if os.environ.get("TRANSFERLAB_DEBUG", "") not in ("", "0"):
            raise
        print(f"transferlab: error: {_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "transferlab: interrupted; finished cells are kept and the next run resumes the others",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
