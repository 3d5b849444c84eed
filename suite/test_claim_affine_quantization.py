"""Claim `affine-quantization` — seed 003 (lecture slides on model compression).

"Q(r) = Int(r/S) − Z, S = (β − α)/(2^b − 1); calibration chooses the clipping range [α, β]."

The slides' quantity is the formula itself; the tested quantity is the SNR of b-bit affine
quantization (b = 4 and 8) of a unit Laplacian (10^6 seeded samples) against the SNR the formula
predicts for the calibrated [α, β]: the distortion of the 2^b levels S·(k − Z) on the Laplacian,
integrated cell by cell (clipped tails included), with S computed here from the slides' formula, not
read from the quantizer. Tolerance: 3 standard errors of the SNR estimate (≈ 0.03 dB, down from the
0.2 dB that let the wrong step pass), so the formula is what is tested. Inside [α, β] the error is at
most S/2.

Control: the alternative step (β − α)/2^b must be rejected by the same tolerance. Where the two
steps' predictions differ by less than twice the tolerance (8 bits, min/max calibration: 0.02 dB) the
control is inconclusive: that case cannot tell the formulas apart, the others do.
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


def predicted_snr_db(alpha: float, beta: float, step: float, bits: int, dist) -> float:
    """The SNR of the 2^b levels S·(k − Z) (Z puts a level on 0) on `dist`, each x going to its nearest level
    and beyond the outer ones clipped: exact cell by cell, at any step (no high-rate S²/12 approximation)."""
    levels = step * (math.floor(alpha / step + 0.5) + np.arange(2**bits))
    edges = np.concatenate([[-np.inf], (levels[1:] + levels[:-1]) / 2, [np.inf]])
    distortion = sum(integrate.quad(lambda x, y=y: (x - y) ** 2 * dist.pdf(x), lo, hi)[0]
                     for y, lo, hi in zip(levels, edges[:-1], edges[1:]))
    return 10 * math.log10(dist.var() / distortion)


CALIBRATIONS = [("minmax", 100.0), ("percentile", 99.9), ("percentile", 99.0)]
CALIBRATION_IDS = ["minmax", "p99.9", "p99"]
TOLERANCE_SE = 3


def _measure(samples, bits, calibration):
    method, pct = calibration
    q = Affine.calibrate(samples, bits, method=method, percentile=pct)
    err = samples - q.reconstruct(samples)
    measured = 10 * math.log10(float(np.var(samples)) / float(np.mean(err**2)))
    tol = TOLERANCE_SE * snr_standard_error_db(N_SAMPLES, 6.0)  # the Laplacian's kurtosis bounds the error's
    return q, err, measured, tol


@pytest.mark.parametrize("calibration", CALIBRATIONS, ids=CALIBRATION_IDS)
@pytest.mark.parametrize("bits", [4, 8])
def test_snr_matches_the_slides_formula(samples, bits, calibration, claim):
    q, err, measured, tol = _measure(samples, bits, calibration)
    step = (q.beta - q.alpha) / (2**bits - 1)  # the slides' S
    predicted = predicted_snr_db(q.alpha, q.beta, step, bits, LAPLACE)
    inside = (samples >= q.alpha) & (samples <= q.beta)
    worst = float(np.max(np.abs(err[inside]))) / step
    claim.verdict(abs(measured - predicted) <= tol and worst <= 0.5 + 1e-9,
                  claimed="SNR = the prediction for S = (β − α)/(2^b − 1); |error| ≤ S/2 inside [α, β]",
                  tolerance=f"|SNR − prediction| ≤ {TOLERANCE_SE} SE = {tol:.3f} dB",
                  measured={"SNR dB": measured, "prediction dB": predicted, "max |err|/S inside": worst,
                            "alpha": q.alpha, "beta": q.beta},
                  metrics={"snr_db": Metric(measured, tol / TOLERANCE_SE, "higher", "dB")},
                  inputs={"seed": SEED, "samples": N_SAMPLES})


@pytest.mark.parametrize("calibration", CALIBRATIONS, ids=CALIBRATION_IDS)
@pytest.mark.parametrize("bits", [4, 8])
def test_control_the_other_step_is_rejected(samples, bits, calibration, claim):
    q, _, measured, tol = _measure(samples, bits, calibration)
    right = predicted_snr_db(q.alpha, q.beta, (q.beta - q.alpha) / (2**bits - 1), bits, LAPLACE)
    wrong = predicted_snr_db(q.alpha, q.beta, (q.beta - q.alpha) / 2**bits, bits, LAPLACE)
    claim.control(abs(measured - wrong) > tol, decisive=abs(right - wrong) > 2 * tol,
                  claimed="S = (β − α)/2^b would be told apart from the slides' S",
                  tolerance=f"|SNR − its prediction| > {tol:.3f} dB when the two predictions differ by > 2× that",
                  measured={"SNR dB": measured, "prediction for (β − α)/2^b": wrong,
                            "the two predictions differ dB": right - wrong},
                  inputs={"seed": SEED, "samples": N_SAMPLES})
