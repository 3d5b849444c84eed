"""greenbench: published Green-AI and quantization claims as executable, baselined tests."""

__version__ = "0.1.0"

# ratedistortion defines and registers the designed quantizers (ECSQ, the centroid deadzone), so the
# registry is whole whichever module a user imports first
from . import ratedistortion as _ratedistortion  # noqa: E402,F401
