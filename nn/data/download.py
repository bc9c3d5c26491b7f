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
import http.client
import os
import re
import secrets
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataError, FileAccessError, MissingFileError, NNError

CHUNK = 1 << 20
TIMEOUT_S = 30


class DownloadError(NNError, OSError):
    """A dataset file could not be downloaded (offline, or no URL answered)."""


class ChecksumError(NNError, ValueError):
    """A dataset file does not have the published sha256 (truncated or corrupt)."""


@dataclass(frozen=True)
class Resource:
    """A published data file: its name in the cache, mirrors, sha256 and size in bytes."""

    filename: str
    urls: tuple[str, ...]
    sha256: str
    size: int | None = None

    def __post_init__(self):
        name = self.filename
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name \
                or "\\" in name:
            raise ConfigError(f"Resource: filename must be a plain file name (no folder), got "
                              f"{name!r}")
        if isinstance(self.urls, str) or not self.urls or \
                not all(isinstance(u, str) and u for u in self.urls):
            raise ConfigError(f"Resource {name}: urls must be a non-empty tuple of URL strings, "
                              f"got {self.urls!r}")
        if not isinstance(self.sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ConfigError(f"Resource {name}: sha256 must be 64 lower-case hex digits, got "
                              f"{self.sha256!r}")
        object.__setattr__(self, "urls", tuple(self.urls))

    def describe(self) -> str:
        size = "" if self.size is None else f", {self.size / 2**20:.1f} MiB"
        return f"{self.filename} ({self.urls[0]}{size})"


def file_error(path, exc: OSError, what: str = "read") -> FileAccessError:
    """An :class:`OSError` met on ``path`` as an nn error that names the path and the fix."""
    if isinstance(exc, FileNotFoundError):
        hint = "check the path" if what in ("read", "look into", "list") else \
            "create the folder first, or choose another path"
        return MissingFileError(f"{path} does not exist ({exc.strerror or exc}); {hint}")
    if isinstance(exc, PermissionError):
        hint = ("make it readable (chmod u+r, and u+rx on its folders)" if what == "read" else
                "make its folder writable, or set NN_DATA_DIR to a folder you can write")
        return FileAccessError(f"cannot {what} {path}: permission denied; {hint}")
    if isinstance(exc, IsADirectoryError):
        return FileAccessError(f"cannot {what} {path}: it is a folder, not a file; move it away")
    return FileAccessError(f"cannot {what} {path} ({type(exc).__name__}: {exc}); check the disk "
                           "and the permissions, or set NN_DATA_DIR to another folder")


def sha256sum(path) -> str:
    """Hex sha256 of a file, read in chunks (the CIFAR archive is 170 MB)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        raise file_error(path, exc) from exc
    return digest.hexdigest()


def fetch(resource: Resource, folder, progress: bool = True) -> Path:
    """Path of ``resource`` in ``folder``, downloaded and verified first if not there yet.

    Raises
    ------
    ChecksumError
        A file in the cache, or every downloaded copy, has the wrong sha256.
    DownloadError
        No URL could be reached (offline); the message says how to get the file by hand.
    FileAccessError
        The cache folder cannot be read or written (the message names it).
    """
    if not isinstance(resource, Resource):
        raise ConfigError(f"fetch: resource must be an nn.data.Resource, got "
                          f"{type(resource).__name__}")
    folder = Path(folder)
    path = folder / resource.filename
    if _exists(path):
        if not path.is_file():
            raise FileAccessError(f"{path} is in the way: it should be the file "
                                  f"{resource.filename}, it is a folder; move it away")
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
        why = "it is a file, not a folder" if folder.is_file() else str(exc)
        raise DownloadError(f"cannot create the cache folder {folder} ({why}); set NN_DATA_DIR "
                            "to a writable folder") from exc

    failures = []
    for url in resource.urls:
        tmp = folder / f".{resource.filename}.{secrets.token_hex(8)}.part"
        try:
            _download(url, tmp, resource, progress)
            if sha256sum(tmp) != resource.sha256:
                failures.append(f"{url}: wrong sha256 (truncated or altered copy, not kept)")
                continue
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise file_error(path, exc, "write") from exc
            return path
        except FileAccessError:
            raise  # the cache folder, not the network: no other mirror will do better
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
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


def _exists(path: Path) -> bool:
    """``path.exists()``, with a folder that cannot be looked into reported as such."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise file_error(path.parent, exc, "look into") from exc
    return True


def _download(url: str, tmp: Path, resource: Resource, progress: bool) -> None:
    """Copy the bytes at ``url`` into the new file ``tmp``, with a tqdm progress bar.

    A failure to create or write ``tmp`` (a read-only cache, a full disk) raises
    :class:`FileAccessError`; network failures raise what urllib raises.
    """
    try:
        out = open(tmp, "xb")
    except OSError as exc:
        raise file_error(tmp.parent, exc, "write into") from exc
    request = urllib.request.Request(url, headers={"User-Agent": "nn-course (python urllib)"})
    with out, urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else resource.size
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=resource.filename, leave=False)
        try:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise file_error(tmp.parent, exc, "write into") from exc
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        try:
            out.flush()
            os.fsync(out.fileno())
        except OSError as exc:
            raise file_error(tmp.parent, exc, "write into") from exc


def extract_tar(archive, folder, top: str) -> Path:
    """Extract ``archive`` into ``folder`` atomically; returns ``folder / top``.

    The archive is unpacked into a temporary folder beside the destination, then its
    ``top`` folder is renamed into place: an interrupted extraction leaves nothing that
    looks complete. Members that would land outside the folder (absolute paths, ``..``,
    links out of it) are refused.
    """
    folder = Path(folder)
    target = folder / top
    if _exists(target):
        return target
    tmp = folder / f".extract.{secrets.token_hex(8)}"
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise file_error(folder, exc, "write into") from exc
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python < 3.11.4: check the names ourselves
                for member in tar.getmembers():
                    name = Path(member.name)
                    if name.is_absolute() or ".." in name.parts or member.islnk() or member.issym():
                        raise tarfile.TarError(f"refusing the unsafe member {member.name!r}")
                tar.extractall(tmp)
        if not (tmp / top).is_dir():
            raise DataError(f"{archive} has no folder {top}/; it is not the expected archive, "
                            "delete it and load again")
        try:
            os.replace(tmp / top, target)
        except OSError as exc:
            if _exists(target):  # another process extracted it meanwhile
                return target
            raise file_error(target, exc, "write") from exc
    except getattr(tarfile, "FilterError", ()) as exc:
        raise DataError(f"{archive}: refusing a member that would land outside {folder} "
                        f"({exc}); the archive is not the published one, delete it") from exc
    except (tarfile.TarError, EOFError) as exc:
        raise DataError(f"{archive} is not a readable tar archive ({exc}); it is truncated or "
                        "corrupt: delete it and load again") from exc
    except FileNotFoundError as exc:
        raise MissingFileError(f"no archive at {archive} ({exc.strerror}); load the dataset "
                               "again") from exc
    except OSError as exc:  # a full disk or a read-only folder while unpacking
        raise file_error(folder, exc, "write into") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
