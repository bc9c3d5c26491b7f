"""Downloads into the cache: URL, sha256, progress bar, atomic write, clear offline errors.

A :class:`Resource` names a file and where it is published. :func:`fetch` returns its path
in the cache folder, downloading it first if needed:

1. a file already in the cache is checked against the sha256 (a hand-copied file too);
2. otherwise each URL is tried in turn; the bytes go to a temporary file in the cache
   folder, are checked, and only then renamed to their final name (``os.replace`` is
   atomic), so an interrupted or corrupt download never leaves a file that looks complete;
3. without network access the error gives the URL, the path to put the file at by hand,
   and the environment variable that moves the cache (``NN_DATA_DIR``).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
TIMEOUT_S = 30


class DownloadError(OSError):
    """A dataset file could not be downloaded (offline, or no URL answered)."""


class ChecksumError(ValueError):
    """A dataset file does not have the published sha256 (truncated or corrupt)."""


@dataclass(frozen=True)
class Resource:
    """A published data file: its name in the cache, mirrors, sha256 and size in bytes."""

    filename: str
    urls: tuple[str, ...]
    sha256: str
    size: int | None = None

    def describe(self) -> str:
        size = "" if self.size is None else f", {self.size / 2**20:.1f} MiB"
        return f"{self.filename} ({self.urls[0]}{size})"


def sha256sum(path) -> str:
    """Hex sha256 of a file, read in chunks (the CIFAR archive is 170 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(resource: Resource, folder, progress: bool = True) -> Path:
    """Path of ``resource`` in ``folder``, downloaded and verified first if not there yet.

    Raises
    ------
    ChecksumError
        A file in the cache, or every downloaded copy, has the wrong sha256.
    DownloadError
        No URL could be reached (offline); the message says how to get the file by hand.
    """
    folder = Path(folder)
    path = folder / resource.filename
    if path.is_file():
        if sha256sum(path) != resource.sha256:
            # a file put there by hand is the user's: say what is wrong rather than delete it
            raise ChecksumError(
                f"{path} does not have the published sha256 of {resource.filename} (it is "
                f"truncated, corrupt or another version): delete it so that nn downloads it "
                f"again, or replace it with the file from {resource.urls[0]}")
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the cache folder {folder} ({exc}); set NN_DATA_DIR "
                            "to a writable folder") from exc

    failures = []
    for url in resource.urls:
        tmp = folder / f".{resource.filename}.{secrets.token_hex(8)}.part"
        try:
            _download(url, tmp, resource, progress)
            if sha256sum(tmp) != resource.sha256:
                failures.append(f"{url}: wrong sha256 (truncated or altered copy, not kept)")
                continue
            os.replace(tmp, path)
            return path
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            failures.append(f"{url}: {reason}")
        finally:
            tmp.unlink(missing_ok=True)
    if any("wrong sha256" in f for f in failures):
        raise ChecksumError(f"every download of {resource.filename} had the wrong sha256 "
                            f"({'; '.join(failures)}); try again later, or download it by hand "
                            f"from {resource.urls[0]} and put it at {path}")
    raise DownloadError(
        f"could not download {resource.describe()} ({'; '.join(failures)}); without network "
        f"access, download it by hand on a connected machine and put it at {path} (set "
        f"NN_DATA_DIR to use another cache folder)")


def _download(url: str, tmp: Path, resource: Resource, progress: bool) -> None:
    """Copy the bytes at ``url`` into the new file ``tmp``, with a tqdm progress bar."""
    request = urllib.request.Request(url, headers={"User-Agent": "nn-course (python urllib)"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(tmp, "xb") as out:
        total = response.headers.get("Content-Length")
        total = int(total) if total else resource.size
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=resource.filename, leave=False)
        try:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        out.flush()
        os.fsync(out.fileno())


def extract_tar(archive, folder, top: str) -> Path:
    """Extract ``archive`` into ``folder`` atomically; returns ``folder / top``.

    The archive is unpacked into a temporary folder beside the destination, then its
    ``top`` folder is renamed into place: an interrupted extraction leaves nothing that
    looks complete. Members that would land outside the folder (absolute paths, ``..``,
    links out of it) are refused.
    """
    folder = Path(folder)
    target = folder / top
    if target.exists():
        return target
    tmp = folder / f".extract.{secrets.token_hex(8)}"
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python < 3.11.4: check the names ourselves
                for member in tar.getmembers():
                    name = Path(member.name)
                    if name.is_absolute() or ".." in name.parts or member.islnk() or member.issym():
                        raise ValueError(f"{archive}: refusing the unsafe member {member.name!r}")
                tar.extractall(tmp)
        if not (tmp / top).is_dir():
            raise ValueError(f"{archive} has no folder {top}/; it is not the expected archive, "
                             "delete it and load again")
        os.replace(tmp / top, target)
    except (tarfile.TarError, EOFError) as exc:
        raise ValueError(f"{archive} is not a readable tar archive ({exc}); it is truncated or "
                         "corrupt: delete it and load again") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
