"""Model adapters: the one boundary between checks and models."""
