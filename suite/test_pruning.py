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
    x = torch.randn(512, 256)
    assert inference_time_ratio(eight_times, once, x) > 2
    assert inference_time_ratio(once, eight_times, x) < 0.5


def test_time_ratio_needs_a_pair():
    with pytest.raises(ValueError, match="pairs"):
        inference_time_ratio(nn.Identity(), nn.Identity(), torch.zeros(1, 1), pairs=0)
