"""actlab: a reproducible study of ReLU and its variants."""

__version__ = "0.1.0"
