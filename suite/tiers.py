"""Which trained networks each tier runs the network claims on."""

from __future__ import annotations

import pytest

from greenbench.nn.models import CIFAR_NETWORKS

# The default tier runs the network claims on LeNet-5; GoogLeNet's (its budget search alone takes ~1.5 min
# on 2 cores, its CPU FP16 inference more) and the other three, which have no committed checkpoint, run in
# the nightly tier.
DEFAULT_TIER_NETWORKS = ("lenet5",)


def network_params(networks=CIFAR_NETWORKS):
    """pytest params over networks: the default tier's unmarked, the others `nightly`."""
    return [pytest.param(n, marks=() if n in DEFAULT_TIER_NETWORKS else pytest.mark.nightly) for n in networks]
