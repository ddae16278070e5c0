"""Pre-trained weights: pinned torchvision enums, a user weights directory, checksums, ``weights_only`` loading.

Reproductions pin the 2021-era weights the papers used. ``ResNet50_Weights.IMAGENET1K_V1`` (76.13 % top-1) is the
legacy ``resnet50-19c8e357.pth`` re-saved by torchvision (pytorch/vision#2068); ``IMAGENET1K_V2`` (80.86 %, the new
recipe) is torchvision's ``DEFAULT`` and is *not* what Co-Tuning, Zoo-Tuning or TLlib fine-tuned. Names are
therefore explicit here, and "DEFAULT" is refused.

Lookup order for a weights file: ``weights_dir`` argument, ``$TRANSFERLAB_WEIGHTS_DIR``, torch's hub cache
(``~/.cache/torch/hub/checkpoints``), then a download into the hub cache when online. Every file is checked against
the sha256 prefix torchvision embeds in its name and loaded with ``torch.load(weights_only=True)``.

MoCo (He et al., CVPR 2020; https://github.com/facebookresearch/moco, weights CC-BY-NC 4.0) has no torchvision
enum: ``moco_v1_200ep``, ``moco_v2_200ep`` and ``moco_v2_800ep`` are the official ResNet-50 checkpoints
(``<name>_pretrain.pth.tar``), checked against the md5 prefixes the MoCo README publishes. Only the query encoder
is kept (``module.encoder_q.`` stripped); its ``fc`` (the contrastive projection, an MLP in v2) is dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import re
import warnings
from pathlib import Path

import torch

from transferlab import env
from transferlab.errors import TransferlabError

TORCH_MODELS = "https://download.pytorch.org/models/"
# backbone → {name accepted in RunConfig.pretrained: the file torchvision 0.29.1's weights enum of that name
# downloads (``<Arch>_Weights.<name>.url``; tests/test_hub.py checks these against torchvision). Kept as facts here
# so that pinning weights does not import torchvision (whose import pulls in torch._dynamo, ~1.5 s per process).
TORCHVISION_WEIGHTS = {
    "resnet18": {"IMAGENET1K_V1": TORCH_MODELS + "resnet18-f37072fd.pth"},
    "resnet34": {"IMAGENET1K_V1": TORCH_MODELS + "resnet34-b627a593.pth"},
    "resnet50": {
        "IMAGENET1K_V1": TORCH_MODELS + "resnet50-0676ba61.pth",
        "IMAGENET1K_V2": TORCH_MODELS + "resnet50-11ad3fa6.pth",
    },
}


class WeightsError(TransferlabError, RuntimeError):
    """Weights missing, unknown or corrupt; the message names the file and where it comes from."""


def hash_prefix(filename: str) -> str | None:
    """The sha256 prefix torchvision puts in its file names (``resnet50-0676ba61.pth`` → ``0676ba61``)."""
    m = re.search(r"-([0-9a-f]{6,64})\.", filename)
    return m.group(1) if m else None


def file_digest(path: Path, kind: str = "sha256") -> str:
    """Hex digest (``kind``: any hashlib name, e.g. sha256, md5) of a file, read in 1 MiB chunks."""
    h = hashlib.new(kind)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    return file_digest(path, "sha256")


@contextlib.contextmanager
def cache_lock(weights: Path):
    """Hold ``<weights>.lock``: a parallel process that wants to build the same cached file waits here."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    with open(weights.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def valid_cached(weights: Path, manifest: Path, what: str) -> dict | None:
    """The manifest of a built cache pair (weights file + JSON manifest holding its sha256) if it is intact; None if
    it is absent; a corrupt pair is deleted with a warning (``what``: e.g. "mini hub cache"), so it is built again."""
    if not weights.exists() and not manifest.exists():
        return None
    try:
        meta = json.loads(manifest.read_text())
        if sha256_file(weights) == meta["sha256"]:
            return meta
        problem = "checksum mismatch"
    except (OSError, ValueError, KeyError) as err:
        problem = f"unreadable ({err.__class__.__name__})"
    warnings.warn(f"{what} {weights.name}: {problem}; deleting it and building it again", stacklevel=3)
    weights.unlink(missing_ok=True)
    manifest.unlink(missing_ok=True)
    return None


def load_tensors(path: Path, fix: str = "delete it and fetch it again") -> object:
    """``torch.load(path, weights_only=True)`` on the CPU. Whatever makes it fail (a truncated file, not a torch
    file, a pickle that would run code, which ``weights_only`` refuses) is a one-line WeightsError naming the file and
    ``fix``; the original error stays chained for the log."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"weights file {path} does not exist: {fix}") from None
    except Exception as err:  # noqa: BLE001  any unreadable file gets the same answer
        refused = "Weights only load failed" in str(err)
        why = ("holds pickled objects other than tensors, which weights_only loading refuses (never load it with "
               "weights_only=False)") if refused else f"cannot be read ({type(err).__name__}: {_first_line(err)})"  # fmt: skip
        raise WeightsError(f"weights file {path} {why}: {fix}") from err


def _first_line(err: Exception) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[0][:200] if lines else ""


def load_checked(path: Path, expected_prefix: str | None, fix: str = "delete it and fetch it again") -> dict:
    """:func:`load_tensors` after checking the file's sha256 starts with ``expected_prefix``."""
    if expected_prefix is not None:
        digest = sha256_file(path)
        if not digest.startswith(expected_prefix):
            raise WeightsError(
                f"checksum mismatch for {path}: sha256 {digest[:12]}… does not start with {expected_prefix} "
                "(a truncated download or a different file); delete it and fetch it again"
            )
    state = load_tensors(path, fix)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


MOCO_URL = "https://dl.fbaipublicfiles.com/moco/moco_checkpoints/{name}/{name}_pretrain.pth.tar"
MOCO_MD5 = {
    "moco_v1_200ep": "b251726a",
    "moco_v2_200ep": "59fd9945",
    "moco_v2_800ep": "a04e12f8",
}  # MoCo README


def remap_moco(state: dict) -> dict:
    """A MoCo checkpoint's ``state_dict`` → torchvision ResNet-50 keys: the query encoder without its ``fc``."""
    prefix = "module.encoder_q."
    body = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    if not body:
        raise WeightsError(
            f"not a MoCo checkpoint: no key starts with {prefix!r} (first keys: {list(state)[:3]})"
        )
    return {k: v for k, v in body.items() if not k.startswith("fc.")}


def moco_state_dict(name: str, weights_dir: str | Path | None = None) -> dict:
    """The ResNet-50 body (no ``fc``) of an official MoCo checkpoint, from disk or (online) a download."""
    if name not in MOCO_MD5:
        raise WeightsError(f"unknown MoCo weights {name!r}; valid: {', '.join(MOCO_MD5)}")
    filename, url = f"{name}_pretrain.pth.tar", MOCO_URL.format(name=name)
    path = find_or_download(filename, url, f"MoCo {name} (ResNet-50)", weights_dir)
    digest = file_digest(path, "md5")
    if not digest.startswith(MOCO_MD5[name]):
        raise WeightsError(
            f"checksum mismatch for {path}: md5 {digest[:12]}… does not start with {MOCO_MD5[name]} "
            "(a truncated download or a different file); delete it and fetch it again"
        )
    return remap_moco(load_checked(path, None))


def weights_dirs(weights_dir: str | Path | None = None) -> list[Path]:
    """Where weight files are looked for, in order: the argument, ``$TRANSFERLAB_WEIGHTS_DIR``, torch's hub cache."""
    dirs = [weights_dir, env.folder("TRANSFERLAB_WEIGHTS_DIR"), Path(torch.hub.get_dir()) / "checkpoints"]
    return [Path(d) for d in dirs if d]


def find_weights(filename: str, weights_dir: str | Path | None = None) -> Path | None:
    """The first ``filename`` on disk in :func:`weights_dirs`, or None (never downloads)."""
    return next((d / filename for d in weights_dirs(weights_dir) if (d / filename).is_file()), None)


def find_or_download(filename: str, url: str, what: str, weights_dir: str | Path | None) -> Path:
    """:func:`find_weights`, else a download into torch's hub cache; offline, an error naming the file and URL."""
    found = find_weights(filename, weights_dir)
    if found is not None:
        return found
    target = weights_dirs()[-1] / filename
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(target), hash_prefix=hash_prefix(filename), progress=False)
    except Exception as err:
        raise WeightsError(
            f"weights file {filename} ({what}) is not on disk and could not be downloaded ({err}): "
            f"get it from {url} and put it in $TRANSFERLAB_WEIGHTS_DIR or {target.parent}"
        ) from None
    return target


def resolve_enum(backbone: str, name: str) -> str:
    """The download URL of pinned torchvision weights ``name`` for ``backbone`` (WeightsError listing valid names)."""
    if name.upper() == "DEFAULT":
        raise WeightsError(
            "pretrained='DEFAULT' is refused: name the weights explicitly (e.g. IMAGENET1K_V1)"
        )
    table = TORCHVISION_WEIGHTS.get(backbone, {})
    if name not in table:
        valid = ", ".join(table) or "none (this backbone has no torchvision weights)"
        raise WeightsError(f"unknown weights {name!r} for backbone {backbone!r}; valid: {valid}, or 'none'")
    return table[name]


def torchvision_state_dict(backbone: str, name: str, weights_dir: str | Path | None = None) -> dict:
    """The state dict of a pinned torchvision weights enum, from disk or (online) a download."""
    url = resolve_enum(backbone, name)
    filename = url.rsplit("/", 1)[-1]
    path = find_or_download(filename, url, f"{backbone} {name}", weights_dir)
    return load_checked(path, hash_prefix(filename))
