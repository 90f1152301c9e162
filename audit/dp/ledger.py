"""The privacy ledger: what a DP-SGD run spent, written next to the model as privacy_ledger.json.

The ledger is the guarantee an auditor can check without re-training: the (epsilon, delta) pair,
the accountant that produced it and every input that accountant needs (noise multiplier, sample
rate, number of steps), so :func:`recompute_epsilon` can re-derive epsilon independently. It holds
no timestamps, so the same seed gives the same ledger byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from audit.io import sha256_file  # noqa: F401  (re-exported: the ledger hashes data files)

LEDGER_FILE = "privacy_ledger.json"
LEDGER_SCHEMA = "audit.privacy_ledger/1"
ACCOUNTANTS = ("rdp", "prv")


def sha256_json(value: Any) -> str:
    """SHA-256 of a value's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def default_delta(n: int) -> float:
    """The default delta for ``n`` training examples: 1/(10 n), an order of magnitude below 1/n."""
    return 1.0 / (10.0 * max(int(n), 1))


def recompute_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                      accountant: str = "rdp") -> float:
    """Epsilon of ``steps`` Poisson-subsampled Gaussian steps, from a fresh Opacus accountant."""
    from opacus.accountants import create_accountant

    acct = create_accountant(mechanism=accountant)
    if steps <= 0:
        return 0.0
    acct.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(acct.get_epsilon(delta=delta))


def epsilon_from_history(history: list[tuple[float, float, int]], delta: float,
                         accountant: str) -> float:
    """Epsilon of a whole accountant history [(noise multiplier, sample rate, steps), ...]."""
    from opacus.accountants import create_accountant

    if not history:
        return 0.0
    acct = create_accountant(mechanism=accountant)
    acct.history = [(float(s), float(q), int(n)) for s, q, n in history]
    return float(acct.get_epsilon(delta=delta))


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a DP run's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("audit", "opacus", "torch", "transformers", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_ledger(ledger: dict[str, Any], folder: str | Path) -> Path:
    """Write ``ledger`` as ``folder/privacy_ledger.json`` (sorted keys, stable bytes)."""
    path = Path(folder) / LEDGER_FILE
    path.write_text(json.dumps(ledger, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def find_ledger(path: str | Path) -> Path | None:
    """The ledger for ``path``: the file itself, or ``privacy_ledger.json`` inside the folder."""
    p = Path(path)
    if p.is_file():
        return p
    candidate = p / LEDGER_FILE
    return candidate if candidate.is_file() else None


def read_ledger(path: str | Path) -> dict[str, Any]:
    """Read and validate a ledger; a malformed file raises a one-line UsageError."""
    from audit.errors import usage

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise usage(str(path), f"line {exc.lineno}", "not valid JSON",
                    "pass the privacy_ledger.json written by `audit train-dp`") from None
    if not isinstance(data, dict) or data.get("schema") != LEDGER_SCHEMA:
        raise usage(str(path), "schema", f"not a privacy ledger ({LEDGER_SCHEMA})",
                    "pass the privacy_ledger.json written by `audit train-dp`")
    missing = [k for k in ("dp", "epsilon", "delta") if k not in data]
    if missing:
        raise usage(str(path), ", ".join(missing), "missing from the ledger",
                    "re-create it with `audit train-dp`")
    return data


def consistency_problems(ledger: dict[str, Any]) -> list[str]:
    """Where the ledger's accountant history disagrees with the numbers it displays.

    The history [(noise multiplier, sample rate, steps), ...] is what epsilon is computed from;
    each entry must show the displayed noise multiplier and sample rate, their steps must add up
    to the displayed steps, and the sample rate must be the one the sample size implies:
    q = 1/ceil(N/B) for N examples (``dataset.sampling_population``, else ``dataset.size``) and
    logical batch size B, with ``epochs`` x ceil(N/B) steps and an expected batch of int(n q).
    An empty list means every cross-check passed.
    """
    import math

    history = ledger.get("accountant_history") or []
    if not history:
        return ["the ledger holds no accountant history, so its epsilon cannot be re-derived"]
    sigma, rate, steps = (ledger.get(k) for k in ("noise_multiplier", "sample_rate", "steps"))
    if sigma is None or rate is None or steps is None:
        return ["the ledger does not display its noise multiplier, sample rate and steps"]
    out = []
    for s, q, _ in history:
        if not math.isclose(float(s), float(sigma), rel_tol=1e-9):
            out.append(f"history noise multiplier {s:g} != displayed {sigma:g}")
        if not math.isclose(float(q), float(rate), rel_tol=1e-9):
            out.append(f"history sample rate {q:g} != displayed {rate:g}")
    if sum(int(h[2]) for h in history) != int(steps):
        out.append(f"history steps {sum(int(h[2]) for h in history)} != displayed {steps}")
    return out + _sample_size_problems(ledger, float(rate), int(steps))


def _sample_size_problems(ledger: dict[str, Any], rate: float, steps: int) -> list[str]:
    import math

    data = ledger.get("dataset") or {}
    size = data.get("size")
    population = data.get("sampling_population") or size
    batch, epochs = ledger.get("logical_batch_size"), ledger.get("epochs")
    if not population or not batch or not epochs:
        return ["the ledger lacks the sample size, logical batch size or epochs needed to check "
                "its sample rate"]
    per_epoch = max(1, math.ceil(int(population) / int(batch)))
    out = []
    if not math.isclose(rate, 1.0 / per_epoch, rel_tol=1e-9):
        out.append(f"sample rate {rate:g} != 1/ceil({population}/{batch}) = {1.0 / per_epoch:g}")
    if steps != int(epochs) * per_epoch:
        out.append(f"steps {steps} != {epochs} epochs x {per_epoch} batches")
    expected = ledger.get("expected_batch_size")
    if size and expected is not None and int(int(size) * rate) != int(expected):
        out.append(f"expected batch size {expected} != int({size} x {rate:g})")
    return out
