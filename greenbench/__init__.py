"""greenbench: published Green-AI and quantization claims as executable, baselined tests."""

__version__ = "0.1.0"
