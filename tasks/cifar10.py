"""CIFAR-10 in its standard "python version" layout, read with numpy and the standard library only.

The folder cifar-10-batches-py/ holds data_batch_1..5 (10,000 training images each), test_batch (10,000)
and batches.meta (the label names). Each batch is a pickled dict: b"data" is a uint8 array (n, 3072), one
image per row (the 1024 red values, then green, then blue, each plane row-major 32x32), b"labels" a list of
n ints in 0..9. The official archive cifar-10-python.tar.gz holds that folder; `extract` checks its MD5
before unpacking it.

This module runs in every backend's environment (numpy 1.23 to 2.x): no framework, no rosetta import.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"  # published on the data set's home page
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
FILES = (*TRAIN_FILES, TEST_FILE, META_FILE)
CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

HOW_TO_FIX = f"extract {ARCHIVE_NAME} again (or download it again from {URL})"


class _ArraysOnly(pickle.Unpickler):
    """The batches are pickles, and unpickling runs whatever a file names: accept only what a CIFAR batch
    holds (dicts, lists, numbers, bytes and numpy arrays), so a tampered file is an error, not code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        (np.__name__, "ndarray"), (np.__name__, "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        if module.split(".")[0] == np.__name__:  # numpy.core became numpy._core in numpy 2: no shim needed
            return getattr(np, name) if module == np.__name__ else _numpy_function(module, name)
        return super().find_class(module, name)


def _numpy_function(module: str, name: str):
    import importlib
    for candidate in (module.replace("numpy.core", "numpy._core"), module.replace("numpy._core", "numpy.core")):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy version {np.__version__} has no {module}.{name}")


def read_batch(path: Path) -> dict:
    """One pickled batch as a dict with bytes keys, or a one-line ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"CIFAR-10 file {path} is missing: a {FOLDER_NAME} folder holds "
                         f"{', '.join(FILES)}; {HOW_TO_FIX}")
    try:
        with open(path, "rb") as f:
            content = _ArraysOnly(f, encoding="bytes").load()
    except Exception as error:  # truncated, not a pickle, or objects a batch never holds
        raise ValueError(f"CIFAR-10 file {path} is corrupt ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else 'unreadable'}); {HOW_TO_FIX}") from None
    if not isinstance(content, dict):
        raise ValueError(f"CIFAR-10 file {path} is corrupt (a {type(content).__name__}, not a dict); {HOW_TO_FIX}")
    return content


def _images_and_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = read_batch(path)
    data, labels = batch.get(b"data"), batch.get(b"labels")
    problem = None
    if not isinstance(data, np.ndarray) or labels is None:
        problem = "no b'data' array or no b'labels'"
    elif data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
        problem = f"data of {data.dtype} {data.shape}, expected uint8 (n, 3072)"
    else:
        labels = np.asarray(labels)
        if labels.shape != (len(data),):
            problem = f"{labels.size} labels for {len(data)} images"
        elif labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= CLASSES):
            problem = "labels outside 0..9"
    if problem:
        raise ValueError(f"CIFAR-10 file {path} is corrupt ({problem}); {HOW_TO_FIX}")
    return data.reshape((len(data), *IMAGE_SHAPE)), labels.astype(np.int64)


def class_names(directory) -> tuple:
    path = Path(directory) / META_FILE
    names = read_batch(path).get(b"label_names")
    if not isinstance(names, list) or len(names) != CLASSES:
        raise ValueError(f"CIFAR-10 file {path} is corrupt (no list of {CLASSES} b'label_names'); {HOW_TO_FIX}")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def find_folder(directory) -> Path:
    """A cifar-10-batches-py folder, given it or the folder that contains it."""
    directory = Path(directory).expanduser()
    if (directory / FOLDER_NAME).is_dir() and not (directory / TEST_FILE).exists():
        directory = directory / FOLDER_NAME
    if not directory.is_dir():
        raise ValueError(f"CIFAR-10 folder {directory} does not exist; give the {FOLDER_NAME} folder "
                         f"(or the folder that contains it)")
    return directory


def load(directory) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple]:
    """(x_train uint8 (n, 3, 32, 32), y_train int64 (n,), x_test, y_test, class_names) from a
    cifar-10-batches-py folder (or the folder containing it). Raises a one-line ValueError that names
    the missing or corrupt file."""
    directory = find_folder(directory)
    names = class_names(directory)
    train = [_images_and_labels(directory / name) for name in TRAIN_FILES]
    x_test, y_test = _images_and_labels(directory / TEST_FILE)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    del train
    return x_train, y_train, x_test, y_test, names


def md5_of(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_md5(archive, md5: str | None = OFFICIAL_MD5, found: str | None = None) -> None:
    """One-line ValueError unless the archive's MD5 is the expected one (md5=None: no check); found: its
    MD5, when the caller has already read the 170 MB once."""
    if md5 is None:
        return
    found = found or md5_of(archive)
    if found != md5.lower():
        raise ValueError(f"{archive} has MD5 {found}, not {md5}: it is incomplete or not the official "
                         f"{ARCHIVE_NAME}; delete it and download it again from {URL}")


def _safe_members(archive: tarfile.TarFile, path) -> list[tarfile.TarInfo]:
    members = []
    for member in archive.getmembers():
        parts = Path(member.name).parts
        if member.name.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
            raise ValueError(f"{path} holds an unsafe path {member.name!r}; it is not the official {ARCHIVE_NAME}")
        if member.isdir():
            continue
        if not member.isfile():  # links, devices: nothing CIFAR-10 ships
            raise ValueError(f"{path} holds {member.name!r}, which is not a regular file; "
                             f"it is not the official {ARCHIVE_NAME}")
        if len(parts) == 2 and parts[0] == FOLDER_NAME:
            members.append(member)
    return members


def extract(archive, destination, md5: str | None = OFFICIAL_MD5) -> Path:
    """Check the archive's MD5, then unpack its cifar-10-batches-py folder into destination (through a
    temporary folder renamed at the end, so an interrupted extraction never leaves a half folder).
    Returns the extracted folder."""
    archive, destination = Path(archive).expanduser(), Path(destination).expanduser()
    if not archive.is_file():
        raise ValueError(f"{archive} does not exist; give the path of {ARCHIVE_NAME}")
    check_md5(archive, md5)
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / FOLDER_NAME
    scratch = Path(tempfile.mkdtemp(prefix=".cifar10-", dir=destination))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = _safe_members(tar, archive)
                missing = set(FILES) - {Path(m.name).name for m in members}
                if missing:
                    raise ValueError(f"{archive} lacks {FOLDER_NAME}/{sorted(missing)[0]}; it is not the "
                                     f"official {ARCHIVE_NAME}; download it again from {URL}")
                for member in members:
                    source = tar.extractfile(member)
                    out = scratch / FOLDER_NAME / Path(member.name).name
                    out.parent.mkdir(exist_ok=True)
                    with source, open(out, "wb") as f:
                        shutil.copyfileobj(source, f)
        except (tarfile.TarError, OSError, EOFError) as error:
            raise ValueError(f"{archive} cannot be unpacked ({type(error).__name__}: {error}); "
                             f"delete it and download it again from {URL}") from None
        if target.exists():
            shutil.rmtree(target)
        os.replace(scratch / FOLDER_NAME, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
