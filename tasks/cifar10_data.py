"""Finding CIFAR-10 for the tasks that train on it: a folder or archive the user names, the cache, or a download.

It runs in the engine, once per run (a task's locate_data, rosetta/task.py), never in a worker.

`locate_cifar10()` returns an extracted cifar-10-batches-py folder (what the workers read, through
tasks/cifar10.py), looking in this order:
  1. data_dir (the CLI's --data-dir): a cifar-10-batches-py folder, a folder holding it (or holding
     cifar-10-python.tar.gz), or the path of cifar-10-python.tar.gz;
  2. the environment variable ROSETTA_CIFAR10, the same forms;
  3. the cache (ROSETTA_CACHE, else ~/.cache/rosetta): an extracted copy, or the archive;
  4. with download=True (--download): the official archive from the data set's home page, into the cache.
Archives are MD5-checked before they are unpacked (into the cache). Every failure is a ValueError of one
line that says where to put the data (the command line prints it and exits with code 2).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tasks import cifar10

ENV_DATA = "ROSETTA_CIFAR10"
ENV_CACHE = "ROSETTA_CACHE"
STAMP = ".rosetta-archive-md5"  # in a folder extracted by rosetta: the MD5 of the archive it came from
DOWNLOAD_TIMEOUT_S = 60


def cache_folder(cache_dir=None) -> Path:
    return Path(cache_dir or os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "rosetta").expanduser()


def where_to_put_it(cache: Path) -> str:
    return (f"pass --data-dir DIR (a {cifar10.FOLDER_NAME} folder or {cifar10.ARCHIVE_NAME}), set {ENV_DATA} "
            f"to one, put either in {cache}, or add --download to fetch it (170 MB) from {cifar10.URL}")


def locate_cifar10(data_dir=None, download: bool = False, cache_dir=None, *, md5: str = cifar10.OFFICIAL_MD5,
                   url: str = cifar10.URL, progress: bool = True) -> Path:
    """The path of an extracted cifar-10-batches-py folder (see the module's docstring for the order).
    md5 and url exist for the tests (a small archive served locally); the CLI uses the official ones."""
    cache = cache_folder(cache_dir)
    if data_dir is not None:
        return _from_user_path(Path(data_dir).expanduser(), "--data-dir", cache, md5)
    if os.environ.get(ENV_DATA):
        return _from_user_path(Path(os.environ[ENV_DATA]).expanduser(), ENV_DATA, cache, md5)
    if _complete(cache / cifar10.FOLDER_NAME):
        return cache / cifar10.FOLDER_NAME
    archive = cache / cifar10.ARCHIVE_NAME
    if archive.is_file():
        return _extract(archive, cache, md5)
    if download:
        _download(url, archive, md5, progress)
        return _extract(archive, cache, md5)
    raise ValueError(f"CIFAR-10 not found: {where_to_put_it(cache)}")


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in cifar10.FILES)


def _from_user_path(path: Path, source: str, cache: Path, md5: str) -> Path:
    if path.is_file():
        if not path.name.endswith((".tar.gz", ".tgz")):
            raise ValueError(f"{source} {path} is a file but not {cifar10.ARCHIVE_NAME}; {where_to_put_it(cache)}")
        return _extract(path, cache, md5)
    if not path.is_dir():
        raise ValueError(f"{source} {path} does not exist; {where_to_put_it(cache)}")
    for folder in (path, path / cifar10.FOLDER_NAME):
        if any((folder / name).exists() for name in cifar10.FILES):
            missing = [name for name in cifar10.FILES if not (folder / name).is_file()]
            if missing:
                raise ValueError(f"{source} {folder} lacks {', '.join(missing)}: a {cifar10.FOLDER_NAME} folder "
                                 f"holds {', '.join(cifar10.FILES)}; extract {cifar10.ARCHIVE_NAME} again")
            return folder
    if (path / cifar10.ARCHIVE_NAME).is_file():
        return _extract(path / cifar10.ARCHIVE_NAME, cache, md5)
    raise ValueError(f"{source} {path} holds neither {cifar10.FOLDER_NAME} nor {cifar10.ARCHIVE_NAME}; "
                     f"{where_to_put_it(cache)}")


def _extract(archive: Path, cache: Path, md5: str) -> Path:
    """Unpack into the cache once; a folder already unpacked from an archive with the same MD5 is reused."""
    try:
        digest = cifar10.md5_of(archive)
        folder = cache / cifar10.FOLDER_NAME
        stamp = folder / STAMP
        if _complete(folder) and stamp.is_file() and stamp.read_text().strip() == digest:
            return folder
        cifar10.check_md5(archive, md5, found=digest)
        folder = cifar10.extract(archive, cache, md5=None)  # checked just above
        stamp.write_text(digest + "\n")
    except ValueError:
        raise
    except OSError as error:
        raise ValueError(f"cannot unpack {archive} into {cache} ({error.strerror or error}); "
                         f"set {ENV_CACHE} to a writable folder") from None
    return folder


def _download(url: str, archive: Path, md5: str, progress: bool) -> None:
    """Download to a temporary name beside the archive; renamed only once its MD5 is right."""
    partial = archive.with_name(archive.name + ".part")
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            if progress:
                print(f"downloading {url} into {archive.parent}", file=sys.stderr)
            with _progress_bar(archive.name, total, progress) as advance:
                while block := response.read(1 << 16):
                    out.write(block)
                    advance(len(block))
    except (urllib.error.URLError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        raise ValueError(f"downloading {url} failed ({reason}); download {cifar10.ARCHIVE_NAME} yourself and "
                         f"pass --data-dir PATH/{cifar10.ARCHIVE_NAME}") from None
    try:
        cifar10.check_md5(partial, md5)
    except ValueError:
        found = cifar10.md5_of(partial)
        partial.unlink(missing_ok=True)
        raise ValueError(f"the download from {url} has MD5 {found}, not {md5} (incomplete or altered); "
                         f"it was deleted: run again with --download, or download {cifar10.ARCHIVE_NAME} "
                         f"yourself and pass --data-dir") from None
    os.replace(partial, archive)


class _progress_bar:
    """A rich progress bar on stderr (bytes, speed, time left); advance(n) moves it on."""

    def __init__(self, description: str, total: int | None, enabled: bool):
        self.description, self.total, self.enabled = description, total, enabled

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(),
                                 console=Console(file=sys.stderr), transient=False)
        self.progress.start()
        task = self.progress.add_task(self.description, total=self.total)
        return lambda n: self.progress.advance(task, n)

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()
        return False
