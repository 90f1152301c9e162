"""Error types that map to the CLI's exit codes (as pytest: 0 ok, 1 gate failed, 2 check error,
3 internal error, 4 usage/config error)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_CHECK_ERROR = 2
EXIT_INTERNAL = 3
EXIT_USAGE = 4


class AuditError(Exception):
    """Base class of audit's own errors."""

    exit_code = EXIT_INTERNAL


class UsageError(AuditError):
    """Bad input from the user: a suite, a parameter, a file or a model path.

    The message is one line naming the file, the field and the fix; the CLI prints it and exits 4.
    """

    exit_code = EXIT_USAGE


class InputDataError(UsageError):
    """A data file a check reads is malformed (missing columns, empty, wrong values)."""


class CapabilityError(AuditError):
    """The model adapter lacks what a check needs; the runner records the check as skipped."""

    exit_code = EXIT_USAGE


def usage(where: str, field: str, problem: str, fix: str) -> UsageError:
    """Build a one-line UsageError: ``<where>: <field>: <problem> (fix: <fix>)``."""
    return UsageError(f"{where}: {field}: {problem} (fix: {fix})")
