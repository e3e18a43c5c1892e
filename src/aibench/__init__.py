"""aibench: what an AI infrastructure node really delivers, measured and validated."""

__version__ = "0.1.0"
