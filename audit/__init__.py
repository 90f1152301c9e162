"""audit: a responsible-AI evaluation harness (bias, fairness, privacy, explainability, DP-SGD)."""

__version__ = "0.1.0"
