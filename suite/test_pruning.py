"""Pruning's helpers: the paired inference-time ratio behind `pruning-structure`'s speed check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from greenbench.nn.pruning import inference_time_ratio


def test_time_ratio_puts_the_model_over_its_reference():
    torch.manual_seed(0)
    layer = nn.Linear(256, 256)
    once, eight_times = nn.Sequential(layer), nn.Sequential(*[layer] * 8)
    x = torch.randn(4096, 256)  # passes of milliseconds: sub-millisecond ones drown in a busy machine's noise
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the function asks: other threads' spinning would count as CPU time
    try:
        assert inference_time_ratio(eight_times, once, x) > 2
        assert inference_time_ratio(once, eight_times, x) < 0.5
    finally:
        torch.set_num_threads(threads)


def test_time_ratio_needs_a_pair():
    with pytest.raises(ValueError, match="pairs"):
        inference_time_ratio(nn.Identity(), nn.Identity(), torch.zeros(1, 1), pairs=0)


def test_fine_tuning_a_pruned_network_keeps_its_zeros(fashion_mnist):
    from greenbench.nn.models import build_network
    from greenbench.nn.pruning import magnitude_prune, weight_sparsity
    from greenbench.nn.training import train_network

    original = build_network("lenet5", seed=0)
    pruned = magnitude_prune(original, 0.6)
    tuned = train_network("lenet5", fashion_mnist, 1, train_limit=64, start=pruned, progress=False).model
    assert weight_sparsity(original, tuned) >= 0.6 - 1e-3  # the pruned weights are still 0 after the updates
    changed = [not torch.equal(a, b) for a, b in zip(pruned.state_dict().values(), tuned.state_dict().values())]
    assert any(changed)  # and the others were trained
