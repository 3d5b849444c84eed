"""The ground floor: what every layer above uses and that uses nothing of greenbench.

- `validation`: one way to check a public function's arguments (numbers, arrays, seconds, dtypes).
- `provenance`: the hardware fingerprint and profile, library versions, dates, atomic JSON writes —
  stamped on checkpoints (`nn`) as well as on baselines and reports (`harness`), so it sits below both.
"""
