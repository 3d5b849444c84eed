"""Public face: register your own claims and report their metrics (`register_claim`, `Metric`).

The implementation is `greenbench.harness.claims`."""

from greenbench.harness.claims import CLAIMS, Claim, ClaimRecord, Metric, register_claim

__all__ = ["CLAIMS", "Claim", "ClaimRecord", "Metric", "register_claim"]
