"""One file over HTTP(S), robustly: resume, retries with backoff, mirrors, checksums, atomic completion.

Why each rule exists:

- **A partial file is never taken for a finished one.** Bytes go to ``<name>.part``; only after the whole body arrived
  *and* the checksums matched is it renamed to ``<name>``. A killed fetch leaves a ``.part`` and nothing else.
- **An interrupted fetch resumes.** The next attempt asks for ``Range: bytes=<size of .part>-``; a server that
  answers 206 is appended to, one that ignores the range (200) restarts the file from byte 0, cleanly.
- **Bounded retries.** Each URL gets ``Retry.attempts`` tries with exponential backoff (transient errors only: a
  cut connection, a timeout, a 5xx); a 4xx such as 404 moves on to the next mirror at once. A mirror starts the
  file from byte 0 (bytes from two servers are never spliced together).
- **A checksum mismatch names the file, the expected and the actual digests**, and deletes only our own ``.part``
  (a wrong file from one mirror is not resumed from another). A finished ``<name>`` that does not match is the
  user's to inspect: it is reported, never deleted.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

CHUNK = 1 << 20
PERMANENT_HTTP = frozenset(range(400, 500)) - {408, 429}  # a retry cannot fix these: try the next mirror


class FetchError(FileNotFoundError):
    """A dataset's files could not be got or checked. A ``FileNotFoundError`` on purpose: the CLI reports those in
    one line and exits 2, like a missing dataset."""


class ChecksumMismatch(FetchError):
    """A downloaded file is not the published one (or not the one recorded at its first download)."""


@dataclass(frozen=True)
class Checksum:
    """A digest of a file and where it comes from (``origin``: who published it, or that we recorded it)."""

    kind: str  # a hashlib name: "md5" or "sha256"
    value: str
    origin: str


@dataclass(frozen=True)
class Retry:
    """How hard to try one URL: ``attempts`` tries, sleeping ``backoff_s`` × 2^k between them, ``timeout_s`` per
    socket operation. Tests shrink all three, so no loop runs long."""

    attempts: int = 4
    backoff_s: float = 2.0
    timeout_s: float = 60.0


DEFAULT_RETRY = Retry()


class _Transient(Exception):
    """A failure worth retrying on the same URL (cut connection, short body, timeout, 5xx)."""


def check_url(url: str) -> None:
    """Refuse anything but http(s) with a host: urllib would also open ``file:`` or ``ftp:`` URLs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"not an http(s) URL with a host: {url!r}")


def digests(path: Path) -> dict[str, str]:
    """md5 and sha256 of a file in one pass (the manifest records both, whichever one was published)."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            md5.update(chunk)
            sha.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def mismatches(found: dict[str, str], expected: tuple[Checksum, ...]) -> list[str]:
    return [
        f"{c.kind} expected {c.value} ({c.origin}), got {found[c.kind]}"
        for c in expected
        if found[c.kind] != c.value.lower()
    ]


def _bar(total: int | None, initial: int, desc: str, show: bool):
    """tqdm with byte units; ASCII updates every 15 s when stderr is not a terminal (logs, SLURM, CI)."""
    from tqdm import tqdm

    text = os.environ.get("TRANSFERLAB_PROGRESS", "auto") == "text" or not sys.stderr.isatty()
    return tqdm(
        total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, ascii=text,
        mininterval=15 if text else 0.5, file=sys.stderr, disable=not show, leave=show,
    )  # fmt: skip


def _transfer(url: str, part: Path, retry: Retry, show: bool) -> None:
    """One attempt: continue ``part`` from its size (Range) or restart it; raise ``_Transient`` on a short body."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "transferlab-data-fetch", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=retry.timeout_s)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # our .part is longer than the file: start again from byte 0
            part.unlink()
            raise _Transient(f"HTTP 416 for a resume at byte {offset}; restarting") from None
        raise
    with resp:
        if offset and resp.status != 206:
            offset = 0  # the server ignored Range and sends the whole file: restart cleanly
        elif offset and not resp.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            part.unlink()  # a range we did not ask for: never splice it onto our bytes
            raise _Transient(f"unexpected Content-Range {resp.headers.get('Content-Range')!r}; restarting")
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        done = offset
        with open(part, "ab" if offset else "wb") as out, _bar(total, offset, part.name[:-5], show) as bar:
            try:
                for chunk in iter(lambda: resp.read(CHUNK), b""):
                    out.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
            except (http.client.IncompleteRead, OSError) as err:
                raise _Transient(f"connection lost after {done} bytes ({type(err).__name__})") from None
    if total is not None and done != total:
        raise _Transient(f"connection closed after {done} of {total} bytes")


def _attempts(url: str, part: Path, retry: Retry, show: bool) -> str | None:
    """Try ``url`` up to ``retry.attempts`` times; None when the file arrived, else why this URL failed."""
    why = ""
    for k in range(retry.attempts):
        if k:
            time.sleep(retry.backoff_s * 2 ** (k - 1))
        try:
            _transfer(url, part, retry, show)
            return None
        except urllib.error.HTTPError as err:
            why = f"HTTP {err.code} {err.reason}"
            if err.code in PERMANENT_HTTP:
                return why
        except (_Transient, urllib.error.URLError, http.client.HTTPException, OSError) as err:
            why = str(getattr(err, "reason", None) or err) or type(err).__name__
    return f"{why} (after {retry.attempts} attempts)"


def download(
    urls: tuple[str, ...] | list[str],
    dest: Path,
    expected: tuple[Checksum, ...] = (),
    retry: Retry = DEFAULT_RETRY,
    progress: bool = True,
) -> dict:
    """``dest`` from the first of ``urls`` that delivers a file matching ``expected``; its digests and URL.

    An existing ``dest`` (an earlier verified download, or an archive the user put there) is checked instead of
    downloaded. With ``expected`` empty the file is accepted and its digests are returned for the caller to record.
    """
    dest = Path(dest)
    for url in urls:
        check_url(url)
    if dest.exists():
        found = digests(dest)
        bad = mismatches(found, expected)
        if bad:
            raise ChecksumMismatch(
                f"{dest} is on disk but does not match: {'; '.join(bad)}. It was left in place: delete or move it "
                "to download it again"
            )
        return {**found, "url": "", "bytes": dest.stat().st_size}
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    for i, url in enumerate(urls):
        if i and part.exists():
            part.unlink()  # never splice bytes from two servers: a mirror starts from byte 0
        why = _attempts(url, part, retry, progress)
        if why is None:
            found = digests(part)
            bad = mismatches(found, expected)
            if not bad:
                os.replace(part, dest)
                return {**found, "url": url, "bytes": dest.stat().st_size}
            part.unlink()  # our own temporary file; resuming a wrong file from another mirror cannot help
            why = f"checksum mismatch for {dest.name}: {'; '.join(bad)}"
        failures.append(f"{url}: {why}")
    kind = ChecksumMismatch if failures and all("checksum mismatch" in f for f in failures) else FetchError
    raise kind(f"could not download {dest.name}: " + " | ".join(failures))
