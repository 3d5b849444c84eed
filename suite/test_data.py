"""Data loaders on small files in the real formats (IDX gzip, CIFAR python batches) written here."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from greenbench.nn import data
from greenbench.nn.data import (
    DataFile,
    DatasetChecksumError,
    DatasetCorruptError,
    DatasetMissingError,
    load_dataset,
    load_from,
    locate,
    to_network_input,
    train_validation_split,
)


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx_set(folder: Path, n_train: int = 20, n_test: int = 10) -> data.DatasetSpec:
    """A Fashion-MNIST-shaped data set of random images; returns a spec whose md5s match it."""
    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 256, (n_train, 28, 28)), "train_labels": rng.integers(0, 10, n_train),
              "test_images": rng.integers(0, 256, (n_test, 28, 28)), "test_labels": rng.integers(0, 10, n_test)}
    files = {}
    folder.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        raw = _idx_bytes(array)
        name = data.FASHION_MNIST.files[role].name
        with gzip.open(folder / name, "wb") as handle:
            handle.write(raw)
        files[role] = DataFile(name, hashlib.md5(raw).hexdigest(), gzip_content=True)
    return dataclasses.replace(data.FASHION_MNIST, env_var="GREENBENCH_TEST_IDX", files=files, system_dirs=())


@pytest.fixture
def idx_set(tmp_path, monkeypatch):
    spec = _write_idx_set(tmp_path / "fmnist")
    monkeypatch.setenv(spec.env_var, str(tmp_path / "fmnist"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(data.DATA_ROOT_ENV, raising=False)
    monkeypatch.delenv(data.DOWNLOAD_ENV, raising=False)
    return spec, tmp_path / "fmnist"


def test_idx_set_loads_with_shapes_and_labels(idx_set):
    spec, folder = idx_set
    ds = load_from(spec, locate(spec))
    assert ds.train_images.shape == (20, 1, 28, 28) and ds.test_images.shape == (10, 1, 28, 28)
    assert ds.train_labels.dtype == np.int64 and ds.folder == folder


def test_checksum_mismatch_names_the_file(idx_set):
    spec, folder = idx_set
    path = folder / spec.files["test_labels"].name
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-1] + bytes([(raw[-1] + 1) % 256])))
    with pytest.raises(DatasetChecksumError, match="t10k-labels-idx1-ubyte.gz"):
        locate(spec)


def test_corrupt_gzip_is_reported(idx_set):
    spec, folder = idx_set
    (folder / spec.files["train_labels"].name).write_bytes(b"not gzip at all")
    with pytest.raises(DatasetCorruptError, match="cannot read"):
        locate(spec)


def test_truncated_idx_is_corrupt(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(_idx_bytes(np.zeros((3, 4), np.uint8))[:-2])
    with pytest.raises(DatasetCorruptError, match="promises 12 bytes"):
        data.read_idx(path)
    path.write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")
    with pytest.raises(DatasetCorruptError, match="bad magic"):
        data.read_idx(path)


def test_missing_data_set_says_what_and_how(idx_set, monkeypatch, tmp_path):
    spec, _ = idx_set
    monkeypatch.delenv(spec.env_var, raising=False)
    monkeypatch.setenv(data.DATA_ROOT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetMissingError) as err:
        locate(spec)
    message = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in message and spec.env_var in message and data.DOWNLOAD_ENV in message


@pytest.mark.parametrize("make", [lambda folder: None, lambda folder: folder.mkdir()],
                         ids=["no-such-folder", "empty-folder"])
def test_a_data_set_variable_naming_a_bad_folder_is_an_error_not_a_fall_through(idx_set, monkeypatch, tmp_path,
                                                                                 make):
    spec, _ = idx_set
    folder = tmp_path / "named"
    make(folder)
    monkeypatch.setenv(spec.env_var, str(folder))
    with pytest.raises(DatasetMissingError, match=f"{spec.env_var}=.*(does not exist|lacks train-images.*t10k-labels)"):
        locate(spec)


def test_download_only_when_allowed_and_checked(idx_set, monkeypatch, tmp_path):
    spec, served = idx_set
    target = tmp_path / "fetched"
    monkeypatch.setenv(spec.env_var, str(target))
    fetched = []

    def fake_urlopen(url, timeout):
        assert timeout == data.DOWNLOAD_TIMEOUT_S  # never an unbounded wait
        fetched.append(url)
        return open(served / url.rsplit("/", 1)[-1], "rb")

    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(DatasetMissingError):
        locate(spec)
    assert not fetched
    monkeypatch.setenv(data.DOWNLOAD_ENV, "1")
    assert locate(spec) == target and len(fetched) == 4
    assert all(url.startswith(spec.url) for url in fetched)


def test_download_with_wrong_checksum_keeps_nothing(idx_set, monkeypatch, tmp_path):
    spec, served = idx_set
    target = tmp_path / "fetched"
    monkeypatch.setenv(spec.env_var, str(target))
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"junk"))
    with pytest.raises((DatasetChecksumError, DatasetCorruptError)):
        locate(spec, allow_download=True)
    assert not any(p.name.endswith(".gz") for p in target.iterdir())


def test_a_server_that_never_answers_is_given_up_on(idx_set, monkeypatch, tmp_path):
    import socket
    import threading
    import time

    spec, _ = idx_set
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in range(8)], daemon=True).start()
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT_S", 0.3)
    monkeypatch.setattr(data, "DOWNLOAD_ATTEMPTS", 2)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    started = time.monotonic()
    with pytest.raises(DatasetMissingError, match=r"could not download http://127\.0\.0\.1:\d+/.* after 2 attempts"):
        data._fetch(spec, url + "train-images-idx3-ubyte.gz", tmp_path / "x.gz")
    assert time.monotonic() - started < 10  # bounded: two timeouts and one pause, not for ever
    listener.close()


def test_cifar_batches_load(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    files = {}
    for role in data.CIFAR10.files:
        payload = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, 4))}
        if role == "batches.meta":
            payload = {b"label_names": [c.encode() for c in data.CIFAR10.classes]}
        raw = pickle.dumps(payload)
        (tmp_path / role).write_bytes(raw)
        files[role] = DataFile(role, hashlib.md5(raw).hexdigest())
    spec = dataclasses.replace(data.CIFAR10, files=files)
    ds = load_from(spec, tmp_path)
    assert ds.train_images.shape == (20, 3, 32, 32) and ds.test_images.shape == (4, 3, 32, 32)
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(b"\x80\x04junk")
    files["data_batch_1"] = DataFile("data_batch_1", hashlib.md5(bad.read_bytes()).hexdigest())
    with pytest.raises(DatasetCorruptError, match="CIFAR-10 python batch"):
        load_from(dataclasses.replace(spec, files=files), tmp_path)


def test_grey_images_reach_the_networks_as_3x32x32():
    images = np.full((2, 1, 28, 28), 255, np.uint8)
    x = to_network_input(images)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    assert torch.all(x[:, :, 2:30, 2:30] == 1.0) and torch.all(x[:, :, :2] == -1.0)
    assert torch.equal(x[:, 0], x[:, 2])
    assert to_network_input(images, (1, 28, 28)).shape == (2, 1, 28, 28)


def test_split_is_seed_000s_80_20_and_reproducible():
    train, val = train_validation_split(50_000)
    assert len(train) == 40_000 and len(val) == 10_000 and not set(train) & set(val)
    np.testing.assert_array_equal(train, train_validation_split(50_000)[0])
    assert not np.array_equal(val, train_validation_split(50_000, seed=1)[1])


def test_unknown_data_set_is_named():
    with pytest.raises(ValueError, match="unknown data set 'imagenet'"):
        load_dataset("imagenet")


def test_real_fashion_mnist_verifies(fashion_mnist):
    assert fashion_mnist.train_images.shape == (60_000, 1, 28, 28)
    assert fashion_mnist.test_images.shape == (10_000, 1, 28, 28)
    assert np.bincount(fashion_mnist.test_labels).tolist() == [1000] * 10
