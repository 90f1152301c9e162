"""Bias checks: template probes, sentence-pair preference and embedding association tests."""
