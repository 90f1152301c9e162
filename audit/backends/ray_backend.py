"""The Ray backend: one suite across many workers and GPUs, with the local backend's results.

- Each model alias runs in ``replicas`` Ray actors (``ModelReplica``), each loading the model
  once with the resources its spec asks (``resources: {num_cpus: 4, num_gpus: 1}``).
- Checks run as Ray tasks, all submitted at once, so independent checks run in parallel; their
  models are reached through :class:`RayAdapter`, a proxy with the same capability methods. What
  travels is a capability call (method name + arguments) or a check, never a torch object.
- A large call is split across the alias's replicas by the adapter's own ``shard_plan`` (whole
  internal batches, contiguous; ``audit.backends.sharding``) and reassembled in input order:
  bit-identical to one replica, hence to the local backend.
- Faults: actors are restarted by Ray and an interrupted call is retried (``max_restarts`` and
  ``max_task_retries``, both ``RAY_RETRIES``); when retries are exhausted the call raises, the
  check is ``error`` with a one-line reason and the other checks complete.
- Results are merged in suite order and written atomically after every finished check, as the
  local backend does, so a killed driver leaves a valid results.json and ``--resume`` finishes.
- Adapters that are data rather than calls (predictions, sklearn, fake) are loaded inside the
  check's task instead of an actor.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402  (the module is imported only for --backend ray)

from audit.backends.sharding import SPLIT_ARG, contiguous_shards, merge, shard_kwargs  # noqa: E402
from audit.errors import usage  # noqa: E402

RAY_RETRIES = 2
IN_TASK_ADAPTERS = ("predictions", "sklearn", "fake")


FAULT_ENV = "AUDIT_RAY_FAULT_FILE"


def _maybe_crash(method: str) -> None:
    """Fault injection for tests: when ``$AUDIT_RAY_FAULT_FILE`` names a JSON file
    ``{"method": M, "crashes": N}`` and N > 0, a replica asked for M decrements N and kills its
    own process (as an out-of-memory kill or a lost node would). Off unless the variable is set."""
    import json

    path = os.environ.get(FAULT_ENV)
    if not path or not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        fault = json.load(fh)
    if fault.get("method") != method or int(fault.get("crashes", 0)) <= 0:
        return
    fault["crashes"] = int(fault["crashes"]) - 1
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(fault, fh)
    os._exit(1)


@ray.remote
class ModelReplica:
    """One copy of a model in its own process: loads it once, answers capability calls."""

    def __init__(self, spec: Any, alias: str, options: Any, base_dir: Any, threads: int):
        import torch

        from audit.models.loader import load_model

        torch.set_num_threads(max(1, threads))
        self.adapter = load_model(spec, alias=alias, options=options, base_dir=base_dir)

    def describe(self) -> dict[str, Any]:
        """The attributes a proxy needs to look like the adapter."""
        a = self.adapter
        return {"kind": a.kind, "capabilities": sorted(a.capabilities),
                "labels": list(getattr(a, "labels", []) or []),
                "mask_token": getattr(a, "mask_token", None),
                "special_tokens": dict(getattr(a, "special_tokens", {}) or {}),
                "max_length": getattr(a, "max_length", None),
                "device": getattr(a, "device", "cpu"),
                "capability_notes": dict(getattr(a, "capability_notes", {}) or {})}

    def info(self) -> Any:
        return self.adapter.info()

    def plan(self, method: str, kwargs: dict[str, Any]) -> list[list[int]] | None:
        fn = getattr(self.adapter, "shard_plan", None)
        return fn(method, kwargs) if fn is not None else None

    def call(self, method: str, kwargs: dict[str, Any]) -> Any:
        _maybe_crash(method)
        return getattr(self.adapter, method)(**kwargs)

    def pid(self) -> int:
        return os.getpid()


class RayAdapter:
    """A model served by Ray actors, with the capability methods of the adapter inside them."""

    adapter_name = "ray"

    def __init__(self, alias: str, replicas: list[Any], description: dict[str, Any],
                 model_info: Any):
        self.alias, self.replicas = alias, replicas
        self.model_info = model_info
        self.kind = description["kind"]
        self.capabilities = frozenset(description["capabilities"])
        self.labels = description["labels"]
        self.mask_token = description["mask_token"]
        self.special_tokens = description["special_tokens"]
        self.max_length = description["max_length"]
        self.device = description["device"]
        self.capability_notes = description["capability_notes"]
        self._next = 0

    def info(self) -> Any:
        """The model's provenance, read from a replica when it started: asking again later
        would fail once a replica has died for good, and the run must still write the other
        checks' results."""
        return self.model_info

    def close(self) -> None:
        """Actors are released when the run ends."""

    def _invoke(self, method: str, **kwargs: Any) -> Any:
        progress = kwargs.pop("progress", None)
        n_items = len(kwargs[SPLIT_ARG[method][0]]) if method in SPLIT_ARG else 0
        plan = None
        if method in SPLIT_ARG and len(self.replicas) > 1 and n_items > 1:
            plan = ray.get(self.replicas[0].plan.remote(method, kwargs))
        if not plan or len(plan) < 2:
            replica = self.replicas[self._next % len(self.replicas)]
            self._next += 1
            out = ray.get(replica.call.remote(method, kwargs))
            if progress and n_items:
                progress(n_items)
            return out
        return self._split(method, kwargs, plan, n_items, progress)

    def _split(self, method: str, kwargs: dict[str, Any], plan: list[list[int]], n_items: int,
               progress: Any) -> Any:
        shards = contiguous_shards(plan, len(self.replicas))
        refs = {self.replicas[k].call.remote(method, shard_kwargs(method, kwargs, idx, first)): idx
                for k, (first, idx) in enumerate(shards)}
        parts, pending = [], list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            idx = refs[done[0]]
            parts.append((idx, ray.get(done[0])))
            if progress:
                progress(len(idx))
        return merge(method, n_items, parts)

    # -- the capability methods (audit.models.capabilities), each one remote call or several ----
    def tokenize(self, texts: Sequence[str], add_special_tokens: bool = True) -> Any:
        return self._invoke("tokenize", texts=list(texts), add_special_tokens=add_special_tokens)

    def decode(self, ids: Sequence[int]) -> str:
        return self._invoke("decode", ids=list(ids))

    def masked_log_probs(self, requests: Sequence[Any], progress: Any = None) -> Any:
        return self._invoke("masked_log_probs", requests=list(requests), progress=progress)

    def fill_mask(self, texts: Sequence[str], top_k: int = 10) -> Any:
        return self._invoke("fill_mask", texts=list(texts), top_k=top_k)

    def token_log_probs(self, texts: Sequence[str], progress: Any = None) -> Any:
        return self._invoke("token_log_probs", texts=list(texts), progress=progress)

    def sequence_log_prob(self, texts: Sequence[str], progress: Any = None) -> Any:
        return self._invoke("sequence_log_prob", texts=list(texts), progress=progress)

    def continuation_log_prob(self, prompts: Sequence[str], continuations: Sequence[str],
                              progress: Any = None) -> Any:
        return self._invoke("continuation_log_prob", prompts=list(prompts),
                            continuations=list(continuations), progress=progress)

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                 progress: Any = None) -> Any:
        return self._invoke("generate", prompts=list(prompts), max_new_tokens=max_new_tokens,
                            do_sample=do_sample, temperature=temperature, top_p=top_p, seed=seed,
                            progress=progress)

    def greedy_token_continuations(self, prefixes: Sequence[Sequence[int]], max_new_tokens: int,
                                   progress: Any = None) -> Any:
        return self._invoke("greedy_token_continuations", prefixes=[list(p) for p in prefixes],
                            max_new_tokens=max_new_tokens, progress=progress)

    def chat(self, conversations: Sequence[Sequence[Any]], max_new_tokens: int = 128,
             do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
             progress: Any = None) -> Any:
        return self._invoke("chat", conversations=[list(c) for c in conversations],
                            max_new_tokens=max_new_tokens, do_sample=do_sample,
                            temperature=temperature, top_p=top_p, seed=seed, progress=progress)

    def render_chat(self, messages: Sequence[Any], add_generation_prompt: bool = True) -> str:
        return self._invoke("render_chat", messages=list(messages),
                            add_generation_prompt=add_generation_prompt)

    def predict_proba(self, texts: Sequence[str], progress: Any = None) -> Any:
        return self._invoke("predict_proba", texts=list(texts), progress=progress)

    def embed(self, texts: Sequence[str], progress: Any = None) -> Any:
        return self._invoke("embed", texts=list(texts), progress=progress)

    def attentions(self, text: str) -> Any:
        return self._invoke("attentions", text=text)


@dataclass
class TaskPool:
    """The model pool a check sees inside its Ray task: proxies for actor-served aliases, and
    models loaded in the task for the others (predictions files, sklearn, fake)."""

    suite: Any
    options: Any
    proxies: dict[str, RayAdapter]
    identities: dict[str, Any]
    specs: dict[str, Any]
    local: dict[str, Any] = field(default_factory=dict)

    def spec_for(self, alias: str) -> Any:
        return self.specs[alias]

    def identity(self, alias: str) -> Any:
        return self.identities[alias]

    def get(self, alias: str) -> Any:
        if alias in self.proxies:
            return self.proxies[alias]
        if alias not in self.local:
            from audit.models.loader import load_model

            self.local[alias] = load_model(self.specs[alias], alias=alias, options=self.options,
                                           base_dir=self.suite.base_dir)
        return self.local[alias]


@ray.remote(num_cpus=0, max_retries=0)
def run_check_task(entry: Any, pool: TaskPool) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """One check in a Ray worker: the local runner's ``execute_check`` against the task pool;
    also the provenance of the models the task loaded itself."""
    from audit.runner import execute_check

    result, items = execute_check(entry, pool.suite, pool, pool.options)
    return result, items, {a: m.info() for a, m in pool.local.items() if a != "none"}


def _spec_object(spec: Any) -> Any:
    from audit.config import ModelSpec
    from audit.models.loader import _spec_from_string

    if spec == "none" or isinstance(spec, ModelSpec):
        return spec
    return _spec_from_string(spec) if isinstance(spec, str) else ModelSpec.model_validate(spec)


def _start_replicas(alias: str, spec: Any, options: Any, base_dir: Any) -> RayAdapter:
    """``spec.replicas`` actors for one alias, with the resources the spec asks. Each replica
    computes with as many torch threads as a local run would (``resources.num_cpus`` when
    given, else this process's default), so both backends produce the same floats."""
    import torch

    threads = int(spec.resources["num_cpus"]) if spec.resources.get("num_cpus") else \
        torch.get_num_threads()
    res = dict(spec.resources or {})
    num_cpus = float(res.pop("num_cpus", 1))
    num_gpus = float(res.pop("num_gpus", 0))
    memory = res.pop("memory", None)
    opts: dict[str, Any] = dict(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=RAY_RETRIES,
                                max_task_retries=RAY_RETRIES)
    if memory:
        opts["memory"] = memory
    if res:
        opts["resources"] = res
    replicas = [ModelReplica.options(**opts).remote(spec, alias, options, base_dir, threads)
                for _ in range(spec.replicas)]
    description = ray.get(replicas[0].describe.remote())
    return RayAdapter(alias, replicas, description, ray.get(replicas[0].info.remote()))


def requested(spec: Any) -> dict[str, float]:
    """What all replicas of one model alias reserve together (CPU defaults to 1 per replica)."""
    res = dict(spec.resources or {})
    out = {"CPU": float(res.pop("num_cpus", 1)), "GPU": float(res.pop("num_gpus", 0))}
    res.pop("memory", None)
    out.update({k: float(v) for k, v in res.items()})
    return {k: v * spec.replicas for k, v in out.items() if v}


def check_fits(suite: Any, specs: dict[str, Any], available: dict[str, float]) -> None:
    """Every replica of every model is started at once and held for the run, so on a fixed-size
    (local) Ray instance their requests must fit together, or the run would wait forever for
    resources. Raises a one-line usage error naming the model and the fix."""
    need: dict[str, float] = {}
    for spec in specs.values():
        for key, value in requested(spec).items():
            need[key] = need.get(key, 0.0) + value
    short = {k: v for k, v in need.items() if v > float(available.get(k, 0.0)) + 1e-9}
    if short:
        key = next(iter(short))
        asks = ", ".join(f"{a}: {s.replicas} x {requested(s).get(key, 0) / s.replicas:g}"
                         for a, s in specs.items() if requested(s).get(key))
        raise usage(str(suite.path or suite.name), f"models.*.resources ({key})",
                    f"the replicas ask for {need[key]:g} {key} in all ({asks}) but the local "
                    f"Ray instance has {float(available.get(key, 0.0)):g}",
                    "lower replicas or resources.num_cpus/num_gpus, or join a larger "
                    "cluster with --ray-address")


def _aliases(suite: Any, entries: list[Any]) -> list[str]:
    """Model aliases the entries use, directly or by naming them in a parameter (a reference
    model), in first-use order."""
    used = [e.model for e in entries]
    for e in entries:
        used += [v for v in e.params.values() if isinstance(v, str) and v in suite.models]
    return [a for a in dict.fromkeys(used) if a != "none"]


def connect(address: str | None, quiet: bool) -> None:
    """Join a cluster (``auto`` or an address) or start a local Ray instance: no dashboard, no
    usage statistics."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=not quiet,
                                  logging_level="ERROR", configure_logging=True)
    env = {k: os.environ[k] for k in (FAULT_ENV, "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                      "AUDIT_CACHE", "TOKENIZERS_PARALLELISM") if k in os.environ}
    if env:
        kwargs["runtime_env"] = {"env_vars": env}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(**kwargs)


def run_suite_ray(suite: Any, options: Any) -> Any:
    """``audit run --backend ray``: the local runner's bookkeeping with checks as Ray tasks."""
    from audit import runner as R

    options.out_dir.mkdir(parents=True, exist_ok=True)
    connect(options.ray_address, options.quiet)
    R.seed_everything(options.seed)
    local_pool = R.ModelPool(suite, options)
    entries = [e for e in suite.checks if not options.only or e.id in options.only]
    R.prepare_assets(suite, entries, local_pool, options)
    R._preflight(local_pool, entries)
    previous = R._previous(options.out_dir) if options.resume else None
    old_items = R._previous_items(previous, options.out_dir)
    aliases = _aliases(suite, entries)
    specs = {a: _spec_object(local_pool.spec_for(a)) for a in aliases}
    specs["none"] = "none"
    served = {a: s for a, s in specs.items() if s != "none" and s.adapter not in IN_TASK_ADAPTERS}
    if not options.ray_address:
        check_fits(suite, served, ray.cluster_resources())
    proxies = {a: _start_replicas(a, s, options, suite.base_dir) for a, s in served.items()}
    identities = {a: local_pool.identity(a) for a in aliases}
    identities["none"] = {"spec": "none"}
    pool = TaskPool(suite, options, proxies, identities, specs)
    try:
        return _run_tasks(suite, options, entries, pool, previous, old_items)
    finally:
        release(proxies)


def release(proxies: dict[str, Any]) -> None:
    """Kill this run's replicas so their resources return to the cluster at once (a later run
    in the same Ray session, or another user's job, would otherwise wait for them)."""
    for proxy in proxies.values():
        for replica in proxy.replicas:
            ray.kill(replica, no_restart=True)


def _run_tasks(suite: Any, options: Any, entries: list[Any], pool: TaskPool, previous: Any,
               old_items: dict[str, Any]) -> Any:
    from audit import runner as R
    from audit.gate import gate_check
    from audit.results import RunResult, SuiteInfo

    run = RunResult(run_id=R._run_id(suite, options), created_at=R._now(), seed=options.seed,
                    suite=SuiteInfo(name=suite.name, path=suite.path, sha256=suite.sha256,
                                    description=suite.description),
                    provenance=R.provenance(options), show_pii=options.show_pii)
    done: dict[str, Any] = {}
    items: dict[str, list[dict[str, Any]]] = {}
    infos: dict[str, Any] = {}
    futures = {}
    for entry in entries:
        reused = R._reusable(previous, entry, suite, pool, options)
        if reused is not None:
            done[entry.id], items[entry.id] = reused, old_items.get(entry.id, [])
        else:
            futures[run_check_task.remote(entry, pool)] = entry
    pending = list(futures)
    while pending or not futures:
        if pending:
            ready, pending = ray.wait(pending, num_returns=1)
            entry = futures[ready[0]]
            done[entry.id], items[entry.id], found = _result_of(ready[0], entry)
            infos.update(found)
            if not options.quiet:
                print(f"[{len(done)}/{len(entries)}] {entry.id} ({entry.check}) done",
                      file=sys.stderr, flush=True)
        ordered = [gate_check(done[e.id], e.gate) for e in entries if e.id in done]
        run = _with_models(run.model_copy(update={"checks": ordered}), pool, infos, previous,
                           options)
        R.save_results(run, options.out_dir, items)
        if not pending:
            break
    from audit.results import Environment

    run = run.model_copy(update={"environment": Environment(note=(
        "energy not measured under --backend ray: the work runs in Ray worker processes"))})
    R.save_results(run, options.out_dir, items)
    return run


def _result_of(ref: Any, entry: Any) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """A task's (result, items), or an ``error`` result when the task itself failed (a replica
    that kept dying after its retries)."""
    from audit.results import CheckResult

    try:
        return ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - one failing check never loses the others
        line = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return CheckResult(id=entry.id, check=entry.check, model=entry.model, params=entry.params,
                           status="error", error=f"Ray task failed ({line})",
                           error_type="runtime"), [], {}


def _with_models(run: Any, pool: TaskPool, infos: dict[str, Any], previous: Any,
                 options: Any) -> Any:
    """Provenance of the actor-served models (from a replica) and the summary."""
    from audit.gate import summarise

    models = dict(run.models)
    if previous is not None:
        reused = {c.model for c in run.checks if c.reused}
        models.update({a: m for a, m in previous.models.items() if a in reused})
    for alias, proxy in pool.proxies.items():
        if alias not in models:
            models[alias] = proxy.info()
    for alias, info in infos.items():
        models.setdefault(alias, info)
    synthetic = any(bool(m.details.get("synthetic")) for m in models.values())
    return run.model_copy(update={"models": models, "synthetic": synthetic,
                                  "summary": summarise(run.checks, options.fail_on)})
