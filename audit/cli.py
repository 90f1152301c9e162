"""Command-line verbs; each parses its flags and calls one library function.

Exit codes (as pytest): 0 all gates passed, 1 a gate failed (or a regression), 2 a check errored,
3 internal error, 4 usage/config error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

EXIT_USAGE = 4
REPORT_LANGS = ("en", "zh")  # audit.report.i18n.LANGS (kept literal: --help imports nothing)


def _add_run(sub: Any) -> None:
    p = sub.add_parser("run", help="run a suite against a model and write results + report")
    p.add_argument("suite", help="suite YAML file or shipped suite name (see `audit list`)")
    p.add_argument("--model", help="model for the suite's `default` alias: folder, hub id, "
                   "predictions CSV, or asset (default-lm, default-encoder, dreaddit-classifier)")
    p.add_argument("--out", default="audit-out", help="output folder (default: audit-out)")
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda[:N] (default: cpu)")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="", help="comma-separated check ids to run")
    p.add_argument("--resume", action="store_true", help="reuse finished checks in --out")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--show-pii", action="store_true", help="do not redact PII in evidence")
    p.add_argument("--allow-pickle", action="store_true", help="allow pickle (.bin) weights")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the hub")
    p.add_argument("--junit", help="also write JUnit XML (one test case per gate) here")
    p.add_argument("--no-report", action="store_true", help="write results.json only")
    p.add_argument("--country", help="ISO 3166 alpha-3 code of the grid the machine draws from "
                   "(e.g. FRA, USA): CO2e is computed from its carbon intensity; without it only "
                   "energy is reported")
    p.add_argument("--no-carbon", action="store_true",
                   help="do not measure energy with codecarbon")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where checks run: this process (default) or Ray (pip install 'audit[ray]')")
    p.add_argument("--ray-address", help="with --backend ray: 'auto' joins the running cluster, "
                   "or ray://HOST:PORT; default starts a local Ray instance")
    p.add_argument("--lang", default="en",
                   help="language of report.html and model_card.md: en (default) or zh")
    _add_fail_on(p)


def _add_fail_on(p: Any) -> None:
    p.add_argument("--fail-on", action="append", choices=["critical"], default=[],
                   help="also exit 1 when any check has a critical finding (e.g. no DP guarantee)")


def _add_others(sub: Any) -> None:
    p = sub.add_parser("validate", help="check suite files without loading a model")
    p.add_argument("suites", nargs="+")
    p = sub.add_parser("list", help="list checks (name, area, needs, summary) and shipped suites")
    p.add_argument("--check", help="show one check's method card and parameters")
    p = sub.add_parser("assets", help="list the offline models/data, or prepare them")
    p.add_argument("action", nargs="?", choices=["list", "prepare"], default="list")
    p.add_argument("names", nargs="*", help="assets to prepare (default: all that need it)")
    sub.add_parser("schema", help="print the JSON Schema of results.json")
    p = sub.add_parser("gate", help="re-apply gates to a results.json (no model needed)")
    p.add_argument("results")
    p.add_argument("--suite", help="take the gates from this suite instead of the results "
                   "(a suite check absent from the results fails its gates)")
    p.add_argument("--junit", help="write JUnit XML here")
    _add_fail_on(p)
    p = sub.add_parser("compare", help="compare two results.json; exit 1 on a regression")
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument("--tolerance", type=float, default=0.0, help="absolute change allowed")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the paired tests on shared items (default 0.05)")
    p.add_argument("--no-paired", action="store_true",
                   help="ignore items.jsonl.gz; compare intervals only")
    p.add_argument("--html", help="write a side-by-side HTML comparison here")
    p.add_argument("--junit", help="write JUnit XML here")
    p.add_argument("--all", action="store_true", help="show unchanged metrics too")
    p = sub.add_parser("report", help="re-render report.html and model_card.md from results.json")
    p.add_argument("results")
    p.add_argument("--out", help="output folder (default: beside results.json)")
    p.add_argument("--show-pii", action="store_true")
    p.add_argument("--lang", default="en",
                   help="language of report.html and model_card.md: en (default) or zh")


def _add_train_dp(sub: Any) -> None:
    p = sub.add_parser("train-dp", help="fine-tune a HF model with DP-SGD (Opacus) + privacy ledger")
    try:
        from audit.dp.cli_args import add_arguments
    except ImportError:
        p.set_defaults(dp_unavailable=True)
        return
    add_arguments(p)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `audit` command."""
    parser = argparse.ArgumentParser(prog="audit", description="Responsible-AI audit harness: "
                                     "bias, fairness, privacy, explainability, DP-SGD.")
    from audit import __version__

    parser.add_argument("--version", action="version", version=f"audit {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    _add_run(sub)
    _add_others(sub)
    _add_train_dp(sub)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    """`audit run`: validate the suite, run it, write results/report/JUnit, print a summary."""
    from audit.config import load_suite
    from audit.runner import RunOptions, run_suite

    _check_lang(args.lang)
    if not args.no_carbon:
        from audit.carbon import check_country

        check_country(args.country)
    suite = load_suite(args.suite)
    options = RunOptions(out_dir=Path(args.out), model=args.model, device=args.device,
                         dtype=args.dtype, batch_size=args.batch_size, seed=args.seed,
                         resume=args.resume, quiet=args.quiet, show_pii=args.show_pii,
                         allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code,
                         only=[s for s in args.only.split(",") if s], command=_command_line(),
                         fail_on=list(args.fail_on), country=args.country,
                         carbon=not args.no_carbon and args.backend == "local",
                         backend=args.backend, ray_address=args.ray_address)
    if args.backend == "ray":
        import importlib.util

        from audit.errors import usage

        if importlib.util.find_spec("ray") is None:
            raise usage("--backend", "ray", "Ray is not installed", "pip install 'audit[ray]'")
    unknown = [i for i in options.only if suite.check_by_id(i) is None]
    if unknown:
        from audit.errors import usage

        raise usage("--only", unknown[0], f"no check with this id in {suite.path}",
                    f"use ids from the suite: {', '.join(c.id for c in suite.checks)}")
    run = run_suite(suite, options)
    if not args.no_report:
        _render(run, options.out_dir, args.show_pii, args.lang)
    if args.junit:
        from audit.junit import run_to_junit, write_junit

        write_junit(run_to_junit(run), args.junit)
    _print_summary(run, options.out_dir, args.quiet)
    usage_errors = [c.error for c in run.checks if c.error_type == "usage" and c.error]
    for message in dict.fromkeys(usage_errors):  # one line per distinct problem
        print(f"audit: error: {message.removeprefix('UsageError: ')}", file=sys.stderr)
    return run.summary.exit_code


def _check_lang(lang: str) -> None:
    """An unsupported --lang is a usage error (exit 4) before any work is done."""
    if lang not in REPORT_LANGS:
        from audit.errors import usage

        raise usage("--lang", lang, "unknown report language", f"use one of {', '.join(REPORT_LANGS)}")


def _command_line() -> str:
    return "audit " + " ".join(sys.argv[1:])


def _render(run: Any, out_dir: Path, show_pii: bool, lang: str = "en") -> None:
    try:
        from audit.report import write_report

        write_report(run, out_dir, show_pii=show_pii, lang=lang)
    except Exception as exc:  # the results are already saved; a report bug must not lose them
        print(f"audit: warning: report not rendered ({type(exc).__name__}: {exc})", file=sys.stderr)


def _print_summary(run: Any, out_dir: Path, quiet: bool) -> None:
    if run.synthetic:
        print("NOTE: a synthetic model (adapter: fake/mock) produced these results; they say "
              "nothing about a real model.")
    for check in run.checks:
        extra = check.error or check.skip_reason or ", ".join(
            f"{m.name}={m.value:.4g}" for m in check.metrics[:3] if m.value is not None)
        reused = " (reused)" if check.reused else ""
        print(f"{check.status.upper():8} {check.id + reused:<28} {extra[:110]}")
        for gate in check.gates:
            print(f"{'':8}   gate {gate.message}")
        for finding in check.findings:
            if finding.severity == "critical":
                print(f"{'':8}   CRITICAL {finding.message[:150]}")
    print("\n" + summary_line(run.summary))
    print(f"results: {out_dir / 'results.json'}")
    if (out_dir / "report.html").exists():
        print(f"report:  {out_dir / 'report.html'}")


def summary_line(s: Any) -> str:
    """``N passed, N failed, ...`` counts of a run's checks, gates and critical findings."""
    fail_on = " (--fail-on critical)" if "critical" in s.fail_on else ""
    return (f"{s.checks_passed} passed, {s.checks_failed} failed, {s.checks_reported} reported "
            f"(no gate), {s.checks_error} errored, {s.checks_skipped} skipped; gates "
            f"{s.gates_passed} passed, {s.gates_failed} failed; {s.findings_critical} critical "
            f"findings{fail_on}")


def cmd_validate(args: argparse.Namespace) -> int:
    """`audit validate`: structure, check names, params and gates of each suite; no model."""
    from audit.config import load_suite

    for path in args.suites:
        suite = load_suite(path)
        print(f"ok: {path} ({suite.name}: {len(suite.checks)} checks)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """`audit list`: checks and shipped suites (or one check's card and parameters)."""
    import json

    from audit.config import shipped_suites
    from audit.registry import all_checks, get_check

    if args.check:
        from audit.errors import usage
        from audit.registry import known_check_names

        try:
            spec = get_check(args.check)
        except KeyError:
            raise usage("audit list --check", args.check, "no such check",
                        f"use one of: {', '.join(known_check_names())}") from None
        print(f"{spec.name} ({spec.area})\n\n{spec.method.summary}\n")
        for key in ("method", "citation", "limitations"):
            print(f"{key.title()}: {getattr(spec.method, key)}\n")
        print("Parameters (JSON Schema):")
        print(json.dumps(spec.params.model_json_schema().get("properties", {}), indent=2))
        return 0
    print(f"{'check':<26} {'area':<8} {'needs':<44} summary")
    for spec in all_checks():
        needs = " or ".join("+".join(sorted(r)) for r in spec.requires) or "-"
        print(f"{spec.name:<26} {spec.area:<8} {needs[:44]:<44} {spec.summary[:80]}")
    print("\nsuites:")
    for name, path in shipped_suites().items():
        print(f"  {name:<20} {path}")
    return 0


def cmd_assets(args: argparse.Namespace) -> int:
    """`audit assets [prepare NAMES]`: list offline assets, or build/convert them into the cache."""
    from audit.assets import list_assets, prepare_all

    if args.action == "prepare":
        for name, path in prepare_all(args.names or None).items():
            print(f"ready: {name} -> {path}")
        return 0
    for row in list_assets():
        print(f"{row['kind']:<6} {row['name']:<22} {row['status']:<10} {row['description']}\n"
              f"{'':6} {'':22} {row['path']}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """`audit schema`: the JSON Schema of results.json."""
    import json

    from audit.results import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    """`audit gate`: re-apply gates to saved results; exit code as `audit run`."""
    from audit.config import load_suite
    from audit.gate import regate
    from audit.results import load_run

    run = load_run(args.results)
    entries = load_suite(args.suite, validate_params=False).checks if args.suite else None
    run = regate(run, entries, fail_on=args.fail_on or None)
    for check in run.checks:
        for gate in check.gates:
            print(f"{'PASS' if gate.passed else 'FAIL'} {check.id}: {gate.message}")
        if check.status in ("error", "skipped") and not check.gates:
            print(f"{check.status.upper()} {check.id}: {check.error or check.skip_reason}")
    if args.junit:
        from audit.junit import run_to_junit, write_junit

        write_junit(run_to_junit(run), args.junit)
    print(summary_line(run.summary))
    return run.summary.exit_code


def cmd_compare(args: argparse.Namespace) -> int:
    """`audit compare`: per-metric changes; exit 1 on a regression beyond tolerance and CI."""
    from audit.compare import compare_runs, format_table
    from audit.results import load_run

    from audit.items import verified_items

    base, new = load_run(args.base), load_run(args.new)
    items = [{} if args.no_paired else verified_items(run, Path(path).resolve().parent)
             for run, path in ((base, args.base), (new, args.new))]
    comparison = compare_runs(base, new, tolerance=args.tolerance, base_items=items[0],
                              new_items=items[1], alpha=args.alpha)
    if comparison.paired_checks:
        print(f"paired on shared items: {', '.join(comparison.paired_checks)}")
    print(format_table(comparison, show_all=args.all))
    if args.junit:
        from audit.junit import comparison_to_junit, write_junit

        write_junit(comparison_to_junit(comparison), args.junit)
    if args.html:
        from audit.io import atomic_write_text
        from audit.report import render_compare_html

        atomic_write_text(Path(args.html), render_compare_html(base, new, comparison))
    n = len(comparison.regressions)
    print(f"\n{n} regression{'s' if n != 1 else ''}" + (": " + "; ".join(
        r.label for r in comparison.regressions) if n else ""))
    return comparison.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    """`audit report`: re-render the report from results.json alone (no model)."""
    from audit.report import write_report
    from audit.results import load_run

    _check_lang(args.lang)
    run = load_run(args.results)
    out = Path(args.out) if args.out else Path(args.results).resolve().parent
    for kind, path in write_report(run, out, show_pii=args.show_pii, lang=args.lang).items():
        print(f"{kind}: {path}")
    return 0


def cmd_train_dp(args: argparse.Namespace) -> int:
    """`audit train-dp`: delegated to audit.dp.cli_args.main."""
    if getattr(args, "dp_unavailable", False):
        print("audit: error: DP training is not available in this install", file=sys.stderr)
        return EXIT_USAGE
    from audit.dp.cli_args import main as dp_main

    return int(dp_main(args) or 0)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run, "validate": cmd_validate, "list": cmd_list, "assets": cmd_assets,
    "schema": cmd_schema, "gate": cmd_gate, "compare": cmd_compare, "report": cmd_report,
    "train-dp": cmd_train_dp,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `audit` console script."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    from audit.errors import AuditError

    try:
        return COMMANDS[args.verb](args)
    except AuditError as exc:
        print(f"audit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("audit: interrupted", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("AUDIT_DEBUG"):
            raise
        print(f"audit: internal error: {type(exc).__name__}: {exc} (set AUDIT_DEBUG=1 for a "
              "traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
