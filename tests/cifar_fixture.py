"""A small CIFAR-10 look-alike for the tests: the real "python version" layout (pickled dicts with bytes
keys, protocol 2 as the official archive) and a tar.gz like cifar-10-python.tar.gz, with deterministic
pixels and balanced labels, so the loader, the archive and MD5 paths and the models run anywhere."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH = 40
N_TEST = 40


def _batch(rng, n: int, label: str) -> dict:
    labels = (np.arange(n) % 10)
    rng.shuffle(labels)
    # each class a little brighter, differently per channel, so that training can learn something
    pixels = rng.integers(0, 200, size=(n, 3, 32, 32)).astype(np.int64)
    for c in range(3):
        pixels[:, c] += (labels * (c + 1) * 5)[:, None, None]
    data = np.clip(pixels, 0, 255).astype(np.uint8).reshape(n, 3072)
    return {b"batch_label": label.encode(), b"labels": [int(v) for v in labels], b"data": data,
            b"filenames": [f"img_{label}_{i}.png".encode() for i in range(n)]}


def build_folder(root, per_batch: int = PER_BATCH, n_test: int = N_TEST, seed: int = 0) -> Path:
    """root/cifar-10-batches-py with data_batch_1..5 (per_batch images each), test_batch, batches.meta."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    content = {f"data_batch_{i}": _batch(rng, per_batch, f"training batch {i} of 5") for i in range(1, 6)}
    content["test_batch"] = _batch(rng, n_test, "testing batch 1 of 1")
    content["batches.meta"] = {b"label_names": [n.encode() for n in NAMES], b"num_cases_per_batch": per_batch,
                               b"num_vis": 3072}
    for name, value in content.items():
        with open(folder / name, "wb") as f:
            pickle.dump(value, f, protocol=2)
    return folder


def build_archive(root, **kwargs) -> tuple[Path, str]:
    """(root/cifar-10-python.tar.gz, its MD5), holding cifar-10-batches-py/ as the official archive does."""
    root = Path(root)
    folder = build_folder(root / "source", **kwargs)
    archive = root / ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=FOLDER)
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()
