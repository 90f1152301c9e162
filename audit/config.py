"""Suite files: YAML as data, validated by pydantic; every error is one line naming file, check, field.

A suite names its models (aliases -> specs), its checks (id, check name, model alias, params) and
each check's gates. Nothing in a suite is executed as code.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from audit.errors import UsageError, usage

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Gate(_Strict):
    """A threshold on one metric (optionally one group's value): ``max`` or ``min``, not both."""

    metric: str
    max: float | None = None
    min: float | None = None
    group: str | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> "Gate":
        if (self.max is None) == (self.min is None):
            raise ValueError("a gate needs exactly one of `max` or `min`")
        return self


class ModelSpec(_Strict):
    """How to load a model: adapter (hf, predictions, fake, sklearn, responses) + path and options."""

    adapter: Literal["hf", "predictions", "fake", "sklearn", "responses"] = "hf"
    path: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class CheckConfig(_Strict):
    """One check in a suite: id, registered check name, model alias, params and gates."""

    id: str
    check: str
    model: str = "default"  # an alias under `models:`, or "none" for checks that need no model
    params: dict[str, Any] = Field(default_factory=dict)
    gate: list[Gate] = Field(default_factory=list)
    description: str = ""


class Suite(_Strict):
    """A suite file: name, description, model aliases and the checks to run in order."""

    name: str
    description: str = ""
    models: dict[str, str | ModelSpec] = Field(default_factory=dict)
    checks: list[CheckConfig]
    path: str | None = Field(default=None, exclude=True)
    sha256: str | None = Field(default=None, exclude=True)

    @property
    def base_dir(self) -> Path:
        """The suite file's folder (relative data paths resolve against it)."""
        return Path(self.path).resolve().parent if self.path else Path.cwd()


def _format_loc(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """Turn a pydantic error location into `check 'id': params.field` style text."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "checks" and isinstance(parts[1], int):
        checks = raw.get("checks") or []
        cid = checks[parts[1]].get("id", f"#{parts[1]}") if parts[1] < len(checks) and isinstance(
            checks[parts[1]], dict) else f"#{parts[1]}"
        rest = ".".join(str(p) for p in parts[2:]) or "(entry)"
        return f"check {cid!r}: {rest}"
    return ".".join(str(p) for p in parts) or "(top level)"


def _first_error(exc: ValidationError, raw: dict[str, Any]) -> tuple[str, str]:
    err = exc.errors()[0]
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    return _format_loc(tuple(err["loc"]), raw), msg


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping safely (``yaml.safe_load``); one-line errors for unreadable files."""
    import yaml

    if not path.exists():
        raise usage(str(path), "file", "not found", "pass the path of a suite YAML file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise usage(str(path), where, f"malformed YAML ({problem})",
                    "fix the indentation/quoting at that line") from None
    if not isinstance(raw, dict):
        raise usage(str(path), "(top level)", "a suite must be a mapping with `name` and `checks`",
                    "see suites/smoke.yaml for the shape")
    return raw


def load_suite(path: str | Path, validate_params: bool = True) -> Suite:
    """Load and validate a suite file: structure, unique ids, known checks, params, gates."""
    path = resolve_suite_path(path)
    raw = read_yaml(path)
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        where, msg = _first_error(exc, raw)
        raise usage(str(path), where, msg, "see `audit list` and suites/*.yaml for valid keys") from None
    suite.path = str(path)
    suite.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    _check_ids(suite)
    if validate_params:
        for entry in suite.checks:
            validate_check_entry(suite, entry)
    return suite


def resolve_suite_path(path: str | Path) -> Path:
    """A suite path as given, or the name of a shipped suite (``bias`` -> suites/bias.yaml)."""
    p = Path(path)
    if p.exists() or p.suffix in (".yaml", ".yml"):
        return p
    shipped = shipped_suites().get(str(path))
    return shipped if shipped else p


def shipped_suites() -> dict[str, Path]:
    """Suites shipped with audit (the package's ``audit._suites``, or the repo's suites/)."""
    found: dict[str, Path] = {}
    for base in _suite_dirs():
        for f in sorted(base.glob("*.yaml")):
            found.setdefault(f.stem, f)
    return found


def _suite_dirs() -> list[Path]:
    dirs = [Path(__file__).resolve().parents[1] / "suites"]
    try:
        import importlib.resources as res

        dirs.append(Path(str(res.files("audit._suites"))))
    except (ModuleNotFoundError, TypeError):
        pass
    return [d for d in dirs if d.is_dir()]


def _check_ids(suite: Suite) -> None:
    seen: set[str] = set()
    for entry in suite.checks:
        if not _ID.match(entry.id):
            raise usage(str(suite.path), f"check {entry.id!r}: id", "ids use letters, digits, _ . -",
                        "rename the check id")
        if entry.id in seen:
            raise usage(str(suite.path), f"check {entry.id!r}: id", "duplicate id", "make ids unique")
        seen.add(entry.id)
        if entry.model not in ("default", "none") and entry.model not in suite.models:
            raise usage(str(suite.path), f"check {entry.id!r}: model",
                        f"alias {entry.model!r} is not defined under `models:`",
                        f"add `models: {{{entry.model}: ...}}` or drop the key")


def validate_check_entry(suite: Suite, entry: CheckConfig) -> BaseModel:
    """Check that ``entry.check`` exists and its params fit the check's parameter model."""
    from audit.registry import get_check, known_check_names

    try:
        spec = get_check(entry.check)
    except KeyError:
        raise usage(str(suite.path), f"check {entry.id!r}: check", f"unknown check {entry.check!r}",
                    f"use one of: {', '.join(known_check_names())}") from None
    return parse_params(spec.params, entry.params, str(suite.path), entry.id)


def parse_params(model: type[BaseModel], params: dict[str, Any], where: str, check_id: str) -> BaseModel:
    """Validate a check's params against its model; one-line error naming the field."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "params"
        msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
        if err["type"] == "missing":
            msg = "required parameter is missing"
        raise usage(where, f"check {check_id!r}: params.{field}", msg,
                    f"see `audit list --check {check_id}` for the parameters") from None
    except UsageError:
        raise
