"""The network registry: shapes, determinism, the counter on hand-checked layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from greenbench.nn.models import NETWORKS, build_network, count_macs, count_parameters, network_spec


@pytest.mark.parametrize("name", list(NETWORKS))
def test_networks_map_their_input_to_ten_logits(name):
    spec = network_spec(name)
    model = build_network(name, seed=0).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, *spec.input_shape)).shape == (2, 10)


def test_seeded_builds_are_identical_and_leave_global_rng_alone():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a, b = build_network("lenet5", seed=1), build_network("lenet5", seed=1)
    assert torch.rand(1) == before
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_counter_on_hand_counted_layers():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    # conv 8·32·32·3·3·3; BN 4·8·32·32; avg pool (32·32 + 1)·8; linear 4·8
    assert count_macs(model, (3, 32, 32)) == 8 * 1024 * 27 + 4 * 8 * 1024 + 1025 * 8 + 32
    assert count_parameters(model) == 8 * 27 + 16 + 8 * 4 + 4


def test_unknown_network_is_named():
    with pytest.raises(ValueError, match="unknown network 'lenet7'"):
        build_network("lenet7")


def test_channels_last_inference_restores_the_layout_and_keeps_the_logits():
    import numpy as np

    from greenbench.nn.training import channels_last, predict_logits

    model = build_network("student", seed=0).eval()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        plain = model(x).numpy()
    np.testing.assert_allclose(predict_logits(model, x), plain, rtol=1e-4, atol=1e-5)
    first = model.features[0].weight
    assert first.is_contiguous()
    with channels_last(model):
        predict_logits(model, x)  # a nested use leaves the outer layout in place
        assert first.is_contiguous(memory_format=torch.channels_last) and not first.is_contiguous()
    assert first.is_contiguous()


def test_training_is_reproducible_and_leaves_global_rng_alone(fashion_mnist):
    from greenbench.nn.training import train_network

    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    runs = [train_network("student", fashion_mnist, 1, train_limit=64, progress=False) for _ in range(2)]
    assert torch.rand(1) == before  # the caller's random stream goes on as if training never ran
    for pa, pb in zip(runs[0].model.parameters(), runs[1].model.parameters()):
        assert torch.equal(pa, pb)
