"""``transferlab data fetch`` without internet: a loopback HTTP server serves fixture archives in each dataset's real
format; fetch downloads, resumes, verifies, unpacks into the loader's layout, and the loader reads the result.

The server (stdlib ``http.server`` on 127.0.0.1, one thread) honours ``Range`` and has switches to cut a connection
mid-file, serve a wrong file, answer 404 or 500, or ignore ``Range``. Every socket a test opens is checked to go to
127.0.0.1 (``loopback_only``), and every retry loop runs under ``FAST`` (3 attempts, 10 ms backoff, 5 s timeout).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import socket
import struct
import tarfile
import threading
import zipfile
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from fixtures_data import (
    make_cifar10,
    make_cub_native,
    make_eurosat,
    make_fashion_mnist,
    make_image_lists,
    patch_md5,
    write_jpeg,
)
from torchvision.datasets import CIFAR10
from transferlab import cli
from transferlab.data import DATASETS, load
from transferlab.data.download import Checksum, ChecksumMismatch, FetchError, Retry, download
from transferlab.data.extract import UnsafeArchive, unpack
from transferlab.data.fetch import DOWNLOADS, MANIFEST, ManualSteps, fetch
from transferlab.data.inventory import catalog, status
from transferlab.data.sources import MIRROR_ENV, SOURCES, relocated

FAST = Retry(attempts=3, backoff_s=0.01, timeout_s=5.0)


# ------------------------------------------------------------------------------------------------ the server
class Served:
    """What the server holds and does: bodies by path, and the switches (each test sets its own)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[
            str, list[int]
        ] = {}  # path → bytes sent before dropping the connection, one per request
        self.wrong: set[str] = set()
        self.missing: set[str] = set()
        self.broken: set[str] = set()  # 500 every time
        self.ignore_range: set[str] = set()
        self.log: list[tuple[str, str | None, int]] = []  # (path, Range header, status)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        srv: Served = self.server.served  # type: ignore[attr-defined]
        path, rng = self.path.split("?")[0], self.headers.get("Range")
        if path in srv.broken or path in srv.missing or path not in srv.files:
            code = 500 if path in srv.broken else 404
            srv.log.append((path, rng, code))
            self.send_error(code)
            return
        body = srv.files[path]
        if path in srv.wrong:
            body = hashlib.sha256(body).digest() * (len(body) // 32 + 1)
            body = body[: len(srv.files[path])]
        start, code = 0, 200
        if rng and path not in srv.ignore_range:
            start, code = int(rng.removeprefix("bytes=").split("-")[0]), 206
            if start >= len(body):
                srv.log.append((path, rng, 416))
                self.send_error(416)
                return
        srv.log.append((path, rng, code))
        self.send_response(code)
        self.send_header("Content-Length", str(len(body) - start))
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        cuts = srv.cut.get(path)
        if cuts:
            self.wfile.write(body[start : start + cuts.pop(0)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail any test that would open a socket to anything but 127.0.0.1 (the fixtures' own server); no proxy."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        assert address[0] == "127.0.0.1", f"a test tried to reach {address}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


@pytest.fixture
def server():
    """(base URL, Served) of a loopback server, shut down after the test."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.served = Served()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.served  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


# --------------------------------------------------------------------------------------------- fixture archives
def tar_bytes(base: Path, names: list[str], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for n in names:
            tf.add(base / n, arcname=n)
    return buf.getvalue()


def zip_bytes(base: Path, names: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in names:
            for p in sorted([base / n, *(base / n).rglob("*")]):
                zf.write(p, p.relative_to(base).as_posix())
    return buf.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def serve(srv: Served, key: str, bodies: dict[str, bytes], sums: bool = True) -> dict:
    """Put ``bodies`` (file name → bytes) on the server where the relocated row for ``key`` looks; a table whose row
    carries the fixtures' md5s (``sums``) instead of the published ones."""
    src = SOURCES[key]
    for name, body in bodies.items():
        srv.files[f"/{src.where}/{name}"] = body
    if not sums:
        return {}
    files = tuple(
        replace(d, checksums=(Checksum("md5", md5(bodies[d.name]), "test fixture"),)) for d in src.downloads
    )
    return {key: replace(src, downloads=files)}


def table(base: str, *rows: dict) -> dict:
    t = dict(SOURCES)
    for r in rows:
        t.update(r)
    return relocated(t, base)


def cifar10_bodies(tmp: Path, monkeypatch) -> dict[str, bytes]:
    build = tmp / "build"
    make_cifar10(build)
    patch_md5(monkeypatch, CIFAR10, build / "cifar10" / CIFAR10.base_folder)  # the loader's own md5 check
    return {"cifar-10-python.tar.gz": tar_bytes(build / "cifar10", [CIFAR10.base_folder])}


def cub_bodies(tmp: Path) -> dict[str, bytes]:
    make_cub_native(tmp / "build")
    return {"CUB_200_2011.tgz": tar_bytes(tmp / "build", ["CUB_200_2011"])}


def test_the_guard_stops_any_other_address_before_it_is_contacted(tmp_path):
    with pytest.raises(AssertionError, match="192.0.2.1"):  # TEST-NET-1: never routed anyway
        download(["http://192.0.2.1/x.tgz"], tmp_path / "x.tgz", (), FAST, False)


# ------------------------------------------------------------------------------------------------- the table
def paper_datasets() -> set[str]:
    """The datasets of every paper-protocol table that must be fetched (Atari games are not: ale-py ships them)."""
    from transferlab.data import DATASET_TASKS
    from transferlab.papers import PAPERS

    names = set()
    for p in PAPERS.names():
        paper = PAPERS.get(p)
        for t in paper.table_names("paper"):
            names |= {
                c.params["dataset"] for c in paper.table(t, "paper").cells(paper=p) if "dataset" in c.params
            }
    return {n for n in names if DATASET_TASKS.get(n) != "rl"}


def test_every_paper_dataset_and_announced_dataset_has_a_row():
    needed = paper_datasets() | {"tiny_imagenet", "300w", "wflw", "cofw", "conll2003"}
    assert {"cub200", "coco70", "dmlab", "stanford_cars"} <= needed
    assert needed - set(SOURCES) == set()


def test_every_row_is_well_formed():
    for key, src in SOURCES.items():
        assert src.page and src.licence and src.layout, key
        assert src.downloads or src.manual, f"{key}: neither a download nor manual steps"
        assert src.dataset in DATASETS or src.expect, f"{key}: no loader and no paths to check"
        for d in src.downloads:
            assert d.urls and d.kind() in ("tar", "zip", "copy", "keep"), (key, d.name)
            for url in d.urls:
                parts = urlsplit(url)
                assert parts.scheme in ("http", "https") and parts.hostname, (key, url)
            for c in d.checksums:
                assert c.kind in ("md5", "sha256") and c.origin, (key, d.name)
                assert len(c.value) == {"md5": 32, "sha256": 64}[c.kind] and int(c.value, 16) >= 0


# ------------------------------------------------------------------------------------------- fetch end to end
def test_cifar10_fetch_check_load_and_manifest(server, tmp_path, monkeypatch, capsys):
    base, srv = server
    row = serve(srv, "cifar10", cifar10_bodies(tmp_path, monkeypatch))
    root = tmp_path / "data"
    manifest = fetch("cifar10", root, table(base, row), retry=FAST, progress=False)
    src = load("cifar10", root)
    assert (len(src.train), len(src.test), src.num_classes) == (10, 3, 10)
    on_disk = json.loads((root / "cifar10" / MANIFEST).read_text())
    assert on_disk == json.loads(json.dumps(manifest)) and on_disk["complete"]
    (f,) = on_disk["files"]
    assert f["url"] == f"{base}/cifar10/cifar-10-python.tar.gz" and f["checked"][0]["kind"] == "md5"
    assert len(f["sha256"]) == 64 and on_disk["entries"] == [CIFAR10.base_folder]
    assert not (root / "cifar10" / DOWNLOADS).exists()  # archives removed once verified and unpacked
    assert cli.main(["data", "check", "cifar10", "--root", str(root)]) == 0
    assert "10 train / 3 test" in capsys.readouterr().out
    assert status("cifar10", root).state == "verified"
    n = len(srv.log)
    fetch("cifar10", root, table(base, row), retry=FAST, progress=False)  # verified: nothing downloaded
    assert len(srv.log) == n


def test_cli_fetch_through_the_mirror_variable(server, tmp_path, monkeypatch, capsys):
    base, srv = server
    build = tmp_path / "build"
    make_eurosat(build)
    row = serve(srv, "eurosat", {"EuroSAT.zip": zip_bytes(build / "eurosat", ["2750"])})
    monkeypatch.setitem(SOURCES, "eurosat", row["eurosat"])
    monkeypatch.setenv(MIRROR_ENV, base)
    root = tmp_path / "data"
    assert cli.main(["data", "fetch", "eurosat", "--root", str(root)]) == 0
    src = load("eurosat", root)
    assert len(src.train) + len(src.test) == 19 and src.num_classes == 3
    assert cli.main(["data", "list", "--root", str(root)]) == 0
    lines = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()[1:]}
    assert lines["eurosat"][1:3] == ["verified", "auto"] and lines["cifar10"][1] == "missing"
    assert lines["stanford_cars"][1:3] == ["missing", "manual"] and lines["mini_fmnist"][1:3] == [
        "built",
        "in",
    ]


def test_interrupted_fetch_resumes_with_range(server, tmp_path):
    base, srv = server
    bodies = cub_bodies(tmp_path)
    body = bodies["CUB_200_2011.tgz"]
    row = serve(srv, "cub200", bodies)
    half = len(body) // 2
    srv.cut["/cub200/CUB_200_2011.tgz"] = [half]  # the first transfer dies half-way
    root = tmp_path / "data"
    fetch("cub200", root, table(base, row), retry=FAST, progress=False)
    assert [r for _, r, _ in srv.log] == [None, f"bytes={half}-"]
    assert [s for *_, s in srv.log] == [200, 206]
    src = load("cub200", root)
    assert (len(src.train), len(src.test), src.num_classes) == (5, 2, 2)
    assert cli.main(["data", "check", "cub200", "--root", str(root)]) == 0


def test_a_part_file_from_a_killed_fetch_is_continued_not_trusted(server, tmp_path):
    base, srv = server
    bodies = cub_bodies(tmp_path)
    row = serve(srv, "cub200", bodies)
    part = tmp_path / "data" / "cub200" / DOWNLOADS / "CUB_200_2011.tgz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(bodies["CUB_200_2011.tgz"][:1000])
    fetch("cub200", tmp_path / "data", table(base, row), retry=FAST, progress=False)
    assert srv.log[0][1] == "bytes=1000-" and not part.exists()


def test_a_server_ignoring_range_restarts_the_file_cleanly(server, tmp_path):
    base, srv = server
    body = b"transferlab" * 5000
    srv.files["/x/f.bin"] = body
    srv.ignore_range.add("/x/f.bin")
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(b"garbage that is not the start of the file")
    got = download([f"{base}/x/f.bin"], dest, (Checksum("md5", md5(body), "t"),), FAST, False)
    assert dest.read_bytes() == body and got["md5"] == md5(body) and srv.log[0][2] == 200


def test_mirror_fallback_after_404_500_and_cuts_with_bounded_retries(server, tmp_path):
    base, srv = server
    body = b"payload" * 1000
    srv.files["/good/f.bin"] = srv.files["/flaky/f.bin"] = body
    srv.cut["/flaky/f.bin"] = [100] * FAST.attempts  # every attempt dies after 100 more bytes
    srv.broken.add("/broken/f.bin")
    urls = [f"{base}/missing/f.bin", f"{base}/broken/f.bin", f"{base}/flaky/f.bin", f"{base}/good/f.bin"]
    sha = (Checksum("sha256", hashlib.sha256(body).hexdigest(), "t"),)
    got = download(urls, tmp_path / "f.bin", sha, FAST, False)
    assert got["url"] == urls[3] and (tmp_path / "f.bin").read_bytes() == body
    paths = [p for p, *_ in srv.log]
    assert paths.count("/missing/f.bin") == 1  # a 404 is not retried
    assert paths.count("/broken/f.bin") == paths.count("/flaky/f.bin") == FAST.attempts  # bounded retries
    assert [r for p, r, _ in srv.log if p == "/flaky/f.bin"] == [None, "bytes=100-", "bytes=200-"]
    assert [r for p, r, _ in srv.log if p == "/good/f.bin"] == [None]  # a mirror starts from byte 0


def test_checksum_mismatch_names_file_and_digests_and_keeps_the_users_files(
    server, tmp_path, capsys, monkeypatch
):
    base, srv = server
    body = b"the real archive" * 100
    srv.files["/cifar10/cifar-10-python.tar.gz"] = body
    srv.wrong.add("/cifar10/cifar-10-python.tar.gz")
    monkeypatch.setenv(MIRROR_ENV, base)
    root = tmp_path / "data"
    (root / "cifar10").mkdir(parents=True)
    (root / "cifar10" / "my-notes.txt").write_text("mine")
    assert cli.main(["data", "fetch", "cifar10", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "cifar-10-python.tar.gz" in err and "checksum mismatch" in err
    assert "c58f30108f718f92721af3b95e74349a" in err  # the published md5 …
    wrong = hashlib.sha256(body).digest() * (len(body) // 32 + 1)
    assert md5(wrong[: len(body)]) in err  # … and the one received
    assert (root / "cifar10" / "my-notes.txt").read_text() == "mine"
    assert not list((root / "cifar10" / DOWNLOADS).iterdir())  # only our .part was removed
    assert status("cifar10", root).state == "partial"


def test_an_archive_already_on_disk_is_checked_and_never_deleted(tmp_path):
    dest = tmp_path / "a.tar.gz"
    dest.write_bytes(b"someone's file")
    with pytest.raises(ChecksumMismatch, match="left in place"):
        download(["http://127.0.0.1:9/never-asked"], dest, (Checksum("md5", "0" * 32, "t"),), FAST, False)
    assert dest.read_bytes() == b"someone's file"


# ---------------------------------------------------------------------------------------------------- safety
def _evil_tar(kind: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ok = tarfile.TarInfo("images/ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        bad = tarfile.TarInfo(
            {"dotdot": "images/../../evil.txt", "absolute": "/tmp/evil.txt"}.get(kind, "lnk")
        )
        if kind == "symlink":
            bad.type, bad.linkname = tarfile.SYMTYPE, "../../.."
        elif kind == "device":
            bad.type = tarfile.CHRTYPE
        else:
            bad.size = 4
        tf.addfile(bad, io.BytesIO(b"evil") if bad.isfile() else None)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "device"])
def test_unsafe_tar_members_are_refused(kind, tmp_path):
    archive = tmp_path / "a.tgz"
    archive.write_bytes(_evil_tar(kind))
    with pytest.raises(UnsafeArchive):
        unpack(archive, tmp_path / "out" / "staging", "tar")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()


def test_path_traversal_in_a_fetched_zip_leaves_no_tree(server, tmp_path):
    base, srv = server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("2750/Forest/Forest_1.jpg", b"jpeg")
        zf.writestr("../../evil.txt", b"evil")
    row = serve(srv, "eurosat", {"EuroSAT.zip": buf.getvalue()})
    root = tmp_path / "data"
    with pytest.raises(UnsafeArchive, match="evil.txt"):
        fetch("eurosat", root, table(base, row), retry=FAST, progress=False)
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    assert sorted(p.name for p in (root / "eurosat").iterdir()) == [DOWNLOADS]  # no 2750/, no staging


def test_user_entries_in_the_way_are_never_replaced(server, tmp_path, monkeypatch):
    base, srv = server
    row = serve(srv, "cifar10", cifar10_bodies(tmp_path, monkeypatch))
    root = tmp_path / "data"
    mine = root / "cifar10" / CIFAR10.base_folder / "data_batch_1"
    mine.parent.mkdir(parents=True)
    mine.write_text("a copy of my own")
    with pytest.raises(FetchError, match="not made by `transferlab data fetch`"):
        fetch("cifar10", root, table(base, row), retry=FAST, progress=False)
    assert mine.read_text() == "a copy of my own"
    assert not (root / "cifar10" / ".transferlab-staging").exists()


# ----------------------------------------------------------------------------------------- manual and partial
def test_manual_steps_and_layout_instead_of_a_silent_partial_tree(tmp_path, capsys):
    root = tmp_path / "data"
    with pytest.raises(ManualSteps, match="Manual steps") as err:
        fetch("stanford_cars", root)
    assert "cars_train" in str(err.value) and "kaggle" in str(err.value).lower()
    assert cli.main(["data", "fetch", "conll2003", "--root", str(root)]) == 2
    out = capsys.readouterr().err
    assert "NIST" in out and "conll2003/{train,valid,test}.txt" in out
    assert not root.exists()


def test_partly_manual_dataset_downloads_its_part_then_asks_for_the_rest(server, tmp_path):
    base, srv = server
    build = tmp_path / "build" / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    build.mkdir(parents=True)
    line = (
        " ".join(["10 12"] * 98 + ["1 2 40 40", "0 0 0 0 0 0", "0--Parade/a.jpg"]) + "\n"
    )  # the WFLW format
    for part in ("train", "test"):
        (build / f"list_98pt_rect_attr_{part}.txt").write_text(line)
    row = serve(srv, "wflw", {"WFLW_annotations.tar.gz": tar_bytes(tmp_path / "build", ["WFLW_annotations"])})
    root, t = tmp_path / "data", table(base, row)
    with pytest.raises(ManualSteps, match="Google Drive"):
        fetch("wflw", root, t, retry=FAST, progress=False)
    assert status("wflw", root, t).state == "partial"
    write_jpeg(root / "wflw" / "WFLW_images" / "0--Parade" / "a.jpg")
    fetch("wflw", root, t, retry=FAST, progress=False)
    assert status("wflw", root, t).state == "verified"


# ---------------------------------------------------------------------- image lists, ImageFolder, conversions
def test_tllib_lists_and_image_folders_with_our_recorded_checksum(server, tmp_path):
    base, srv = server
    build = tmp_path / "build"
    make_image_lists(build, style="tllib")
    bodies = {"image_list.zip": zip_bytes(build, ["image_list"]), "train.tgz": tar_bytes(build, ["train"]),
              "test.tgz": tar_bytes(build, ["test"])}  # fmt: skip
    serve(srv, "coco70", bodies, sums=False)  # TLlib publishes no checksum
    root, t = tmp_path / "data", table(base)
    manifest = fetch("coco70", root, t, retry=FAST, progress=False)
    src = load("coco70", root)
    assert (len(src.train), len(src.test), src.info["layout"]) == (9, 6, "tllib")
    assert set(src.info["sampling_rate_lists"]) == {100, 50}
    recorded = {f["name"]: f["recorded"] for f in manifest["files"]}
    assert recorded["train.tgz"]["value"] == hashlib.sha256(bodies["train.tgz"]).hexdigest()
    assert recorded["train.tgz"]["origin"].startswith("ours")
    srv.wrong.add("/coco70/train.tgz")  # upstream changes: the next fetch is checked against ours
    with pytest.raises(ChecksumMismatch, match="ours"):
        fetch("coco70", root, t, force=True, retry=FAST, progress=False)


def _varint(n: int) -> bytes:
    out = b""
    while True:
        out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return out


def _field(number: int, body: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(body)) + body


def _example(image: bytes, label: int, packed: bool) -> bytes:
    """A tf.train.Example, encoded by hand from the protobuf wire format (as TensorFlow writes it)."""
    ints = _field(1, _varint(label)) if packed else _varint(1 << 3) + _varint(label)
    feats = {
        "image": _field(1, _field(1, image)),
        "label": _field(3, ints),
        "filename": _field(1, _field(1, b"f")),
    }
    entries = b"".join(_field(1, _field(1, k.encode()) + _field(2, v)) for k, v in feats.items())
    return _field(1, entries)


def _tfrecord(examples: list[bytes]) -> bytes:
    return b"".join(struct.pack("<Q", len(e)) + b"\0" * 4 + e + b"\0" * 4 for e in examples)


def test_dmlab_tfrecords_become_an_image_folder(server, tmp_path):
    base, srv = server
    jpeg = write_jpeg(tmp_path / "one.jpg").read_bytes()
    shards = {"train": [0, 1, 5, 3, 2, 1], "validation": [2, 0], "test": [5, 3, 0]}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for split, labels in shards.items():
            data = _tfrecord([_example(jpeg, y, packed=i % 2 == 0) for i, y in enumerate(labels)])
            info = tarfile.TarInfo(f"dmlab-{split}.tfrecord-00000-of-00001")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    row = serve(srv, "dmlab", {"dmlab.tar.gz": buf.getvalue()})
    root = tmp_path / "data"
    manifest = fetch("dmlab", root, table(base, row), retry=FAST, progress=False)
    src = load("dmlab", root)
    assert src.classes == ["0", "1", "2", "3", "5"] and src.info["layout"] == "imagefolder"
    assert (len(src.train), len(src.val), len(src.test)) == (6, 2, 3)
    assert sorted(src.classes[y] for y in src.test.targets) == ["0", "3", "5"]
    assert manifest["prepared"] == {"train": 6, "val": 2, "test": 3}


def test_stanford40_official_splits_become_image_lists(server, tmp_path):
    base, srv = server
    build = tmp_path / "build"
    counts = {"applauding": (2, 1), "riding_a_horse": (1, 2)}
    for action, (n_train, n_test) in counts.items():
        names = [f"{action}_{i:03d}.jpg" for i in range(n_train + n_test)]
        for i, n in enumerate(names):
            write_jpeg(build / "JPEGImages" / n, seed=i)
        (build / "ImageSplits").mkdir(parents=True, exist_ok=True)
        (build / "ImageSplits" / f"{action}_train.txt").write_text("\n".join(names[:n_train]) + "\n")
        (build / "ImageSplits" / f"{action}_test.txt").write_text("\n".join(names[n_train:]) + "\n")
    (build / "ImageSplits" / "train.txt").write_text("all\n")  # the combined lists are not classes
    bodies = {"Stanford40_JPEGImages.zip": zip_bytes(build, ["JPEGImages"]),
              "Stanford40_ImageSplits.zip": zip_bytes(build, ["ImageSplits"])}  # fmt: skip
    serve(srv, "stanford40", bodies, sums=False)
    root = tmp_path / "data"
    fetch("stanford40", root, table(base), retry=FAST, progress=False)
    src = load("stanford40", root)
    assert src.classes == ["applauding", "riding_a_horse"]
    assert (src.train.targets.tolist(), src.test.targets.tolist()) == ([0, 0, 1], [0, 1, 1])


def test_stanford_dogs_mat_lists_become_image_lists(server, tmp_path):
    from scipy.io import savemat

    base, srv = server
    build = tmp_path / "build"
    breeds = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel"]
    split = {"train": [(0, "a"), (1, "b"), (0, "c")], "test": [(1, "d"), (0, "e")]}
    for part, rows in split.items():
        files = [f"{breeds[y]}/{n}.jpg" for y, n in rows]
        for i, f in enumerate(files):
            write_jpeg(build / "Images" / f, seed=i)
        cells = np.empty((len(files), 1), dtype=object)
        for i, f in enumerate(files):
            cells[i, 0] = np.array([f])
        savemat(
            build / f"{part}_list.mat", {"file_list": cells, "labels": np.array([[y + 1] for y, _ in rows])}
        )
    bodies = {"images.tar": tar_bytes(build, ["Images"], "w"),
              "lists.tar": tar_bytes(build, ["train_list.mat", "test_list.mat"], "w")}  # fmt: skip
    row = serve(srv, "stanford_dogs", bodies)
    root = tmp_path / "data"
    fetch("stanford_dogs", root, table(base, row), retry=FAST, progress=False)
    src = load("stanford_dogs", root)
    assert src.classes == breeds
    assert (src.train.targets.tolist(), src.test.targets.tolist()) == ([0, 1, 0], [1, 0])


def test_mit_indoor67_official_lists_become_image_lists(server, tmp_path):
    base, srv = server
    build = tmp_path / "build"
    rows = {
        "train": ["kitchen/a.jpg", "bar/b b.jpg", "kitchen/c.jpg"],
        "test": ["bar/d.jpg", "kitchen/e.jpg"],
    }
    for i, rel in enumerate(rows["train"] + rows["test"]):
        write_jpeg(build / "Images" / rel, seed=i)
    bodies = {"indoorCVPR_09.tar": tar_bytes(build, ["Images"], "w"),
              "TrainImages.txt": "\r\n".join(rows["train"]).encode(),  # Windows line ends, as published
              "TestImages.txt": "\n".join(rows["test"]).encode()}  # fmt: skip
    serve(srv, "mit_indoor67", bodies, sums=False)
    root = tmp_path / "data"
    fetch("mit_indoor67", root, table(base), retry=FAST, progress=False)
    src = load("mit_indoor67", root)
    assert src.classes == ["bar", "kitchen"] and src.info["layout"] == "image lists"
    assert (src.train.targets.tolist(), src.test.targets.tolist()) == ([1, 0, 1], [0, 1])
    assert (root / "mit_indoor67" / "TrainImages.txt").is_file()  # the official lists stay beside ours


def test_fashion_mnist_files_are_placed_in_torchvisions_folder(server, tmp_path):
    base, srv = server
    make_fashion_mnist(tmp_path / "build", gz=True)
    raw = tmp_path / "build" / "FashionMNIST" / "raw"
    row = serve(srv, "fashion_mnist", {p.name: p.read_bytes() for p in raw.iterdir()})
    root = tmp_path / "data"
    manifest = fetch("fashion_mnist", root, table(base, row), retry=FAST, progress=False)
    src = load("fashion_mnist", root)
    assert (len(src.train), len(src.test)) == (4, 2) and manifest["entries"] == ["raw"]
    assert (root / "FashionMNIST" / MANIFEST).is_file() and not (root / "fashion_mnist").exists()


# -------------------------------------------------------------------------------------------------- data list
def test_list_names_every_registered_dataset_and_every_row(tmp_path):
    rows = {s.name: s for s in catalog(tmp_path)}
    assert set(DATASETS.names()) <= set(rows) and {"tiny_imagenet", "conll2003"} <= set(rows)
    assert rows["tiny_imagenet"].detail.startswith("no loader yet") and rows["cub200"].how == "auto"
    assert "cub200:tllib" in rows["cub200"].detail and rows["stanford_cars"].how == "manual"
    real = [r for name, r in rows.items() if not name.startswith("test_")]  # not the tests' own stand-ins
    assert rows["wflw"].how == "partly" and all(r.state in ("missing", "built in") for r in real)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "junk").write_bytes(gzip.compress(b"x"))
    assert status("cifar10", tmp_path).state == "partial"
