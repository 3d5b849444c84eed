"""Data sets of the suite (SPEC §5): Fashion-MNIST, MNIST and CIFAR-10.

Each loader finds its folder from an environment variable (or the common data root, or a known
system location), verifies every file's md5 before use, downloads from the canonical source only
when the user allows it, and otherwise raises `DatasetMissingError` saying what is missing and how
to supply it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from greenbench.core.settings import setting
from greenbench.core.validation import check_scalar

DATA_ROOT_ENV = "GREENBENCH_DATA_DIR"
DOWNLOAD_ENV = "GREENBENCH_DOWNLOAD"
SPLIT_SEED = 158763  # seed 000's seed for the 80/20 train/validation split and training
NORMALISE_MEAN = 0.5
NORMALISE_STD = 0.5


class DatasetError(Exception):
    """Base class of data-set problems."""


class DatasetMissingError(DatasetError, FileNotFoundError):
    """A data set's files are not where the loader looks, and downloading is not allowed."""


class DatasetChecksumError(DatasetError, ValueError):
    """A file is present but its md5 differs from the canonical one."""


class DatasetCorruptError(DatasetError, ValueError):
    """A file cannot be parsed in its declared format."""


@dataclass(frozen=True)
class DataFile:
    name: str  # file name inside the data-set folder
    md5: str
    gzip_content: bool = False  # md5 is of the decompressed bytes (Debian recompressed the gzip files)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    env_var: str
    files: dict[str, DataFile]  # role -> file
    reader: Callable[[DatasetSpec, Path], Dataset]
    url: str = ""  # base URL, or the archive URL when `archive` is set
    archive: DataFile | None = None
    system_dirs: tuple[str, ...] = ()
    classes: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class Dataset:
    """Images as uint8 (N, C, H, W) and labels as int64 for the train and test parts."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    checksum: str  # md5 over the verified files' md5s, for provenance
    folder: Path

    @property
    def num_classes(self) -> int:
        return int(max(self.train_labels.max(), self.test_labels.max())) + 1


def md5_of_file(path: Path, gzip_content: bool = False) -> str:
    digest = hashlib.md5()
    opener = gzip.open if gzip_content else open
    try:
        with opener(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetCorruptError(f"{path}: cannot read ({exc})") from exc
    return digest.hexdigest()


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or plain) as in LeCun's MNIST format."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DatasetCorruptError(f"{path}: cannot read ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetCorruptError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetCorruptError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise DatasetCorruptError(
            f"{path}: IDX header promises {int(np.prod(shape))} bytes of data, file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_idx_dataset(spec: DatasetSpec, folder: Path) -> Dataset:
    parts = {role: read_idx(folder / f.name) for role, f in spec.files.items()}
    for part in ("train", "test"):
        images, labels = parts[f"{part}_images"], parts[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetCorruptError(
                f"{spec.name}: {part} images {images.shape} and labels {labels.shape} do not match")
    return Dataset(spec.name, parts["train_images"][:, None], parts["train_labels"].astype(np.int64),
                   parts["test_images"][:, None], parts["test_labels"].astype(np.int64),
                   _combined_checksum(spec), folder)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError, TypeError) as exc:
        raise DatasetCorruptError(f"{path}: not a CIFAR-10 python batch ({exc})") from exc
    if len(data) != len(labels):
        raise DatasetCorruptError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data, labels


def _read_cifar_dataset(spec: DatasetSpec, folder: Path) -> Dataset:
    train = [_read_cifar_batch(folder / spec.files[f"data_batch_{i}"].name) for i in range(1, 6)]
    test_images, test_labels = _read_cifar_batch(folder / spec.files["test_batch"].name)
    return Dataset(spec.name, np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]),
                   test_images, test_labels, _combined_checksum(spec), folder)


def _combined_checksum(spec: DatasetSpec) -> str:
    return hashlib.md5("".join(f.md5 for f in spec.files.values()).encode()).hexdigest()


FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    env_var="GREENBENCH_FASHION_MNIST",
    files={
        "train_images": DataFile("train-images-idx3-ubyte.gz", "f4a8712d7a061bf5bd6d2ca38dc4d50a", True),
        "train_labels": DataFile("train-labels-idx1-ubyte.gz", "9018921c3c673c538a1fc5bad174d6f9", True),
        "test_images": DataFile("t10k-images-idx3-ubyte.gz", "8181f5470baa50b63fa0f6fddb340f0a", True),
        "test_labels": DataFile("t10k-labels-idx1-ubyte.gz", "15d484375f8d13e6eb1aabb0c3f46965", True),
    },
    reader=_read_idx_dataset,
    url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    system_dirs=("/usr/share/datasets/fashion-mnist",),  # Debian's dataset-fashion-mnist
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot"),
)

MNIST = DatasetSpec(
    name="mnist",
    env_var="GREENBENCH_MNIST",
    files={
        "train_images": DataFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train_labels": DataFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        "test_images": DataFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        "test_labels": DataFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    reader=_read_idx_dataset,
    url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    classes=tuple(str(i) for i in range(10)),
)

CIFAR10 = DatasetSpec(
    name="cifar-10",
    env_var="GREENBENCH_CIFAR10",
    files={
        "data_batch_1": DataFile("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        "data_batch_2": DataFile("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        "data_batch_3": DataFile("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        "data_batch_4": DataFile("data_batch_4", "634d18415352ddfa80567beed471001a"),
        "data_batch_5": DataFile("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        "test_batch": DataFile("test_batch", "40351d587109b95175f43aff81a1287e"),
        "batches.meta": DataFile("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    },
    reader=_read_cifar_dataset,
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    archive=DataFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
)

DATASETS = {spec.name: spec for spec in (FASHION_MNIST, MNIST, CIFAR10)}


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None


def candidate_dirs(spec: DatasetSpec) -> list[Path]:
    """Where the loader looks, in order."""
    dirs = []
    if os.environ.get(spec.env_var):
        dirs.append(Path(os.environ[spec.env_var]))
    if os.environ.get(DATA_ROOT_ENV):
        dirs.append(Path(os.environ[DATA_ROOT_ENV]) / spec.name)
    dirs.extend(Path(d) for d in spec.system_dirs)
    dirs.append(Path.home() / ".cache" / "greenbench" / spec.name)
    return dirs


def download_allowed() -> bool:
    return setting(DOWNLOAD_ENV, False)


def verify_folder(spec: DatasetSpec, folder: Path) -> None:
    """Raise unless every file of the data set is in `folder` with its canonical md5."""
    missing = [f.name for f in spec.files.values() if not (folder / f.name).is_file()]
    if missing:
        raise DatasetMissingError(f"{spec.name}: {folder} lacks {', '.join(missing)}")
    for data_file in spec.files.values():
        found = md5_of_file(folder / data_file.name, data_file.gzip_content)
        if found != data_file.md5:
            what = "decompressed content" if data_file.gzip_content else "file"
            raise DatasetChecksumError(
                f"{spec.name}: md5 of the {what} of {folder / data_file.name} is {found}, expected "
                f"{data_file.md5}; the file is corrupt or not the canonical release")


def locate(spec: DatasetSpec, allow_download: bool | None = None) -> Path:
    """The first folder holding the complete, verified data set; download if allowed.

    A folder the user named by `spec.env_var` must hold the data set: if it does not, that is an
    error naming the variable and the missing files, not a fall-through to another copy.
    """
    named = os.environ.get(spec.env_var)
    if named and not (allow_download or (allow_download is None and download_allowed())):
        missing = [f.name for f in spec.files.values() if not (Path(named) / f.name).is_file()]
        if missing:
            state = "does not exist" if not Path(named).is_dir() else f"lacks {', '.join(missing)}"
            raise DatasetMissingError(f"{spec.env_var}={named}: that folder {state}; unset the variable to "
                                      "let the loader look elsewhere, or put the files there")
    for folder in candidate_dirs(spec):
        if all((folder / f.name).is_file() for f in spec.files.values()):
            verify_folder(spec, folder)  # a present but wrong file is an error, not a fall-through
            return folder
    if allow_download is None:
        allow_download = download_allowed()
    if allow_download and spec.url:
        target = Path(os.environ.get(spec.env_var) or candidate_dirs(spec)[-1])
        download(spec, target)
        verify_folder(spec, target)
        return target
    looked = "\n  ".join(str(d) for d in candidate_dirs(spec))
    names = ", ".join(f.name for f in spec.files.values())
    raise DatasetMissingError(
        f"data set {spec.name} not found. Looked in:\n  {looked}\n"
        f"It needs the files {names}. Put them in a folder and set {spec.env_var}=<folder> "
        f"(or {DATA_ROOT_ENV}=<root> with a '{spec.name}' subfolder), or allow a download from "
        f"{spec.url or 'its canonical source'} with {DOWNLOAD_ENV}=1."
        + (" On Debian: apt-get install dataset-fashion-mnist." if spec is FASHION_MNIST else ""))


def download(spec: DatasetSpec, target: Path) -> None:
    """Fetch the canonical files into `target`, checking each md5 before it is kept."""
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        if spec.archive is not None:
            archive = Path(tmp) / spec.archive.name
            _fetch(spec, spec.url, archive)
            if md5_of_file(archive) != spec.archive.md5:
                raise DatasetChecksumError(f"{spec.name}: downloaded archive {spec.url} fails its md5")
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            for data_file in spec.files.values():
                found = next(Path(tmp).rglob(data_file.name))
                shutil.move(str(found), target / data_file.name)
            return
        for data_file in spec.files.values():
            part = Path(tmp) / data_file.name
            _fetch(spec, spec.url + data_file.name, part)
            if md5_of_file(part, data_file.gzip_content) != data_file.md5:
                raise DatasetChecksumError(f"{spec.name}: downloaded {data_file.name} fails its md5")
            shutil.move(str(part), target / data_file.name)


DOWNLOAD_TIMEOUT_S = 30.0  # connect and each read: a server that accepts and never answers is given up on
DOWNLOAD_ATTEMPTS = 3


def _fetch(spec: DatasetSpec, url: str, path: Path) -> None:
    import time

    started, last = time.monotonic(), None
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(path, "wb") as out:
                shutil.copyfileobj(response, out)
            return
        except OSError as exc:  # URLError, HTTPError, timeouts: all OSErrors
            last = getattr(exc, "reason", exc)
            if attempt < DOWNLOAD_ATTEMPTS:
                time.sleep(attempt)
    raise DatasetMissingError(f"{spec.name}: could not download {url} after {DOWNLOAD_ATTEMPTS} attempts in "
                              f"{time.monotonic() - started:.0f} s ({last}; each read times out after "
                              f"{DOWNLOAD_TIMEOUT_S:.0f} s)")


def load_dataset(name: str, allow_download: bool | None = None) -> Dataset:
    spec = dataset_spec(name)
    return load_from(spec, locate(spec, allow_download))


def load_from(spec: DatasetSpec, folder: Path) -> Dataset:
    verify_folder(spec, folder)
    return spec.reader(spec, folder)


def load_first_available(*names: str) -> Dataset:
    """The first of the named data sets that is present (no download); DatasetMissingError if none is."""
    reasons = []
    for name in names:
        try:
            return load_dataset(name, allow_download=False)
        except DatasetMissingError as exc:
            reasons.append(str(exc))
    raise DatasetMissingError("\n".join(reasons))


def to_network_input(images: np.ndarray, shape: tuple[int, int, int] = (3, 32, 32)) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 normalised with mean 0.5, std 0.5, padded and channel-repeated.

    Grey 28×28 images reach the CIFAR-10 networks as 3×32×32 (pad 2, repeat the channel) so that
    SPEC §3 holds unchanged.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.size == 0:
        raise ValueError(f"images must be a non-empty uint8 array (N, C, H, W) of 0–255 pixels, got {images.dtype} "
                         f"of shape {images.shape}")
    channels, height, width = shape
    x = torch.from_numpy(images.astype(np.float32)).div_(255.0)
    x = (x - NORMALISE_MEAN) / NORMALISE_STD
    pad_h, pad_w = height - x.shape[2], width - x.shape[3]
    if pad_h < 0 or pad_w < 0 or pad_h % 2 or pad_w % 2:
        raise ValueError(f"cannot fit images of {tuple(x.shape[2:])} into {height}×{width}")
    if pad_h or pad_w:
        # pad with the normalised value of a black pixel, as padding the raw image would
        x = torch.nn.functional.pad(x, (pad_w // 2,) * 2 + (pad_h // 2,) * 2, value=-NORMALISE_MEAN / NORMALISE_STD)
    if x.shape[1] != channels:
        if x.shape[1] != 1:
            raise ValueError(f"cannot turn {x.shape[1]}-channel images into {channels} channels")
        x = x.repeat(1, channels, 1, 1)
    return x.contiguous()


def train_validation_split(n: int, seed: int = SPLIT_SEED,
                           train_fraction: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Seed 000's 80/20 split of the training images (40,000/10,000 on CIFAR-10)."""
    check_scalar(n, "the number of images to split", int, low=2)
    check_scalar(train_fraction, "train_fraction", float, low=0, high=1, include_low=False, include_high=False)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    cut = int(round(n * train_fraction))
    if not 0 < cut < n:
        raise ValueError(f"train_fraction {train_fraction!r} of {n} images leaves the "
                         f"{'training' if cut == 0 else 'validation'} split empty")
    return np.sort(order[:cut]), np.sort(order[cut:])
