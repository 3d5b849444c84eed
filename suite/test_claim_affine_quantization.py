"""Claim `affine-quantization` — seed 003 (lecture slides on model compression).

"Q(r) = Int(r/S) − Z, S = (β − α)/(2^b − 1); calibration chooses the clipping range [α, β]."

- inside [α, β] the error is at most S/2 (checked exhaustively on 10^6 samples);
- 8-bit affine quantization of a unit Laplacian (10^6 seeded samples) has the SNR theory predicts
  for its step, within 0.2 dB: D = S²/12 · P(α ≤ X ≤ β) + the clipped tails' E[(X − clip(X))²].
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from greenbench.analysis.ratedistortion import snr_standard_error_db
from greenbench.harness.claims import Metric
from greenbench.quantization.affine import Affine

pytestmark = pytest.mark.claim("affine-quantization")

LAPLACE = stats.laplace(scale=1 / math.sqrt(2))
N_SAMPLES = 1_000_000
SEED = 3


@pytest.fixture(scope="module")
def samples():
    return LAPLACE.rvs(size=N_SAMPLES, random_state=np.random.default_rng(SEED))


def predicted_snr_db(q: Affine, dist) -> float:
    inside = dist.cdf(q.beta) - dist.cdf(q.alpha)
    lower = integrate.quad(lambda x: (x - q.alpha) ** 2 * dist.pdf(x), -np.inf, q.alpha)[0]
    upper = integrate.quad(lambda x: (x - q.beta) ** 2 * dist.pdf(x), q.beta, np.inf)[0]
    return 10 * math.log10(dist.var() / (q.scale**2 / 12 * inside + lower + upper))


@pytest.mark.parametrize("calibration", [("minmax", 100.0), ("percentile", 99.9), ("percentile", 99.0)],
                         ids=["minmax", "p99.9", "p99"])
def test_eight_bit_snr_matches_theory(samples, calibration, claim):
    method, pct = calibration
    q = Affine.calibrate(samples, 8, method=method, percentile=pct)
    err = samples - q.reconstruct(samples)
    measured = 10 * math.log10(float(np.var(samples)) / float(np.mean(err**2)))
    predicted = predicted_snr_db(q, LAPLACE)
    inside = (samples >= q.alpha) & (samples <= q.beta)
    worst = float(np.max(np.abs(err[inside]))) / q.scale
    se = snr_standard_error_db(N_SAMPLES, 6.0)
    claim.verdict(abs(measured - predicted) <= 0.2 and worst <= 0.5 + 1e-9,
                  claimed="SNR = theory for the step; |error| ≤ S/2 inside [α, β]",
                  tolerance="|SNR − theory| ≤ 0.2 dB",
                  measured={"SNR dB": measured, "theory dB": predicted, "max |err|/S inside": worst,
                            "alpha": q.alpha, "beta": q.beta},
                  metrics={"snr_db": Metric(measured, se, "higher", "dB")},
                  inputs={"seed": SEED, "samples": N_SAMPLES})
