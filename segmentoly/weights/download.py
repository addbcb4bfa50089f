"""Downloading large files that survive interruptions and never pass off a partial file as complete.

Bytes go to ``<file>.part``, which is renamed to ``<file>`` only once the transfer is complete and checked: the
size the server announced (and the registry's, where it knows one) and the checksum where one is known. An
interrupted transfer resumes from the ``.part`` file with an HTTP ``Range`` request; a server that ignores the
range (answers 200 with the whole file) makes it start again from the beginning. A file that is already
complete is not downloaded again. ``file://`` URLs are copied the same way.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse
from urllib.request import url2pathname

from tqdm import tqdm

from segmentoly import __version__

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
USER_AGENT = f"segmentoly/{__version__} (+https://github.com/openvinotoolkit/training_extensions)"


class DownloadError(OSError):
    """A download that failed or gave a file that is not the expected one."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int
    transferred: int  # bytes received by this call
    resumed_from: int  # bytes already present in the .part file when the transfer started
    skipped: bool  # the file was already complete

    def describe(self) -> str:
        if self.skipped:
            return "already complete"
        resumed = f", resumed at {format_size(self.resumed_from)}" if self.resumed_from else ""
        return f"downloaded {format_size(self.transferred)}{resumed}"


def format_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path, *, size: int | None = None, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise :class:`DownloadError` if ``path`` does not have the given size and checksums."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise DownloadError(f"{path}: {actual} bytes, expected {size}")
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected and file_digest(path, algorithm) != expected.lower():
            raise DownloadError(f"{path}: {algorithm} checksum mismatch (expected {expected}): the file is damaged")


class _Source:
    """An open transfer: ``stream`` starts at byte ``start`` of a file of ``total`` bytes (None: unknown)."""

    def __init__(self, stream: BinaryIO, start: int, total: int | None) -> None:
        self.stream, self.start, self.total = stream, start, total

    def close(self) -> None:
        self.stream.close()


class _RangeNotSatisfiable(Exception):
    def __init__(self, total: int | None) -> None:
        self.total = total


def _open_file(url: str, offset: int) -> _Source:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise DownloadError(f"{url}: only local file:// URLs are supported")
    path = Path(url2pathname(parsed.path))
    try:
        total = path.stat().st_size
        stream = open(path, "rb")
    except OSError as error:
        raise DownloadError(f"{url}: cannot read {path}: {error.strerror or error}") from error
    if offset > total:
        stream.close()
        raise _RangeNotSatisfiable(total)
    stream.seek(offset)
    return _Source(stream, offset, total)


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _open_http(url: str, offset: int, timeout: float) -> _Source:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            match = re.search(r"/(\d+)", error.headers.get("Content-Range", "") or "")
            raise _RangeNotSatisfiable(int(match.group(1)) if match else None) from None
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DownloadError(f"{url}: cannot connect: {error.reason}") from None
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(f"{url}: cannot connect: {error}") from None
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if offset and response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            total = int(match.group(3)) if match.group(3) != "*" else None
            return _Source(response, offset, total if total is not None else (offset + length if length else None))
        logger.warning("%s: the server answered another range than asked; starting again", url)
        response.close()
        return _open_http(url, 0, timeout)
    if offset:
        logger.info("%s: the server does not resume transfers; starting again", url)
    return _Source(response, 0, length)


def _open(url: str, offset: int, timeout: float) -> _Source:
    scheme = urlparse(url).scheme
    if scheme == "file":
        return _open_file(url, offset)
    if scheme in ("http", "https"):
        return _open_http(url, offset, timeout)
    raise DownloadError(f"{url}: unsupported URL scheme {scheme!r} (http, https and file are)")


def remote_size(url: str, timeout: float = 60.0) -> int | None:
    """The size of the file at ``url`` as its server announces it (None where it does not): a HEAD request,
    or a GET closed after the headers for servers that refuse HEAD."""
    if urlparse(url).scheme in ("http", "https"):
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                return int(length) if length and length.isdigit() else None
        except urllib.error.HTTPError as error:
            if error.code not in (403, 405, 501):
                raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
        except (OSError, http.client.HTTPException) as error:
            raise DownloadError(f"{url}: cannot connect: {getattr(error, 'reason', error)}") from None
    source = _open(url, 0, timeout)
    source.close()
    return source.total


def download(
    url: str,
    destination: str | Path,
    *,
    expected_size: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    description: str | None = None,
    timeout: float = 60.0,
) -> DownloadResult:
    """Download ``url`` to ``destination``, resuming a previous attempt's ``.part`` file.

    A ``destination`` that already has the expected size (the registry's, else the server's) and checksums is
    left alone. Raises :class:`DownloadError` on HTTP errors, connection failures, an incomplete transfer (the
    ``.part`` file is kept so that the next call resumes it) or a file of the wrong size or checksum.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    if destination.is_file() and _is_complete(url, destination, expected_size, md5, sha256, timeout):
        return DownloadResult(destination, destination.stat().st_size, 0, 0, skipped=True)

    offset = partial.stat().st_size if partial.is_file() else 0
    if expected_size is not None and offset > expected_size:
        partial.unlink()
        offset = 0
    try:
        source = _open(url, offset, timeout)
    except _RangeNotSatisfiable as error:
        if error.total is not None and error.total == offset:
            source = None  # the previous attempt got everything; only the checks and the rename are left
        else:
            partial.unlink(missing_ok=True)
            offset = 0
            source = _open(url, 0, timeout)

    transferred = 0
    if source is not None:
        if expected_size is not None and source.total is not None and source.total != expected_size:
            source.close()
            raise DownloadError(f"{url}: the server offers {source.total} bytes, the registry expects {expected_size}")
        offset = source.start
        try:
            transferred = _copy(source, partial, description or destination.name, progress, url)
        finally:
            source.close()
        size = partial.stat().st_size
        if source.total is not None and size < source.total:
            raise DownloadError(
                f"{url}: incomplete download, {size} of {source.total} bytes (the connection closed early); "
                f"run again to resume from {partial}"
            )
    size = partial.stat().st_size
    if expected_size is not None and size < expected_size:
        raise DownloadError(
            f"{url}: incomplete download, {size} of {expected_size} bytes; run again to resume from {partial}"
        )
    try:
        check_file(partial, size=expected_size, md5=md5, sha256=sha256)
    except DownloadError as error:
        partial.unlink(missing_ok=True)  # complete but wrong: resuming it would not help
        raise DownloadError(f"{url}: {error}") from None
    os.replace(partial, destination)
    return DownloadResult(destination, size, transferred, offset, skipped=False)


def _is_complete(
    url: str, path: Path, expected_size: int | None, md5: str | None, sha256: str | None, timeout: float
) -> bool:
    """Whether an existing download is the whole file: its size (the registry's, else the server's) and any
    known checksums match."""
    size = expected_size
    if size is None:
        try:
            size = remote_size(url, timeout)
        except DownloadError as error:
            logger.warning("%s: cannot check its size against the server (%s); keeping it", path, error)
            return True
        if size is None:
            return True  # nothing to compare with: it was renamed into place after a complete transfer
    try:
        check_file(path, size=size, md5=md5, sha256=sha256)
    except DownloadError as error:
        logger.warning("%s: %s; downloading it again", path, error)
        return False
    return True


def _copy(source: _Source, partial: Path, description: str, progress: bool, url: str) -> int:
    """Append the transfer to ``partial`` (truncated first when the transfer starts at byte 0)."""
    written = 0
    mode = "ab" if source.start else "wb"
    with (
        open(partial, mode) as output,
        tqdm(
            total=source.total,
            initial=source.start,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=description,
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        while True:
            try:
                chunk = source.stream.read(CHUNK_SIZE)
            except (OSError, http.client.HTTPException) as error:
                output.flush()
                raise DownloadError(
                    f"{url}: transfer interrupted after {source.start + written} bytes ({error}); "
                    f"run again to resume from {partial}"
                ) from None
            if not chunk:
                break
            output.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
    return written
