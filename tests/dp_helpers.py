"""Reference computations shared by the DP tests, written independently of audit.dp."""

from __future__ import annotations

import math


def gaussian_rdp_epsilon(sigma: float, steps: int, delta: float) -> float:
    """Hand-written RDP of the full-batch (sample rate 1) Gaussian mechanism,
    alpha * T / (2 sigma^2) (Mironov 2017, Prop. 7), converted to (eps, delta) with Balle et al.
    2020's bound (Thm. 21) over Opacus' default alpha grid."""
    alphas = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    best = math.inf
    for a in alphas:
        rdp = steps * a / (2 * sigma**2)
        eps = rdp + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        best = min(best, eps)
    return best
