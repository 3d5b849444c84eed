"""Claim `table1-counts` — seed 000, Table 1 (transcribed in baselines/paper/seed000-table1.json).

The paper's quantities are each network's trainable parameters and thop "FLOPs" (multiply-accumulates,
SPEC §3); the tested quantities are the same counts of the suite's definitions of the networks.
Tolerance: parameters exactly; FLOPs within 0.01 %, since VGG-11 counts 4,096 more (0.0017 %: thop's
convention for its 2×2 → 2×2 adaptive pool); the other four match exactly. This row checks that the
networks are the paper's, not a finding.
"""

from __future__ import annotations

import pytest

from greenbench.harness.baselines import load_paper_table
from greenbench.harness.claims import Metric
from greenbench.nn.models import CIFAR_NETWORKS, build_network, count_macs, count_parameters, network_spec

pytestmark = pytest.mark.claim("table1-counts")


@pytest.mark.parametrize("network", CIFAR_NETWORKS)
def test_parameters_and_flops_match_table_1(network, baseline_root, claim):
    paper = load_paper_table("seed000-table1", baseline_root)["data"][network]
    model = build_network(network, seed=0)
    params = count_parameters(model)
    flops = count_macs(model, network_spec(network).input_shape)
    flops_error = (flops - paper["flops"]) / paper["flops"]
    claim.verdict(params == paper["parameters"] and abs(flops_error) <= 1e-4,
                  claimed=f"{paper['parameters']:,} parameters, {paper['flops']:,} FLOPs",
                  tolerance="parameters exact, FLOPs ± 0.01 %",
                  measured={"parameters": params, "FLOPs": flops, "FLOPs error %": 100 * flops_error},
                  metrics={"parameters": Metric(float(params)), "flops": Metric(float(flops))})
