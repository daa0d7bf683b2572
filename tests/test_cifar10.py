"""CIFAR-10 loading: the pickled batches, the archive and its MD5, where the cnn task looks for the data
(tasks/cifar10_data.py, called by the task's locate_data in the engine), the download; on a small CIFAR-format
archive built here, and on the real data set when it is at hand."""

import functools
import hashlib
import http.server
import pickle
import threading

import numpy as np
import pytest

from cifar_fixture import N_TEST, PER_BATCH, build_archive, build_folder
from conftest import REAL_CIFAR10, REGISTRY
from rosetta.errors import UsageError
from tasks import cifar10
from tasks import cifar10_data as data

CNN = REGISTRY.task("cnn")  # the task that reads CIFAR-10: its locate_data runs in the engine, once per run

REAL = REAL_CIFAR10
needs_real_data = pytest.mark.skipif(not (REAL / "test_batch").exists(),
                                     reason=f"the real CIFAR-10 is not at {REAL} (see ../shared/data/README.md)")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(folder, archive, md5) of a small CIFAR-format data set: 5 x 40 training images, 40 test images."""
    root = tmp_path_factory.mktemp("cifar")
    archive, md5 = build_archive(root)
    return root / "source" / cifar10.FOLDER_NAME, archive, md5


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch, tmp_path):
    """The user's own ROSETTA_CIFAR10 and cache must not leak into the tests."""
    monkeypatch.delenv(data.ENV_DATA, raising=False)
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message and message, message
    return message


# ------------------------------------------------------------------------------------------- load

def test_load_reads_the_python_layout(small):
    folder, _, _ = small
    x_train, y_train, x_test, y_test, names = cifar10.load(folder)
    assert x_train.shape == (5 * PER_BATCH, 3, 32, 32) and x_train.dtype == np.uint8
    assert x_test.shape == (N_TEST, 3, 32, 32) and y_train.dtype == y_test.dtype == np.int64
    assert names == cifar10.CLASS_NAMES
    # row i of the pickled (n, 3072) array is image i: 1024 red, then green, then blue, row-major
    with open(folder / "data_batch_2", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    image = x_train[PER_BATCH + 7]
    assert np.array_equal(image[0].ravel(), batch[b"data"][7, :1024])
    assert np.array_equal(image[2, 31], batch[b"data"][7, 2048 + 31 * 32:])
    assert y_train[PER_BATCH + 7] == batch[b"labels"][7]
    assert cifar10.load(folder.parent)[0].shape == x_train.shape  # the folder holding it works too


def test_a_missing_batch_is_a_one_line_error_naming_it(small, tmp_path):
    folder = build_folder(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(ValueError) as error:
        cifar10.load(folder)
    assert "data_batch_3 is missing" in one_line(error) and cifar10.ARCHIVE_NAME in str(error.value)


@pytest.mark.parametrize("damage", ["truncated", "not a pickle", "wrong shape", "bad labels", "code"])
def test_a_corrupt_batch_is_a_one_line_error_naming_it(tmp_path, damage):
    folder = build_folder(tmp_path)
    path = folder / "data_batch_4"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    elif damage == "not a pickle":
        path.write_bytes(b"<html>404 not found</html>")
    else:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        if damage == "wrong shape":
            batch[b"data"] = batch[b"data"][:, :1000]
        elif damage == "bad labels":
            batch[b"labels"][3] = 10
        else:  # a pickle that would run code when loaded: refused, never run
            batch = {b"data": _Evil(), b"labels": []}
        path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError) as error:
        cifar10.load(folder)
    assert "data_batch_4 is corrupt" in one_line(error)
    assert not (tmp_path / "pwned").exists()


class _Evil:
    def __reduce__(self):
        import os
        return os.system, ("touch pwned",)


# ------------------------------------------------------------------------------------- archive, MD5

def test_extract_checks_the_md5_then_unpacks(small, tmp_path):
    folder, archive, md5 = small
    extracted = cifar10.extract(archive, tmp_path / "out", md5=md5)
    assert extracted == tmp_path / "out" / cifar10.FOLDER_NAME
    assert sorted(p.name for p in extracted.iterdir()) == sorted(cifar10.FILES)
    assert np.array_equal(cifar10.load(extracted)[0], cifar10.load(folder)[0])
    assert [p.name for p in (tmp_path / "out").iterdir()] == [cifar10.FOLDER_NAME]  # no scratch left


def test_extract_refuses_an_archive_with_the_wrong_md5(small, tmp_path):
    _, archive, _ = small
    with pytest.raises(ValueError) as error:
        cifar10.extract(archive, tmp_path / "out")  # the official MD5: the small archive is not it
    message = one_line(error)
    assert cifar10.OFFICIAL_MD5 in message and "download it again" in message
    assert not (tmp_path / "out" / cifar10.FOLDER_NAME).exists()


def test_extract_refuses_unsafe_member_paths(tmp_path):
    import io
    import tarfile
    archive = tmp_path / cifar10.ARCHIVE_NAME
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(ValueError) as error:
        cifar10.extract(archive, tmp_path / "out", md5=None)
    assert "unsafe path" in one_line(error)
    assert not (tmp_path / "escaped").exists()


# ------------------------------------------------------------------------------------ locate_cifar10

def test_locate_from_the_folder_the_folder_above_and_the_archive(small, tmp_path):
    folder, archive, md5 = small
    assert data.locate_cifar10(folder) == folder
    assert data.locate_cifar10(folder.parent) == folder
    cache = tmp_path / "cache"
    found = data.locate_cifar10(archive, cache_dir=cache, md5=md5)
    assert found == cache / cifar10.FOLDER_NAME and (found / "test_batch").is_file()
    assert data.locate_cifar10(archive.parent, cache_dir=cache, md5=md5) == found  # reused, not unpacked again
    assert data.locate_cifar10(cache_dir=cache, md5=md5) == found  # then the cache alone is enough


def test_locate_from_the_environment_variable(small, monkeypatch):
    folder, _, _ = small
    monkeypatch.setenv(data.ENV_DATA, str(folder.parent))
    assert data.locate_cifar10() == folder


def test_locate_from_an_archive_in_the_cache(small, tmp_path):
    _, archive, md5 = small
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / cifar10.ARCHIVE_NAME).write_bytes(archive.read_bytes())
    assert data.locate_cifar10(cache_dir=cache, md5=md5) == cache / cifar10.FOLDER_NAME


def test_without_data_the_error_says_where_to_put_it(tmp_path):
    with pytest.raises(ValueError) as error:
        data.locate_cifar10(cache_dir=tmp_path / "empty")
    message = one_line(error)
    for hint in ("--data-dir", data.ENV_DATA, "--download", str(tmp_path / "empty")):
        assert hint in message
    # the engine calls the task's locate_data, which turns it into a UsageError (one line, exit code 2)
    with pytest.raises(UsageError) as error:
        CNN.locate_data({})
    message = one_line(error)
    for hint in ("--data-dir", data.ENV_DATA, "--download", str(tmp_path / "cache")):  # the cache: ROSETTA_CACHE
        assert hint in message


def test_wrong_paths_are_one_line_errors_and_usage_errors_in_the_engine(small, tmp_path):
    folder, archive, _ = small
    partial = build_folder(tmp_path / "partial")
    (partial / "test_batch").unlink()
    for path, words in ((tmp_path / "nowhere", "does not exist"),
                        (archive, cifar10.OFFICIAL_MD5),  # the official MD5, which the small archive does not have
                        (partial, "lacks test_batch")):
        with pytest.raises(ValueError) as error:
            data.locate_cifar10(path)
        assert words in one_line(error)
        with pytest.raises(UsageError) as error:
            CNN.locate_data({"data_dir": str(path)})
        assert words in one_line(error)


def test_the_cnn_task_locates_the_data_once_for_every_worker(small, monkeypatch):
    """locate_data gives the cells the extracted folder, as a string, and consumes --download."""
    folder, _, _ = small
    assert CNN.locate_data({"data_dir": str(folder.parent), "epochs": 3}) == {"data_dir": str(folder), "epochs": 3}
    monkeypatch.setenv(data.ENV_DATA, str(folder))
    assert CNN.locate_data({"download": True}) == {"data_dir": str(folder)}


# ----------------------------------------------------------------------------------------- download

@pytest.fixture
def server(small):
    """The small archive served over HTTP on localhost: (url of the archive, md5)."""
    _, archive, md5 = small
    handler = functools.partial(_QuietHandler, directory=str(archive.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{archive.name}", md5
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_shows_progress_checks_the_md5_and_unpacks(server, tmp_path, capfd):
    url, md5 = server
    cache = tmp_path / "cache"
    found = data.locate_cifar10(download=True, cache_dir=cache, url=url, md5=md5)
    assert found == cache / cifar10.FOLDER_NAME and len(cifar10.load(found)[0]) == 5 * PER_BATCH
    archive = cache / cifar10.ARCHIVE_NAME
    assert hashlib.md5(archive.read_bytes()).hexdigest() == md5
    assert not archive.with_name(archive.name + ".part").exists()
    err = capfd.readouterr().err
    assert f"downloading {url} into {cache}" in err and cifar10.ARCHIVE_NAME in err, err
    assert "kB" in err, err  # the bar counts the bytes (the small archive is under 1 MB)


def test_a_download_with_the_wrong_md5_is_deleted_and_refused(server, tmp_path, capfd):
    url, _ = server
    cache = tmp_path / "cache"
    with pytest.raises(ValueError) as error:
        data.locate_cifar10(download=True, cache_dir=cache, url=url, progress=False)  # the official MD5
    assert "MD5" in one_line(error) and "deleted" in str(error.value)
    assert not any(cache.iterdir())


def test_a_failed_download_is_a_one_line_error(server, tmp_path):
    url, md5 = server
    with pytest.raises(ValueError) as error:
        data.locate_cifar10(download=True, cache_dir=tmp_path / "cache", url=url + ".missing", md5=md5,
                            progress=False)
    assert "downloading" in one_line(error) and "--data-dir" in str(error.value)


# ---------------------------------------------------------------------------------- the real data set

@needs_real_data
def test_the_real_data_set():
    x_train, y_train, x_test, y_test, names = cifar10.load(REAL)
    assert x_train.shape == (50_000, 3, 32, 32) and x_test.shape == (10_000, 3, 32, 32)
    assert names == cifar10.CLASS_NAMES
    assert np.bincount(y_train).tolist() == [5000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert y_test[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    means = [x_train[:, c].mean() / 255 for c in range(3)]
    assert np.allclose(means, [0.4914, 0.4822, 0.4465], atol=1e-3), means
    assert data.locate_cifar10(REAL.parent) == REAL
