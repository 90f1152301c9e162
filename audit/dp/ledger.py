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
