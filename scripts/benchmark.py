"""Scale benchmark: generate, load, score and write back at a given size, beside implicit's ALS.

    python -m scripts.benchmark [--users 100000] [--shoes 5000] [--interactions 5000000]
                                [--db URL] [--compare-db URL] [--work-dir bench]
                                [--stages generate,load,score,native,model,implicit,refresh]
                                [--refresh-customers 1000] [--no-implicit] [--scaling [SIZES]]
                                [--json FILE] [--keep-db]

Every stage runs in a fresh child process (multiprocessing, spawn), so the peak memory printed for a
stage is that stage's own (the maximum resident set size of its process, imports included; worker
processes of the generator are reported apart). The stages, in order:

  generate  scripts.generate_data: the three CSV files into --work-dir (its worker processes simulate).
  load      a fresh database: schema and views, scripts.load (strict, one transaction), and the
            reference date set to the last interaction day (as scripts.build does for generated data).
  score     scripts.score with its defaults: export the views, fit, shoe similarities, segment lists,
            top-50 for every user in batches, write-back of every row in one transaction, publication.
  native    the engine's own bulk paths on the same data, the yardstick of load and score: a typed
            bulk read of the three CSV files (DuckDB read_csv with the tables' column types;
            PostgreSQL raw COPY into unlogged tables), a raw export of the score's matrix query
            (COPY TO STDOUT / an Arrow fetch) and a raw bulk write of the run's recommendations from
            a CSV file (COPY FROM / read_csv into a copy of the table, keys included), one transaction.
  model     the same hybrid in memory: export, fit, similarities, segments, top-50 for every user
            (rows prepared as for writing), nothing written; score minus model ~ the database's share.
  implicit  implicit's AlternatingLeastSquares (64 factors, 15 iterations, random_state 42) on the
            same interaction matrix: export, fit, recommend N=50 for every user with
            filter_already_liked_items=True, in batches; nothing written. Needs
            `pip install -r requirements-bench.txt`; skipped with a message when missing.
  refresh   python -m scripts.score --refresh beside the full run: first (in a process of its own,
            outside the clock) a day's delivery changing --refresh-customers customers, 80% returning
            customers with 1-3 new events and 20% brand-new ones with an event or two, loaded by
            scripts.load as an addition (users.csv of the new customers, interactions.csv of the new
            events); then the refresh of the latest run: the changed customers found, the run's model
            rebuilt from its stored state, their lists scored and published. The report sets its
            seconds beside the score stage's (the issue's target: under 10% of a full run at 100,000
            customers). Last of the bulk stages: it adds events, and the stages before it measure the
            data the score stage scored.
  serve     scripts.serve_bench on the scored database: one customer's top 10 of user_recommendations,
            user_messages and replacement_suggestions with 4 concurrent clients, simple and prepared
            protocols (pgbench on PostgreSQL), p50 / p99 beside the raw indexed lookup of the same top 10
            (--serve-seconds per query and protocol). Only when named in --stages: it times latency.

--compare-db URL loads the same files into a second database (say PostgreSQL beside the default
DuckDB) and runs load, score and native there too, so that the report sets the engines side by side
(the score stage's ratio between them) from one run.

--scaling generates, loads and scores smaller data sets (same shoes, interactions per user kept) and
prints the score stage's seconds per 1,000 users at each size: cost should grow linearly with users.

--db: default a fresh DuckDB file bench/benchmark.duckdb (git-ignored; deleted at the end unless
--keep-db). With a postgresql:// URI the benchmark creates a fresh schema in that database and drops
it at the end (unless --keep-db). The PostgreSQL server's own memory is not in the figures. Without
the load stage, --db must already hold loaded data (e.g. a database kept with --keep-db), and the
generated files are read from --work-dir when the generate stage is left out.

Timings on a shared machine vary. Beside wall seconds each stage reports its CPU seconds (all its
threads) and the share of the cores that other processes used meanwhile (from /proc/stat; the
PostgreSQL server counts as other): read a stage's seconds together with that share. --max-rss-gib
kills a stage whose processes go beyond a memory limit, so a size too big for the machine fails
alone, reported, instead of starving the host.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from scripts.benchmarking.changes import split as split_changes
from scripts.benchmarking.databases import DEFAULT_DB_NAME, Target, existing_target, fresh_target
from scripts.benchmarking.machine import machine_info
from scripts.benchmarking.process import StageFailed, load_average, run_stage
from scripts.benchmarking.report import check_targets, format_report
from scripts.benchmarking.stages import COMPARED_STAGES, DEFAULT_STAGES, STAGES
from scripts.cli import positive_int, setup_logging
from scripts.db import ROOT, describe, engine_of

# This module is the command line and the order of a run; the pieces (measuring a stage in its own
# process, the stages, the databases, the report) are in scripts/benchmarking/.
log = logging.getLogger(__name__)

__all__ = ["DEFAULT_DB_NAME", "StageFailed", "build_parser", "main", "run", "scaling_sizes"]

DEFAULT_USERS = 100_000
DEFAULT_SHOES = 5_000
DEFAULT_INTERACTIONS_PER_USER = 50
DEFAULT_WORK_DIR = ROOT / "bench"
DEFAULT_REFRESH_CUSTOMERS = 1_000


def implicit_available() -> bool:
    return importlib.util.find_spec("implicit") is not None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every requested stage, then the scaling series; returns the results (what --json writes)."""
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    stages = [stage for stage in STAGES if stage in args.stages]
    skipped: dict[str, str] = {}
    if "implicit" in stages and not args.implicit:
        stages.remove("implicit")
        skipped["implicit"] = "--no-implicit"
    if "implicit" in stages and not implicit_available():
        stages.remove("implicit")
        skipped["implicit"] = "implicit is not installed (pip install -r requirements-bench.txt)"
        log.warning("skipping the implicit comparison: %s", skipped["implicit"])

    if "load" in stages:
        target = fresh_target(args.db, work_dir)
    elif set(stages) & {"score", "model", "implicit", "refresh", "serve"}:
        target = existing_target(args.db, work_dir)
    else:  # generating only
        target = Target(args.db or str(work_dir / DEFAULT_DB_NAME))
    results: dict[str, Any] = {
        "machine": machine_info(target.url),
        "config": {
            "users": args.users,
            "shoes": args.shoes,
            "interactions": args.interactions,
            "seed": args.seed,
            "engine": target.engine,
            "database": describe(target.url),
            "work_dir": str(work_dir),
            "stages": stages,
            "threads": args.threads,
        },
        "stages": {},
        "skipped": skipped,
    }
    task = stage_task(args, target.url, work_dir, args.users, args.interactions)
    try:
        results["stages"] = run_stages(stages, task)
        if args.compare_db:
            results["compare"] = run_compare(args, work_dir, task, stages)
        if args.scaling:
            results["scaling"] = run_scaling(args, work_dir, results["stages"].get("score"))
    finally:
        target.release(keep=args.keep_db)
    results["machine"]["load_average_end"] = load_average()
    results["targets"] = check_targets(results)
    return results


def stage_task(
    args: argparse.Namespace, url: str, data_dir: Path, users: int, interactions: int
) -> dict[str, Any]:
    """What a stage's process is given: the database, the data folder, the sizes and the options."""
    return {
        "url": url,
        "data_dir": str(data_dir),
        "users": users,
        "shoes": args.shoes,
        "interactions": interactions,
        "seed": args.seed,
        "threads": args.threads,
        "verbose": args.verbose,
        "max_rss_mib": args.max_rss_gib * 1024 if args.max_rss_gib else None,
        "serve_seconds": args.serve_seconds,
        "refresh_customers": args.refresh_customers,
    }


def run_stages(stages: list[str], task: dict[str, Any]) -> dict[str, Any]:
    """Each stage in its own process, in order; the refresh after its delivery, set beside the score."""
    engine = engine_of(task["url"])
    outcomes: dict[str, Any] = {}
    for stage in stages:
        log.info("stage %s on %s ...", stage, engine)
        changes = run_stage("changes", task) if stage == "refresh" else None
        outcomes[stage] = outcome = run_stage(stage, task)
        if changes is not None:
            outcome["changes"] = changes
        log.info(
            "stage %s on %s: %.1f s, peak RSS %.0f MiB",
            stage,
            engine,
            outcome["seconds"],
            outcome["peak_rss_mib"],
        )
    if "refresh" in outcomes and "score" in outcomes:
        refreshed, full = outcomes["refresh"], outcomes["score"]
        refreshed["score_seconds"] = full["seconds"]
        refreshed["ratio_to_score"] = round(refreshed["seconds"] / full["seconds"], 4)
        if full.get("cpu_seconds"):
            refreshed["cpu_ratio_to_score"] = round(refreshed["cpu_seconds"] / full["cpu_seconds"], 4)
    return outcomes


def run_compare(
    args: argparse.Namespace, work_dir: Path, task: dict[str, Any], stages: list[str]
) -> dict[str, Any]:
    """Load, score, native and refresh again on ``--compare-db`` (a fresh database), from the same files."""
    target = fresh_target(args.compare_db, work_dir, suffix="compare")
    compared: dict[str, Any] = {"engine": target.engine, "database": describe(target.url)}
    try:
        compared["stages"] = run_stages(
            [stage for stage in COMPARED_STAGES if stage in stages], {**task, "url": target.url}
        )
    finally:
        target.release(keep=args.keep_db)
    return compared


def scaling_sizes(spec: str, users: int) -> list[int]:
    """``auto`` -> a quarter, half and all of ``users``; else a comma list of user counts."""
    if spec == "auto":
        sizes = [max(1, users // 4), max(1, users // 2), users]
    else:
        sizes = [int(part) for part in spec.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--scaling: expected user counts >= 1, got {spec!r}")
    return sorted(set(sizes))


def run_scaling(args: argparse.Namespace, work_dir: Path, full_score: dict | None) -> list[dict[str, Any]]:
    """The score stage at several user counts (fresh data and database each; interactions per user kept)."""
    series = []
    per_user = args.interactions / args.users
    for size in scaling_sizes(args.scaling, args.users):
        generated = loaded = None
        if size == args.users and full_score is not None:
            outcome = full_score  # the main run already measured this size
        else:
            data_dir = work_dir / f"scaling-{size}"
            target = fresh_target(args.db, work_dir, suffix=f"scaling-{size}")
            task = stage_task(args, target.url, data_dir, size, round(per_user * size))
            try:
                log.info("scaling: %d users (generate, load, then score)", size)
                generated = run_stage("generate", task)
                loaded = run_stage("load", task)
                outcome = run_stage("score", task)
            finally:
                target.drop()
        series.append(
            {
                "users": size,
                "seconds": outcome["seconds"],
                "seconds_per_1k_users": round(outcome["seconds"] / size * 1000, 4),
                "cpu_seconds": outcome["cpu_seconds"],
                "cpu_seconds_per_1k_users": round(outcome["cpu_seconds"] / size * 1000, 4),
                "peak_rss_mib": outcome["peak_rss_mib"],
                "load_average": outcome.get("load_average"),
                "others_cpu_share": outcome.get("others_cpu_share"),
                "parts": outcome.get("parts", {}),
                # how the data set was made, for the record (None: the main run's stages)
                "generate": _brief(generated),
                "load": _brief(loaded),
            }
        )
        log.info(
            "scaling: %d users scored in %.1f s (%.3f s per 1k users), peak RSS %.0f MiB",
            size,
            outcome["seconds"],
            series[-1]["seconds_per_1k_users"],
            outcome["peak_rss_mib"],
        )
    return series


def _brief(outcome: dict | None) -> dict | None:
    if outcome is None:
        return None
    keys = ("seconds", "cpu_seconds", "peak_rss_mib", "rows", "rows_per_second")
    return {key: outcome.get(key) for key in keys}


def _stages(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(names) - set(STAGES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.benchmark",
        description=(__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--users", type=positive_int, default=DEFAULT_USERS, help="users to generate (default: %(default)s)"
    )
    parser.add_argument(
        "--shoes", type=positive_int, default=DEFAULT_SHOES, help="shoes to generate (default: %(default)s)"
    )
    parser.add_argument(
        "--interactions",
        type=positive_int,
        default=None,
        help=f"interactions to generate, about (default: {DEFAULT_INTERACTIONS_PER_USER} per user,"
        f" {DEFAULT_INTERACTIONS_PER_USER * DEFAULT_USERS} for {DEFAULT_USERS} users)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the generator (default: %(default)s)")
    parser.add_argument(
        "--db",
        default=None,
        help="a DuckDB file path (must not exist when loading) or a postgresql:// URI (a fresh schema"
        f" is made in it); default: a fresh {DEFAULT_DB_NAME} in --work-dir",
    )
    parser.add_argument(
        "--compare-db",
        default=None,
        metavar="URL",
        help="also load, score and run native on this database (a fresh DuckDB file path or a schema in a"
        " postgresql:// database) from the same files, and print the ratio of the engines",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=DEFAULT_WORK_DIR,
        help="where the generated CSV files (and the default database) go (default: bench/, git-ignored)",
    )
    parser.add_argument(
        "--stages",
        type=_stages,
        default=list(DEFAULT_STAGES),
        metavar="LIST",
        help=f"comma list of stages to run, in this order: {','.join(STAGES)} (default: all but serve)",
    )
    parser.add_argument(
        "--refresh-customers",
        type=positive_int,
        default=DEFAULT_REFRESH_CUSTOMERS,
        metavar="N",
        help="refresh stage: customers changed before it, a fifth of them brand-new (default: %(default)s)",
    )
    parser.add_argument(
        "--implicit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the implicit ALS comparison (default: yes, skipped with a message if not installed)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        help="threads of implicit's ALS (default: the available cores, %(default)s)",
    )
    parser.add_argument(
        "--scaling",
        nargs="?",
        const="auto",
        default=None,
        metavar="SIZES",
        help="also score at several user counts, e.g. 25000,50000,100000 (alone: a quarter, half and"
        " all of --users) and print seconds per 1k users at each",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON"
    )
    parser.add_argument(
        "--max-rss-gib",
        type=float,
        default=None,
        metavar="GIB",
        help="kill a stage whose processes hold more than this much resident memory (default: no limit)",
    )
    parser.add_argument(
        "--serve-seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="serve stage: seconds per query and protocol, 4 clients (default: %(default)s)",
    )
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the benchmark database (default: delete it at the end)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.interactions is None:
        args.interactions = DEFAULT_INTERACTIONS_PER_USER * args.users
    if "refresh" in args.stages:
        _, returning = split_changes(args.refresh_customers)
        if returning > args.users:
            parser.error(
                f"--refresh-customers {args.refresh_customers}: {returning:,} of them are existing customers,"
                f" more than --users {args.users:,}"
            )
    if args.scaling:
        try:
            scaling_sizes(args.scaling, args.users)
        except ValueError as exc:
            parser.error(str(exc))
    started = time.perf_counter()
    try:
        results = run(args)
    except StageFailed as exc:
        log.error("benchmark stopped: %s", exc)
        return 1
    report = format_report(results)
    print(report, flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        log.info("results written to %s", args.json)
    missed = [check["what"] for check in results["targets"] if not check["met"]]
    log.info(
        "benchmark done in %.0f s: %s%s",
        time.perf_counter() - started,
        ", ".join(f"{name} {outcome['seconds']:.1f} s" for name, outcome in results["stages"].items()),
        f"; targets missed: {'; '.join(missed)}" if missed else "",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
