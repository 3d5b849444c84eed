"""What the command line's modules share."""

from __future__ import annotations

from pathlib import Path


class CliError(Exception):
    """A bad argument or input: printed as `greenbench: error: …`, exit status 2."""


def repo_root() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "conftest.py").is_file() or not (root / "suite").is_dir():
        raise SystemExit("greenbench run/compare need a greenbench checkout (the suite lives beside the package); "
                         f"{root} is not one")
    return root
