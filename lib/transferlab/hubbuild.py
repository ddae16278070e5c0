"""Pre-training the mini hub: each model's ``recipe()`` run through the suite's own experiment pipeline, cached.

:mod:`transferlab.models.mini_hub` describes the models and loads them; training them needs the experiment layer,
so it lives here, above it. ``ensure(name)`` builds a model once (a file lock makes parallel processes wait for one
build instead of racing; a corrupt cache entry is deleted and rebuilt) and returns its path and manifest;
``ensure_all(names, jobs)`` builds several in parallel single-thread processes, parents before their descendants,
saying "model k of n" as each finishes. ``ensure_assets(cfg)`` builds what one run needs (``Method.assets``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from transferlab.config import RunConfig
from transferlab.experiment import check, train
from transferlab.methods import METHODS
from transferlab.models import mini_hub, policy_hub
from transferlab.models.hub import HUBS, MiniHubWeights
from transferlab.models.weights import sha256_file
from transferlab.nbexec import child_env, die_with_parent
from transferlab.refs import WeightsRef
from transferlab.results import atomic_torch_save, atomic_write_json, writable_folder


def _train_one_thread(cfg: RunConfig, work: Path):
    """``train(cfg, work)`` on one thread (results depend on the thread count in the last bits: one cached file for
    all), without moving the caller's RNG (a cold cache must not change the run that needed it)."""
    prev_threads, prev_env = torch.get_num_threads(), os.environ.get("TRANSFERLAB_THREADS")
    os.environ["TRANSFERLAB_THREADS"] = "1"
    with torch.random.fork_rng(devices=[]):
        try:
            return train(cfg, work)
        finally:
            torch.set_num_threads(prev_threads)
            if prev_env is None:
                os.environ.pop("TRANSFERLAB_THREADS", None)
            else:
                os.environ["TRANSFERLAB_THREADS"] = prev_env


def _build_locked(hub_module, item, name: str, build) -> tuple[Path, dict]:
    """The cached (path, manifest) of ``name``, calling ``build()`` first under the item's file lock if it is missing
    (parallel processes wait for one build instead of racing)."""
    with hub_module.locked(item):
        found = hub_module.cached(name)
        if found is not None:
            return found
        build()
    found = hub_module.cached(name)
    assert found is not None
    return found


def _pretrain(model: mini_hub.HubModel, data_root: str, verbose: bool) -> dict:
    weights, manifest = mini_hub._paths(model)
    cfg = check(model.recipe().replace(data_root=data_root))
    if verbose:
        print(
            f"pre-training mini hub model {model.name!r}: {model.description} ({model.iterations} steps)",
            flush=True,
        )
    start = time.perf_counter()
    work = weights.parent / ".work" / weights.stem
    method, result = _train_one_thread(cfg, work)
    # the model and its pretext head (a descendant's parent head, kept by fine-tuning as its source head, is not part
    # of the descendant)
    state = {k: v.cpu() for k, v in method.backbone.state_dict().items() if not k.startswith("source_head.")}
    atomic_torch_save(weights, state)
    meta = {
        "name": model.name,
        "description": model.description,
        "kind": model.kind,
        "image_source": model.image_source,
        "parent": model.parent,
        "classes": len(result.metrics["per_class_last"]),
        "pretext_test_top1": result.metrics["test_last"],
        "recipe": cfg.to_flat(),
        "recipe_hash": cfg.config_hash(),
        "sha256": sha256_file(weights),
        "seconds": round(time.perf_counter() - start, 1),
        "provenance": result.provenance,
    }
    atomic_write_json(manifest, meta)
    if verbose:
        print(f"  {model.name}: pretext test accuracy {meta['pretext_test_top1']:.1f}% in {meta['seconds']} s",
              flush=True)  # fmt: skip
    return meta


def ensure(
    name: str, data_root: str = "data", verbose: bool = True, from_scratch: bool = False
) -> tuple[Path, dict]:
    """Path and manifest of mini-hub model ``name``: the cached one; else the released build of its recipe, installed
    (``mini_hub.install_released``); else pre-trained here (its parent first). ``from_scratch``: never install, and
    re-train a model that was installed from the released build."""
    model = mini_hub.MINI_HUB.get(name)
    found = mini_hub.cached(name)
    if found is not None and not (from_scratch and _installed(found)):  # no lock: a read-only cache works
        return found
    if model.parent:
        ensure(model.parent, data_root, verbose, from_scratch)
    _writable_cache()
    if found is not None:
        _uninstall(model)

    def build() -> None:
        if from_scratch or mini_hub.install_released(name) is None:
            _pretrain(model, data_root, verbose)
        elif verbose:
            print(
                f"mini hub model {name!r}: installed the released build (`--from-scratch` trains it)",
                flush=True,
            )

    return _build_locked(mini_hub, model, name, build)


def _installed(found: tuple[Path, dict]) -> bool:
    return bool(found[1].get("installed_from"))


def _uninstall(model: mini_hub.HubModel) -> None:
    """Delete an installed released copy (under the model's lock) so that it is trained here."""
    with mini_hub.locked(model):
        for path in mini_hub._paths(model):
            path.unlink(missing_ok=True)


def _writable_cache() -> None:
    writable_folder(mini_hub.cache_dir(), "mini-hub cache", "set TRANSFERLAB_CACHE to a writable folder")


def _start(name: str, data_root: str, from_scratch: bool) -> tuple[subprocess.Popen, Path]:
    """A child process that builds one model (``python -m transferlab.hubbuild NAME``), one CPU thread, killed with
    its parent (no re-import of the caller's ``__main__``, as multiprocessing's spawn would do); its output goes to
    a log file beside the cache."""
    log = mini_hub.cache_dir() / ".work" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        args = [sys.executable, "-m", "transferlab.hubbuild", name, data_root] + (
            ["--from-scratch"] * from_scratch
        )
        proc = subprocess.Popen(args,
                                env=child_env(TRANSFERLAB_THREADS="1", TRANSFERLAB_PROGRESS="text"), stdout=fh,
                                stderr=subprocess.STDOUT, preexec_fn=die_with_parent)  # fmt: skip
    return proc, log


def _levels(names: list[str]) -> list[list[str]]:
    """``names`` and their ancestors grouped so that every model comes after its parent."""
    depth: dict[str, int] = {}

    def level(n: str) -> int:
        if n not in depth:
            parent = mini_hub.MINI_HUB.get(n).parent
            depth[n] = 0 if not parent else level(parent) + 1
        return depth[n]

    for n in names:
        level(n)
    return [[n for n in depth if depth[n] == d] for d in range(max(depth.values(), default=-1) + 1)]


def ensure_all(names: list[str] | None = None, data_root: str = "data", jobs: int = 0, out=print,
               from_scratch: bool = False) -> dict[str, dict]:  # fmt: skip
    """Build every model in ``names`` (default: the whole mini hub) that is not cached: the released build of its
    recipe when there is one (unless ``from_scratch``), else trained in ``jobs`` single-thread processes at a time
    (0: one per core), parents first; returns name → manifest."""
    names = list(names or [m.weights.model for m in HUBS.get("mini").models])
    metas_policies = {}
    for n in [n for n in names if n.startswith(POLICY)]:  # sequential: each is minutes of one core
        metas_policies[n] = ensure_policy(n.removeprefix(POLICY), data_root, verbose=True)[1]
    if metas_policies:
        rest = ensure_all([n for n in names if not n.startswith(POLICY)], data_root, jobs, out) if len(
            metas_policies) < len(names) else {}  # fmt: skip
        return {n: (metas_policies.get(n) or rest[n]) for n in names}
    cached = {n: mini_hub.cached(n) for n in names}
    todo = [n for n in names if cached[n] is None or (from_scratch and _installed(cached[n]))]
    if todo:  # before any build process starts
        _writable_cache()
    metas = {n: cached[n][1] for n in names if n not in todo}  # type: ignore[index]
    total, done = len(todo), 0
    for n in list(todo):
        model = mini_hub.MINI_HUB.get(n)
        if from_scratch:
            if cached[n] is not None:
                _uninstall(model)
            continue
        with mini_hub.locked(model):
            found = mini_hub.cached(n) or mini_hub.install_released(n)
        if found is not None:
            todo.remove(n)
            metas[n], done = found[1], done + 1
            out(f"mini hub: model {done} of {total} — {n}: installed the released build (sha256 "
                f"{found[1]['sha256'][:12]}; `transferlab hub build mini --from-scratch` trains it)")  # fmt: skip
    jobs = jobs or os.cpu_count() or 1
    for level in _levels(todo):
        pending = [n for n in level if mini_hub.cached(n) is None]
        metas.update({n: mini_hub.cached(n)[1] for n in level if n not in pending})  # type: ignore[index]
        if not pending:
            continue
        if jobs == 1 or len(pending) == 1:
            for n in pending:
                metas[n] = ensure(n, data_root, verbose=False, from_scratch=from_scratch)[1]
                done += 1
                out(_line(done, total, metas[n]))
            continue
        queue, running = list(pending), {}
        while queue or running:
            while queue and len(running) < jobs:
                name = queue.pop(0)
                running[name] = _start(name, data_root, from_scratch)
            finished = [n for n, (proc, _) in running.items() if proc.poll() is not None]
            if not finished:
                time.sleep(0.2)
                continue
            for name in finished:
                proc, log = running.pop(name)
                found = mini_hub.cached(name)
                if proc.returncode or found is None:
                    raise RuntimeError(f"pre-training mini hub model {name!r} failed (exit {proc.returncode}); "
                                       f"its log {log}:\n{log.read_text()[-3000:]}")  # fmt: skip
                metas[name] = found[1]
                done += 1
                out(_line(done, total, metas[name]))
    return {n: metas[n] for n in names}


def _line(k: int, n: int, meta: dict) -> str:
    release = mini_hub.released(meta["name"])
    same = "" if release is None else (" — bit-identical to the released build" if release[1]["sha256"] == meta["sha256"]
                                    else " — differs from the released build (sha256; another CPU or thread count)")  # fmt: skip
    hub = "demo hub" if meta["name"].startswith(mini_hub.DEMO) else "mini hub"
    return (f"{hub}: model {k} of {n} built — {meta['name']}: pretext test {meta['pretext_test_top1']:.1f}% "
            f"in {meta['seconds']} s{same}")  # fmt: skip


def models_of(cfg: RunConfig) -> list[str]:
    """The mini-hub models a run needs: its own weights and those its method declares (``Method.assets``); source
    policies (``models/policy_hub.py``) as ``policy:<name>``."""
    refs: list[WeightsRef] = METHODS.get(cfg.method).assets(cfg)
    names: list[str] = []
    for ref in refs:
        if ref.kind == "mini":
            names.append(ref.name)
        elif ref.kind == "hub" and ref.name in HUBS:
            names += [
                m.weights.model for m in HUBS.get(ref.name).models if isinstance(m.weights, MiniHubWeights)
            ]
    names += [f"{POLICY}{n}" for n in policy_hub.sources_of(cfg.weights)]
    return sorted(set(names))


def ensure_assets(cfg: RunConfig, verbose: bool = True) -> None:
    """Pre-train (once) every mini-hub model and source policy ``cfg`` needs."""
    for name in models_of(cfg):
        if name.startswith(POLICY):
            ensure_policy(name.removeprefix(POLICY), cfg.data.data_root, verbose)
        else:
            ensure(name, cfg.data.data_root, verbose)


# ------------------------------------------------------------------------------------------------ source policies
POLICY = "policy:"


def _pretrain_policy(policy: policy_hub.SourcePolicy, data_root: str, verbose: bool) -> dict:
    """Train source policy ``policy`` with its recipe (PPO from scratch through the experiment pipeline), one thread,
    and cache its extractor and heads with a manifest holding the sha256 and the evaluation score."""
    weights, manifest = policy_hub.paths(policy)
    cfg = check(policy.recipe().replace(data_root=data_root))
    if verbose:
        print(f"training source policy {policy.name!r}: {policy.description}", flush=True)
    start = time.perf_counter()
    method, result = _train_one_thread(cfg, weights.parent / ".work" / weights.stem)  # resumable there
    atomic_torch_save(weights, {k: v.cpu() for k, v in method.backbone.state_dict().items()})
    m = result.metrics
    meta = {"name": policy.name, "description": policy.description, "dataset": policy.dataset, "arch": policy.arch,
            "eval_return": m["test_last"], "eval_returns": m["eval_returns"], "train_return_final": m["best_val"],
            "auc": m["auc"], "agent_steps": m["agent_steps"], "recipe": cfg.to_flat(), "recipe_hash": cfg.config_hash(),
            "sha256": sha256_file(weights), "seconds": round(time.perf_counter() - start, 1),
            "curve": [[h["agent_steps"], h["train_return"]] for h in result.history],
            "provenance": result.provenance}  # fmt: skip
    atomic_write_json(manifest, meta)
    if verbose:
        print(
            f"  {policy.name}: evaluation return {meta['eval_return']:.1f} in {meta['seconds']} s", flush=True
        )
    return meta


def ensure_policy(name: str, data_root: str = "data", verbose: bool = True) -> tuple[Path, dict]:
    """Path and manifest of source policy ``name``, training it first if it is not cached."""
    policy = policy_hub.POLICIES.get(name)
    return _build_locked(policy_hub, policy, name, lambda: _pretrain_policy(policy, data_root, verbose))


__all__ = ["POLICY", "ensure", "ensure_all", "ensure_assets", "ensure_policy", "models_of"]

if (
    __name__ == "__main__"
):  # one build, in a child process of ensure_all: python -m transferlab.hubbuild NAME ROOT
    torch.set_num_threads(1)
    ensure(sys.argv[1], sys.argv[2], verbose=True, from_scratch="--from-scratch" in sys.argv[3:])
