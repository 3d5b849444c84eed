"""Claim `laplacian-weights` — seed 004 §3.3–3.4, Tables 3.2–3.3.

"Trained weights are best modelled by a Laplacian: by SSE it ranks 1st for 57 % and 2nd for 43 %
of 14 models; by KL divergence 1st for 43 %, 2nd for 50 %."

The thesis's quantity is the Laplacian's rank among eight fitted families by SSE and by KL on each
model's weight histogram; the tested quantity is the same rank on every trained fixture's weights and
biases (BatchNorm folded, as in the ONNX graph), fitted on a 100k subsample and histogrammed in full.
The verdict is the SSE rank ≤ 2 (the thesis: 1st or 2nd for 14 of 14 models); the KL rank is recorded
and gated beside it, as Table 3.3 reports it.

Controls (evidence for the fitter, not cases of the claim): for n = 100k seeded samples of each family
the fitter must rank the true family first by SSE and by KL. A control counts only when it is decisive:
the true family's SSE must beat the runner-up's by more than 3 noise units (the SSE's sampling noise);
within them — the exponential is a gamma of shape 1, and a Gaussian a near-tie with the logistic at this
n — the control is reported as inconclusive, not as passed through a tie-break.
"""

from __future__ import annotations

import numpy as np
import pytest

from greenbench.analysis.distributions import FAMILIES, REFERENCE_SOURCES, fit_families
from greenbench.harness.claims import Metric

pytestmark = pytest.mark.claim("laplacian-weights")

N_SAMPLES = 100_000


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fitter_ranks_the_true_family_first(family, claim):
    seed = list(FAMILIES).index(family)
    samples = REFERENCE_SOURCES[family].rvs(size=N_SAMPLES, random_state=np.random.default_rng(seed))
    report = fit_families(samples)
    sse_rank, kl_rank = report.rank(family, "sse"), report.rank(family, "kl")
    runner_up = report.by_sse[1] if report.by_sse[0] == family else report.by_sse[0]
    # how clearly the true family wins: the runner-up's SSE over the true family's, in noise units
    separation = (report.fits[runner_up].sse - report.fits[family].sse) / report.sse_noise
    claim.control(sse_rank == 1 and kl_rank == 1, decisive=abs(separation) > 3,
                  claimed=f"{family} samples ranked {family} first", tolerance="rank 1 by SSE and by KL, by > 3σ",
                  measured={"SSE rank": sse_rank, "KL rank": kl_rank, "runner-up": runner_up,
                            "separation σ": separation},
                  metrics={"sse_rank": Metric(sse_rank, 0.0, "lower"), "kl_rank": Metric(kl_rank, 0.0, "lower")},
                  inputs={"seed": seed, "samples": N_SAMPLES})


@pytest.mark.networks()
def test_laplace_ranks_first_or_second_for_trained_weights(network, trained_networks, claim):
    # thesis Tables 3.2–3.3: by SSE the Laplacian is 1st for 57 % and 2nd for 43 % of 14 models
    report = fit_families(trained_networks.weights(network), max_fit_samples=N_SAMPLES)
    sse_rank, kl_rank = report.rank("laplace", "sse"), report.rank("laplace", "kl")
    claim.verdict(sse_rank <= 2, claimed="Laplace ranks 1st or 2nd by SSE (thesis: 14 of 14 models)",
                  tolerance="SSE rank ≤ 2",
                  measured={"SSE rank": sse_rank, "KL rank": kl_rank, "SSE first": report.by_sse[0],
                            "KL first": report.by_kl[0]},
                  metrics={"laplace_sse_rank": Metric(sse_rank, 0.0, "lower"),
                           "laplace_kl_rank": Metric(kl_rank, 0.0, "lower")},
                  inputs=trained_networks.inputs(network))
