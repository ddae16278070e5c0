"""Bad inputs and faults, tried as a new user would (issue 15): data, weights, the mini hub, notebooks, environment.

Each case answers with one ``transferlab: error:`` line (or one exception in Python) that names the file, folder or
variable and the fix, before anything trains; a corrupt cache entry is rebuilt and said so. Cases numbered as in the
catalogue in ``bad_inputs.py``. Set-up: ``bad_inputs.py``.
"""
# ruff: noqa: F811  (the fixtures imported from bad_inputs are the tests' arguments)

from __future__ import annotations

import gzip
import json
import os
import shutil
import urllib.error

import numpy as np
import pytest
import torch
import transferlab as tl
from bad_inputs import PAPER, TABLE, Payload, cli, no_execution, one_line, paper, read_only, run_folders  # noqa: F401  fixtures
from torchvision.models import ResNet18_Weights, ResNet50_Weights
from transferlab import data, hubbuild, report_view
from transferlab.data import mini
from transferlab.models import build_backbone, mini_hub
from transferlab.models.weights import sha256_file
from transferlab.nbexec import REPO
from transferlab.notebook import Notebook


# ------------------------------------------------------------------------------------ Fashion-MNIST (17, 35, 37)
def _write_idx(path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def _fake_fmnist(folder, n_train: int = 30, n_test: int = 10):
    """The four IDX files with a few random images (a stand-in that is told apart from the real data by its size)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(folder / f"{name}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{name}-labels-idx1-ubyte", np.arange(n) % 10)
    return folder


@pytest.fixture
def real_copy_elsewhere(tmp_path, monkeypatch):
    """A complete copy where the Debian package puts it (a stand-in), so a fall-back to it would go unnoticed."""
    monkeypatch.setattr(mini, "DEBIAN_FMNIST", _fake_fmnist(tmp_path / "debian", n_train=40))


def test_fashion_mnist_variable_pointing_nowhere_is_an_error_never_a_fall_back(real_copy_elsewhere, tmp_path,
                                                                              monkeypatch, capsys):  # fmt: skip
    monkeypatch.setenv("TRANSFERLAB_FASHION_MNIST", "/nonexistent")  # case 17
    code, _, err = cli(capsys, "data", "check", "mini_fmnist", "--root", tmp_path)
    assert code == 2
    one_line(err, r"TRANSFERLAB_FASHION_MNIST='/nonexistent' points to no folder: set it to a folder holding the "
                  r"four Fashion-MNIST idx files, or unset it")  # fmt: skip
    with pytest.raises(tl.ConfigError, match="TRANSFERLAB_FASHION_MNIST='/nonexistent' points to no folder"):
        data.load("mini_fmnist", tmp_path)  # the Python API too
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("TRANSFERLAB_FASHION_MNIST", str(tmp_path / "empty"))  # a folder without the files
    with pytest.raises(tl.DatasetNotFoundError, match=rf"\$TRANSFERLAB_FASHION_MNIST={tmp_path / 'empty'} lacks "
                                                      r"train-images-idx3-ubyte"):  # fmt: skip
        data.load("mini_fmnist", tmp_path)
    monkeypatch.setenv(
        "TRANSFERLAB_FASHION_MNIST", str(_fake_fmnist(tmp_path / "mine"))
    )  # set: used, and only it
    assert len(data.load("mini_fmnist", tmp_path).test) == 10
    monkeypatch.delenv("TRANSFERLAB_FASHION_MNIST")
    assert len(data.load("mini_fmnist", tmp_path).train) == 40  # unset: the other places, as documented


def test_no_fashion_mnist_anywhere_offline_says_where_to_get_it(tmp_path, monkeypatch, capsys):  # case 35
    import torchvision.datasets

    monkeypatch.setattr(mini, "DEBIAN_FMNIST", tmp_path / "none")
    monkeypatch.delenv("TRANSFERLAB_FASHION_MNIST", raising=False)

    def offline(*args, **kwargs):
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz: <urlopen error [Errno -3] no network>"
        )

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    code, _, err = cli(capsys, "data", "check", "mini_fmnist", "--root", tmp_path / "data")
    assert code == 2 and "Traceback" not in err
    assert err.startswith(f"transferlab: error: dataset 'fashion_mnist' not found under {tmp_path / 'data'}")
    assert "apt-get install dataset-fashion-mnist" in err and "<dir>/train-images-idx3-ubyte[.gz]" in err


@pytest.mark.parametrize("damage", ["truncated", "truncated-gz", "not-idx"])
def test_a_corrupt_idx_file_is_named_with_the_fix(tmp_path, monkeypatch, capsys, damage):  # case 37
    folder = _fake_fmnist(tmp_path / "fm")
    bad = folder / "train-labels-idx1-ubyte"
    if damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:20])
        why = r"holds 12 bytes of data where its header says 30 \(truncated\?\)"
    elif damage == "truncated-gz":
        bad = bad.with_name(bad.name + ".gz")
        bad.write_bytes(gzip.compress((folder / "train-labels-idx1-ubyte").read_bytes())[:25])
        (folder / "train-labels-idx1-ubyte").unlink()
        why = r"cannot be read \(EOFError"
    else:
        bad.write_text("<html>404 Not Found</html>")
        why = "is not an unsigned-byte IDX file"
    monkeypatch.setenv("TRANSFERLAB_FASHION_MNIST", str(folder))
    code, _, err = cli(capsys, "data", "check", "mini_fmnist")
    assert code == 2
    one_line(err, rf"Fashion-MNIST file {bad} {why}.*: delete it and get the four files again")


def test_a_missing_paper_dataset_stops_the_grid_before_it_starts(no_execution, tmp_path, capsys):  # case 36
    code, out, err = cli(capsys, "run", "finetune", "--protocol", "paper", "--seeds", "0", "--where",
                         "sample_rate=0.15", "--set", f"data_root={tmp_path / 'data'}", "--results", tmp_path / "r")  # fmt: skip
    assert code == 2 and "2 to run" in out and "Traceback" not in err
    assert err.startswith(f"transferlab: error: dataset 'cub200' not found under {tmp_path / 'data'}")
    assert "Expected layout:" in err and not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------ mini hub (8, 23, 38)
@pytest.fixture
def own_cache(tiny_hub, tmp_path, monkeypatch):
    """The tiny hub model copied into a cache of this test's own (its weights file, its manifest)."""
    model = mini_hub.MINI_HUB.get(tiny_hub)
    sources = mini_hub._paths(model)
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    weights, manifest = mini_hub._paths(model)
    weights.parent.mkdir(parents=True)
    for src, dst in zip(sources, (weights, manifest)):
        shutil.copy(src, dst)
    return weights, manifest


def _with_matching_manifest(weights, manifest) -> None:
    meta = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**meta, "sha256": sha256_file(weights)}))


@pytest.mark.parametrize("content", ["wrong shapes", "pickle"])
def test_a_hub_file_that_matches_its_manifest_but_not_the_network_stops_the_grid(paper, own_cache, no_execution,
                                                                                tmp_path, capsys, content):  # fmt: skip
    weights, manifest = own_cache  # cases 8 and 23
    marker = tmp_path / "payload-ran"
    if content == "pickle":
        torch.save({"stem.0.weight": torch.zeros(1), "x": Payload(marker)}, weights)
        why = "holds pickled objects other than tensors, which weights_only loading refuses"
    else:
        state = torch.load(weights, weights_only=True)
        torch.save({**state, "stem.0.weight": torch.zeros(3, 1, 3, 3)}, weights)
        why = r"does not fit a mini_resnet \(RuntimeError: .*size mismatch for stem\.0\.weight"
    _with_matching_manifest(weights, manifest)
    code, _, err = cli(capsys, "run", PAPER, "--results", tmp_path / "r")
    assert code == 2
    one_line(err, rf"{weights} {why}.*: (delete it|.*run `transferlab hub build mini`)")
    assert not marker.exists() and run_folders(tmp_path / "r") == []


def test_a_truncated_hub_file_is_deleted_said_and_pre_trained_again(tiny_hub, own_cache):  # case 38
    weights, manifest = own_cache
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.warns(
        UserWarning, match=rf"{weights.name}: checksum mismatch; deleting it and building it again"
    ):
        path, meta = hubbuild.ensure(tiny_hub, verbose=False)
    assert (
        path == weights
        and sha256_file(weights) == meta["sha256"] == json.loads(manifest.read_text())["sha256"]
    )


def test_the_mini_hub_cache_must_be_a_writable_folder(tiny_hub, read_only, tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "a-file"))
    code, _, err = cli(capsys, "hub", "check", "mini")
    assert code == 2
    one_line(
        err,
        rf"TRANSFERLAB_CACHE='{tmp_path / 'a-file'}' is a file, not a folder: set it to a writable folder",
    )
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(read_only(tmp_path / "ro")))
    with pytest.raises(tl.WriteError, match=rf"mini-hub cache {tmp_path / 'ro'}/mini_hub is not writable .*: set "
                                            "TRANSFERLAB_CACHE to a writable folder"):  # fmt: skip
        hubbuild.ensure(tiny_hub, verbose=False)
    code, _, err = cli(capsys, "hub", "build", "mini")  # before any build process starts
    assert code == 2
    one_line(err, rf"mini-hub cache {tmp_path / 'ro'}/mini_hub is not writable")


# ---------------------------------------------------------------------------- published weights (39, 40, 23)
@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """$TRANSFERLAB_WEIGHTS_DIR, torch's hub cache of this test's own, and no network."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("TRANSFERLAB_WEIGHTS_DIR", str(folder))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return folder


def test_a_weights_file_with_the_wrong_checksum_is_named_with_the_fix(weights_dir, capsys):  # case 39
    name = ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    (weights_dir / name).write_bytes(b"half a download")
    with pytest.raises(
        tl.WeightsError, match=rf"checksum mismatch for {weights_dir / name}: .*delete it and fetch it"
    ):
        build_backbone("resnet18", "IMAGENET1K_V1")
    name = ResNet50_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    (weights_dir / name).write_bytes(b"half a download")
    code, out, _ = cli(capsys, "hub", "check", "paper")
    assert code == 1  # hub check: 1 when a file is missing or bad, the table says which and why
    assert f"checksum mismatch for {weights_dir / name}" in out and out.count(" missing ") == 4


def test_a_missing_weights_file_offline_names_the_file_the_url_and_where_to_put_it(weights_dir):  # case 40
    url = ResNet18_Weights.IMAGENET1K_V1.url
    with pytest.raises(tl.WeightsError, match=rf"weights file {url.rsplit('/', 1)[-1]} .* is not on disk and could "
                                              rf"not be downloaded .*: get it from {url} and put it in "
                                              r"\$TRANSFERLAB_WEIGHTS_DIR"):  # fmt: skip
        build_backbone("resnet18", "IMAGENET1K_V1")


def test_a_weights_file_with_a_pickle_payload_is_refused(tmp_path):  # case 23
    from transferlab.models.weights import load_checked

    path, marker = tmp_path / "evil.pth", tmp_path / "payload-ran"
    torch.save({"fc.weight": torch.zeros(1), "x": Payload(marker)}, path)
    with pytest.raises(
        tl.WeightsError, match=rf"{path} holds pickled objects .*never load it with weights_only=False"
    ):
        load_checked(path, None)
    assert not marker.exists()


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("TRANSFERLAB_WEIGHTS_DIR", "/nonexistent", r"points to no folder: set it to a folder with pre-trained weight"),
        ("TRANSFERLAB_NOTEBOOKS", "/nonexistent", r"points to no folder: set it to a folder holding the paper notebooks"),
        ("TRANSFERLAB_THREADS", "two", r"is not an integer: set it to a number of CPU threads per run"),
        ("TRANSFERLAB_PROGRESS", "quiet", r"is not a valid choice: set it to one of auto, text, off"),
        ("TRANSFERLAB_DATA_MIRROR", "mirror.example.org", r"is not an http\(s\) URL"),
    ],
)  # fmt: skip
def test_an_environment_variable_pointing_nowhere_is_an_error(paper, no_execution, tmp_path, monkeypatch, capsys,
                                                              variable, value, message):  # fmt: skip
    monkeypatch.setenv(variable, value)
    code, _, err = cli(capsys, "run", PAPER, "--results", tmp_path)
    assert code == 2
    one_line(err, rf"{variable}='{value}' {message}")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------- notebooks (15, 18, 41)
def test_a_missing_notebook_stops_the_run_before_any_cell(paper, no_execution, tmp_path, monkeypatch, capsys):
    (tmp_path / "notebooks").mkdir()  # case 41
    monkeypatch.setenv("TRANSFERLAB_NOTEBOOKS", str(tmp_path / "notebooks"))
    code, _, err = cli(capsys, "run", PAPER, "--notebooks", "--results", tmp_path / "r")
    assert code == 2
    one_line(err, rf"notebook finetune\.py not found in \$TRANSFERLAB_NOTEBOOKS={tmp_path / 'notebooks'}: unset "
                  "TRANSFERLAB_NOTEBOOKS or point it at a folder that holds finetune.py")  # fmt: skip
    assert run_folders(tmp_path / "r") == []


def test_a_notebook_parameter_that_does_not_exist_is_an_error(
    paper,
):  # case 15 (papermill -p learning_rate 0.1)
    with pytest.raises(tl.ConfigError, match=r"unknown notebook parameter\(s\) \['learning_rate'\]: a paper "
                                             r"notebook takes paper, table, .*other settings go into overrides"):  # fmt: skip
        Notebook({"paper": PAPER, "table": TABLE, "scope": "cell", "learning_rate": 0.1})


def test_a_notebook_run_from_another_folder_writes_under_the_repository(
    paper, tmp_path, monkeypatch
):  # case 18
    monkeypatch.chdir(tmp_path)  # where `make lab` or a user's Jupyter may run the kernel
    monkeypatch.delenv("TRANSFERLAB_RESULTS", raising=False)
    nb = Notebook({"paper": PAPER, "table": TABLE, "scope": "cell", "method": "scratch", "results": "results",
                   "out_dir": "", "overrides": {}})  # fmt: skip
    assert nb.root == REPO / "results" and nb.root.is_absolute()
    monkeypatch.setattr(report_view, "display", lambda obj: None)
    report = report_view.PaperReport(PAPER, "results", str(tmp_path.parent / f"{tmp_path.name}-figures"))
    assert report.results_dir == str(REPO / "results")  # the report notebook reads the repository's results
    assert os.listdir(tmp_path) == []
