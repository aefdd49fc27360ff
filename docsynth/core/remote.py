"""Inputs on object storage and web servers, through fsspec: `s3://`, `gs://`,
`hf://datasets/ORG/NAME/...` and `https://`.

Credentials come from where each filesystem looks (AWS environment and profiles, Google
application credentials, huggingface_hub's token) and never from a URL: a URL is shown with
any `user:password@` and query string removed. Reads are ranges or streams, never whole
objects held for no reason; a transient failure (connection, timeout, 5xx, throttling) is
retried with backoff, and a permanent one (403, 404) is one DocsynthError naming the URL.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

from docsynth.core.errors import DocsynthError, MissingDependencyError

log = logging.getLogger(__name__)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.I)
# Which extra brings each protocol's filesystem (fsspec names the module it misses).
_EXTRA = {"s3": "remote", "gs": "remote", "gcs": "remote", "http": "remote", "https": "remote", "hf": "hub"}
RETRIES, BACKOFF_S, BACKOFF_MAX_S = 5, 0.5, 20.0
T = TypeVar("T")


def is_remote(path: str) -> bool:
    m = _SCHEME.match(str(path))
    return bool(m) and m.group(1).lower() != "file"


def shown(url: str) -> str:
    """The URL as it may be printed: no user or password, no query (presigned URLs carry keys there)."""
    url = re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", str(url), flags=re.I)
    return url.split("?", 1)[0]


def filesystem(url: str):
    """(fsspec filesystem, path within it) of a URL; MissingDependencyError names the extra."""
    try:
        import fsspec
    except ImportError:
        raise MissingDependencyError("remote inputs need fsspec: pip install 'docsynth[remote]'") from None
    scheme = _SCHEME.match(url).group(1).lower()
    options = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if scheme in ("s3", "s3a") and endpoint:
        # botocore reads it too, but fsspec's cache of filesystems does not key on it: named here,
        # a process that changes endpoints never reuses a client of the old one.
        options["client_kwargs"] = {"endpoint_url": endpoint}
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError as e:
        raise MissingDependencyError(f"{scheme}:// needs {e.name or 'a filesystem package'}: "
                                     f"pip install 'docsynth[{_EXTRA.get(scheme, 'remote')}]'") from None
    except ValueError as e:
        raise DocsynthError(f"{shown(url)}: not a URL docsynth can read ({e})") from None


_NO_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "NoAuthTokenError",
                   "DefaultCredentialsError", "RefreshError"}


def permanent(e: BaseException) -> str | None:
    """Why an error is not worth retrying ("not found", "access denied"), or None if it may pass."""
    if isinstance(e, FileNotFoundError):
        return "not found (404)"
    # botocore, google-auth: no credentials, or ones that cannot be used; no retry makes them appear
    if {c.__name__ for c in type(e).__mro__} & _NO_CREDENTIALS or re.search(
            r"Unable to locate credentials|ExpiredToken|InvalidClientTokenId|could not automatically determine credentials",
            str(e)):
        return ("no usable credentials on this machine: set them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "a profile, or GOOGLE_APPLICATION_CREDENTIALS) or use a public URL")
    if isinstance(e, PermissionError):
        return "access denied (403): check the credentials of this machine"
    status = getattr(e, "status", None) or getattr(e, "code", None)
    if isinstance(status, int) and status in (401, 403):
        return f"access denied ({status}): check the credentials of this machine"
    if isinstance(status, int) and status == 404:
        return "not found (404)"
    text = str(e)
    if re.search(r"\b40[13]\b|Forbidden|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch", text):
        return "access denied (403): check the credentials of this machine"
    if re.search(r"\b404\b|NoSuchKey|NoSuchBucket|Not Found", text):
        return "not found (404)"
    return None


def retried(what: str, url: str, fn: Callable[[], T]) -> T:
    """fn(), retried on transient errors with exponential backoff and jitter; DocsynthError naming
    the URL (credentials removed) on a permanent one or when the retries are spent."""
    rng = random.Random(url)
    for attempt in range(RETRIES + 1):
        try:
            return fn()
        except Exception as e:  # fsspec backends raise OSError, aiohttp, botocore and HTTP errors
            why = permanent(e)
            if why is not None:
                raise DocsynthError(f"{shown(url)}: {why} ({what})") from None
            if attempt == RETRIES:
                raise DocsynthError(f"{shown(url)}: {what} failed after {RETRIES + 1} attempts: "
                                    f"{type(e).__name__}: {_scrub(str(e))[:300]}") from None
            delay = min(BACKOFF_S * 2 ** attempt, BACKOFF_MAX_S) * (0.5 + rng.random())
            log.warning("%s: %s failed (%s); retrying in %.1f s", shown(url), what, type(e).__name__, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _scrub(text: str) -> str:
    """An error message without anything that looks like a credential in a URL."""
    return re.sub(r"([a-z][a-z0-9+.-]*://)[^/@\s]*@", r"\1", re.sub(r"\?[^\s'\"]*", "", text), flags=re.I)


def expand(url: str) -> list[str]:
    """The files a remote input names, sorted: a glob's matches, a folder's files (recursive) or
    the file itself. DocsynthError names the URL if it names nothing."""
    fs, path = filesystem(url)
    scheme = url[:_SCHEME.match(url).end()]
    if any(c in path for c in "*?["):
        found = retried("listing", url, lambda: sorted(fs.glob(path)))
    elif retried("looking it up", url, lambda: fs.isdir(path)):
        found = retried("listing", url, lambda: sorted(fs.find(path)))
    else:
        retried("looking it up", url, lambda: fs.info(path))
        found = [path]
    files = [scheme + f if not _SCHEME.match(f) else f for f in found]
    if not files:
        raise DocsynthError(f"remote input matches no files: {shown(url)}")
    return files


def read_range(url: str, start: int, size: int) -> bytes:
    """size bytes of an object from start (one ranged read, retried)."""
    fs, path = filesystem(url)
    data = retried("reading", url, lambda: fs.cat_file(path, start=start, end=start + size))
    if len(data) != size:
        raise OSError(f"{shown(url)}: object cut short ({len(data)} of {size} bytes from {start})")
    return data


def read_all(url: str) -> bytes:
    fs, path = filesystem(url)
    return retried("reading", url, lambda: fs.cat_file(path))


def open_stream(url: str, block_size: int = 8 << 20):
    """A seekable file object read in blocks of block_size (bounded memory for a stream)."""
    fs, path = filesystem(url)
    return retried("opening", url, lambda: fs.open(path, "rb", block_size=block_size))


def stat(url: str) -> tuple[int, str]:
    """(size, version tag: ETag or modification time) of an object."""
    fs, path = filesystem(url)
    info = retried("looking it up", url, lambda: fs.info(path))
    tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
    return int(info.get("size") or 0), str(tag)
