"""Privacy checks: verbatim memorization, canary exposure, PII leakage, membership inference."""
