"""Built-in checks, one per module, grouped by area (bias, fairness, privacy, explain)."""
