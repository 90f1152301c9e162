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
from audit.io import read_text_file

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
    """How to load a model: adapter (hf, predictions, fake, sklearn, openai, responses) + path and
    options.

    ``adapter: openai`` (any OpenAI-compatible server) takes ``base_url`` and ``model`` instead
    of ``path``, plus the connection settings below; the API key is read from the environment
    variable named by ``api_key_env``, never from the suite. ``adapter: responses`` reads logged
    chat replies (a JSONL file) for the checks that only need what a model said.
    """

    adapter: Literal["hf", "predictions", "fake", "sklearn", "openai", "responses"] = "hf"
    path: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    base_url: str | None = Field(None, description="openai: API root, e.g. http://127.0.0.1:8000/v1")
    model: str | None = Field(None, description="openai: the served model id (see /v1/models)")
    api_key_env: str | None = Field(None, description="openai: NAME of the env var holding the key")
    max_concurrency: int = Field(4, ge=1, le=256, description="openai: requests in flight")
    timeout_s: float = Field(120.0, gt=0, description="openai: per-request timeout (seconds)")
    max_retries: int = Field(4, ge=0, le=20, description="openai: retries of a failed request")
    cache: bool | str = Field(True, description="openai: response cache (true: the user cache, "
                              "false: none, or a SQLite file path)")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="openai: fields added "
                                       "to every completion/chat request (e.g. repeat_penalty)")
    probe_tolerance: float = Field(0.1, gt=0, description="openai: nats allowed between echo and "
                                   "generation log-probs in the scoring probe")
    replicas: int = Field(1, ge=1, le=1024, description="--backend ray: copies of the model, "
                          "each in its own Ray actor; large calls are split across them")
    resources: dict[str, float] = Field(default_factory=dict, description="--backend ray: what "
                                        "each replica reserves, e.g. {num_cpus: 4, num_gpus: 1}")

    @model_validator(mode="after")
    def _openai_fields(self) -> "ModelSpec":
        served = ("base_url", "model", "api_key_env")
        if self.adapter == "openai" and not (self.base_url and self.model):
            raise ValueError("adapter: openai needs base_url and model")
        if self.adapter != "openai" and any(getattr(self, f) for f in served):
            raise ValueError("base_url / model / api_key_env belong to adapter: openai")
        return self


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

    def check_by_id(self, check_id: str) -> "CheckConfig | None":
        """The entry with this id, or None."""
        return next((c for c in self.checks if c.id == check_id), None)

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
    if path.is_dir():
        raise usage(str(path), "file", "is a folder, not a suite file",
                    "pass the path of a suite YAML file inside it")
    try:
        raw = yaml.safe_load(read_text_file(path, "suite"))
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
    """Check that ``entry.check`` exists, its params fit the check's parameter model, and every
    file path among them exists."""
    from audit.registry import get_check, known_check_names

    try:
        spec = get_check(entry.check)
    except KeyError:
        raise usage(str(suite.path), f"check {entry.id!r}: check", f"unknown check {entry.check!r}",
                    f"use one of: {', '.join(known_check_names())}") from None
    parsed = parse_params(spec.params, entry.params, str(suite.path), entry.id, entry.check)
    check_param_paths(suite, entry)
    return parsed


_FILE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".txt", ".parquet", ".pq", ".yaml", ".yml",
                  ".bin", ".safetensors", ".gguf")


def looks_like_path(value: str) -> bool:
    """A parameter value that names a file: a known data-file suffix, or a path with a folder
    separator (``asset:``, ``builtin:`` and URLs are not files)."""
    if value.startswith(("asset:", "builtin:", "http://", "https://")) or "\n" in value:
        return False
    return value.lower().endswith(_FILE_SUFFIXES) or ("/" in value and " " not in value)


def check_param_paths(suite: Suite, entry: CheckConfig) -> None:
    """Every file path among a check's params must exist (relative to the suite's folder, then
    the working folder): caught by ``audit validate`` before any model loads."""
    from audit.runtime import resolve_user_path

    for key, value in _string_params(entry.params):
        if looks_like_path(value) and not resolve_user_path(value, suite.base_dir).exists():
            raise usage(str(suite.path), f"check {entry.id!r}: params.{key}",
                        f"file not found: {value}",
                        f"give a path relative to the suite's folder ({suite.base_dir}) or an "
                        "absolute path")


def _string_params(params: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(params, str):
        return [(prefix, params)]
    if isinstance(params, dict):
        return [kv for k, v in params.items() for kv in _string_params(v, f"{prefix}.{k}".strip("."))]
    if isinstance(params, list):
        return [kv for i, v in enumerate(params) for kv in _string_params(v, f"{prefix}[{i}]")]
    return []


def parse_params(model: type[BaseModel], params: dict[str, Any], where: str, check_id: str,
                 check_name: str | None = None) -> BaseModel:
    """Validate a check's params against its model; one-line error naming the field and the
    command that lists the check's parameters."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "params"
        msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
        if err["type"] == "missing":
            msg = "required parameter is missing"
        raise usage(where, f"check {check_id!r}: params.{field}", msg,
                    f"see `audit list --check {check_name or check_id}` for the parameters") from None
    except UsageError:
        raise
