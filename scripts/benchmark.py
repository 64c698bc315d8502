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
import contextlib
import datetime as dt
import importlib.util
import json
import logging
import multiprocessing
import os
import platform
import resource
import signal
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.benchmarking.changes import split as split_changes
from scripts.cli import positive_int, setup_logging
from scripts.db import ROOT, describe, engine_of, with_search_path

log = logging.getLogger(__name__)

STAGES = ("generate", "load", "score", "native", "model", "implicit", "refresh", "serve")
# serve times latency, not bulk: only when asked for (--stages ...,serve)
DEFAULT_STAGES = tuple(stage for stage in STAGES if stage != "serve")
# the stages run again on --compare-db
COMPARED_STAGES = ("load", "score", "native", "refresh")
DEFAULT_USERS = 100_000
DEFAULT_SHOES = 5_000
DEFAULT_INTERACTIONS_PER_USER = 50
DEFAULT_WORK_DIR = ROOT / "bench"
DEFAULT_DB_NAME = "benchmark.duckdb"
DEFAULT_REFRESH_CUSTOMERS = 1_000
TOP_N = 50
IMPLICIT_PARAMS = {"factors": 64, "iterations": 15, "random_state": 42}
IMPLICIT_BATCH_USERS = 10_000
MIB = 1024 * 1024

# The targets: (users at least, users at most) -> limits of the score stage
TARGETS = (
    {"users": (1, 100_000), "seconds": 60.0, "peak_gib": 4.0, "text": "up to 100,000 users"},
    {"users": (1_000_000, None), "seconds": None, "peak_gib": 8.0, "text": "1,000,000 users"},
)
# ... and of the refresh (issue 12): from this many users, at most this share of the full run's seconds
REFRESH_TARGET = {"users": 100_000, "share": 0.10}

WHAT = {
    "generate": "simulate + write the three CSV files",
    "load": "schema, validate, stage, check, merge (one transaction), reference date",
    "score": "export, fit, similarities, segments, top-50 all users, write-back, publish",
    "native": "the engine's bulk read of the CSV files, export of the matrix, write of the run's rows",
    "model": "export, fit, similarities, segments, top-50 all users; no write",
    "implicit": "export, ALS fit, recommend top-50 all users; no write",
    "refresh": "score --refresh: find the changed customers, rebuild the run's model, score, publish",
    "serve": "one customer's rows of the customer-facing views, p50 / p99 (scripts.serve_bench)",
}


class StageFailed(RuntimeError):
    """A stage raised in its child process, or the child died (killed, out of memory)."""


# ---------------------------------------------------------------------------------------------
# Measuring a stage in a child process
# ---------------------------------------------------------------------------------------------


def _peak_rss_mib(who: int) -> float:
    """ru_maxrss of this process or of its waited-for children, in MiB (Linux reports KiB)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(who).ru_maxrss * scale / MIB, 1)


def _current_rss_mib() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return round(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB, 1)
    except OSError:
        return float("nan")


def _rss_mib(pid: int) -> float:
    """Resident memory of a live process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB
    except (OSError, IndexError, ValueError):
        return 0.0


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc; just ``root`` where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return [root]
    for name in entries:
        try:
            with open(f"/proc/{name}/stat") as stat:
                # the command may hold spaces or parentheses: the fields after the last ')' are fixed
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _host_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy since boot (all cores; /proc/stat), or None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of its finished worker processes."""
    return sum(
        used.ru_utime + used.ru_stime
        for used in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def _child_main(sender, stage: str, task: dict[str, Any]) -> None:
    """Entry point of a stage's child: run it, add time and memory, send the result back."""
    setup_logging(task.get("verbose", False))
    try:
        # imports first, outside the clocks (they are in the peak memory, as in any real run)
        drivers = ["psycopg2"] if engine_of(task.get("url", "")) == "postgres" else []
        for module in STAGE_IMPORTS[stage] + drivers:
            importlib.import_module(module)
        baseline = _current_rss_mib()
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        result = STAGE_FUNCTIONS[stage](task)
        result.setdefault("seconds", round(time.perf_counter() - started, 3))
        # CPU time of every thread of the process: steadier than wall time on a busy host
        result["cpu_seconds"] = round(_cpu_seconds() - cpu_before, 3)
        result["peak_rss_mib"] = _peak_rss_mib(resource.RUSAGE_SELF)
        result["workers_peak_rss_mib"] = _peak_rss_mib(resource.RUSAGE_CHILDREN)
        result["baseline_rss_mib"] = baseline
        # everything this process and its workers used, imports included (for the share of others)
        result["process_cpu_seconds"] = round(_cpu_seconds(), 3)
        sender.send(result)
    except BaseException as exc:  # sent to the parent, which reports it
        sender.send({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
    finally:
        sender.close()


def run_stage(stage: str, task: dict[str, Any]) -> dict[str, Any]:
    """Run one stage in a fresh spawned process and return what it measured.

    While it runs, the resident memory of its process tree is sampled twice a second (the peak is
    ``tree_peak_rss_mib``); with ``task['max_rss_mib']`` the tree is killed when it goes beyond, so
    that a stage too big for the machine fails alone instead of taking the host's memory.

    Raises
    ------
    StageFailed
        The stage raised, or its process died without answering (killed for memory, by us or the OS).
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(sender, stage, task), name=f"benchmark-{stage}")
    limit = task.get("max_rss_mib")
    load_before = _load_average()
    host_before, wall_before = _host_busy_seconds(), time.perf_counter()
    process.start()
    sender.close()
    result, tree_peak, over_limit = None, 0.0, None
    try:
        while not receiver.poll(0.5):
            tree = _process_tree(process.pid)
            rss = sum(_rss_mib(pid) for pid in tree)
            tree_peak = max(tree_peak, rss)
            if limit and rss > limit:
                over_limit = rss
                for pid in tree:  # the stage's own processes only
                    _kill(pid)
                break
        else:
            result = receiver.recv()
    except EOFError:
        result = None
    finally:
        receiver.close()
        process.join()
    if over_limit is not None:
        raise StageFailed(
            f"{stage}: killed at {over_limit / 1024:.1f} GiB resident, beyond --max-rss-gib {limit / 1024:g}"
        )
    if result is None:
        code = process.exitcode
        why = f"killed by signal {-code} (out of memory?)" if code and code < 0 else f"exit code {code}"
        raise StageFailed(f"{stage}: the child process died without a result ({why})")
    if "error" in result:
        log.debug("%s", result["traceback"])
        raise StageFailed(f"{stage}: {result['error']}")
    if limit and result["peak_rss_mib"] > limit:
        # it finished between two samples: over the limit all the same
        raise StageFailed(
            f"{stage}: went to {result['peak_rss_mib'] / 1024:.2f} GiB resident, beyond --max-rss-gib"
            f" {limit / 1024:g} (it finished before it could be stopped)"
        )
    result["tree_peak_rss_mib"] = round(max(tree_peak, result["peak_rss_mib"]), 1)
    # share of the machine's cores that other processes used meanwhile (the PostgreSQL server counts
    # as "other"): 0 on a quiet host; figures taken at a high share are pessimistic
    host_after, wall = _host_busy_seconds(), time.perf_counter() - wall_before
    if host_before is not None and host_after is not None and wall > 0:
        others = max(0.0, host_after - host_before - result["process_cpu_seconds"])
        result["others_cpu_share"] = round(min(1.0, others / (_cores() * wall)), 3)
    # the host's 1-minute load average before and after: how much others competed for the cores
    result["load_average"] = [load_before[0] if load_before else None, (_load_average() or [None])[0]]
    return result


# ---------------------------------------------------------------------------------------------
# The stages (each runs in its own child process; heavy imports happen there)
# ---------------------------------------------------------------------------------------------


def _rate(rows: int, seconds: float) -> float | None:
    return round(rows / seconds, 1) if seconds and seconds > 0 else None


def stage_generate(task: dict[str, Any]) -> dict[str, Any]:
    from scripts.generate_data import generate

    started = time.perf_counter()
    counts = generate(
        task["data_dir"],
        users=task["users"],
        shoes=task["shoes"],
        interactions=task["interactions"],
        seed=task["seed"],
    )
    seconds = round(time.perf_counter() - started, 3)
    rows = counts["users"] + counts["shoes"] + counts["interactions"]
    size = sum((Path(task["data_dir"]) / name).stat().st_size for name in _CSV_FILES)
    return {
        "seconds": seconds,
        "rows": rows,
        "rows_per_second": _rate(rows, seconds),
        "counts": counts,
        "csv_mib": round(size / MIB, 1),
    }


_CSV_FILES = ("users.csv", "shoes.csv", "interactions.csv")


def stage_load(task: dict[str, Any]) -> dict[str, Any]:
    from scripts.db import Database
    from scripts.load import load
    from scripts.schema import create_schema

    parts: dict[str, float] = {}
    started = time.perf_counter()
    with Database(task["url"]) as db:
        clock = time.perf_counter()
        create_schema(db)
        parts["schema"] = round(time.perf_counter() - clock, 3)
        summary = load(db, task["data_dir"])
        parts["load"] = round(summary.seconds, 3)
        # as scripts.build does for generated data: statuses and decay as of the last interaction day
        clock = time.perf_counter()
        db.execute(
            "update settings set reference_date = (select cast(max(occurred_at) as date) from interactions)"
        )
        reference_date = db.scalar("select reference_date from settings")
        parts["reference_date"] = round(time.perf_counter() - clock, 3)
        pairs = int(db.scalar("select count(*) from interaction_matrix"))
    seconds = round(time.perf_counter() - started, 3)
    log.info("%s", summary)
    return {
        "seconds": seconds,
        "rows": summary.rows_read,
        # the loader's own clock: validation, staging, checks, merge and commit
        "rows_per_second": _rate(summary.rows_read, summary.seconds),
        "parts": parts,
        "files": {name: vars(counts) for name, counts in summary.files.items()},
        "reference_date": str(reference_date),
        "interaction_pairs": pairs,
    }


def stage_score(task: dict[str, Any]) -> dict[str, Any]:
    from scripts.db import Database
    from scripts.score import score

    started = time.perf_counter()
    with Database(task["url"]) as db:
        summary = score(db, **task.get("score_params", {}))
    seconds = round(time.perf_counter() - started, 3)
    timings = dict(summary["timings"])
    written = summary["n_recommendations"] + summary["n_similarities"] + summary["n_segment_recommendations"]
    return {
        "seconds": seconds,
        "rows": written,
        # rows of the three score tables / seconds spent inserting them
        "rows_per_second": _rate(written, timings.get("write", 0.0)),
        "parts": {name: value for name, value in timings.items() if name != "total"},
        "run_id": summary["run_id"],
        "counts": {key: summary[key] for key in summary if key.startswith("n_")},
        "parameters": _model_params(summary["parameters"]),
    }


def stage_changes(task: dict[str, Any]) -> dict[str, Any]:
    """Before the refresh: a day's delivery changing ``refresh_customers`` customers, loaded by scripts.load."""
    import shutil
    import tempfile
    from dataclasses import asdict

    from scripts.benchmarking.changes import write_changes
    from scripts.db import Database
    from scripts.load import load

    parts: dict[str, float] = {}
    delivery = Path(tempfile.mkdtemp(prefix="refresh-changes-", dir=task["data_dir"]))
    try:
        with Database(task["url"]) as db:
            clock = time.perf_counter()
            changes = write_changes(db, delivery, task["refresh_customers"], seed=task["seed"])
            parts["write"] = round(time.perf_counter() - clock, 3)
            summary = load(db, delivery, progress=False)
            parts["load"] = round(summary.seconds, 3)
    finally:
        shutil.rmtree(delivery, ignore_errors=True)
    log.info("%s", summary)
    return {
        "rows": summary.rows_read,
        "rows_per_second": _rate(summary.rows_read, summary.seconds),
        "parts": parts,
        "changes": asdict(changes),
        "files": {name: vars(counts) for name, counts in summary.files.items()},
    }


def stage_refresh(task: dict[str, Any]) -> dict[str, Any]:
    """scripts.score --refresh after the changes: the changed customers scored with the run's model."""
    from scripts.db import Database
    from scripts.refresh import refresh

    started = time.perf_counter()
    with Database(task["url"]) as db:
        summary = refresh(db)
    seconds = round(time.perf_counter() - started, 3)
    timings = dict(summary["timings"])
    return {
        "seconds": seconds,
        "rows": summary["n_recommendations"],
        "rows_per_second": _rate(summary["n_recommendations"], timings.get("write", 0.0)),
        "parts": {name: value for name, value in timings.items() if name != "total"},
        "refresh_id": summary["refresh_id"],
        "run_id": summary["run_id"],
        "n_users": summary["n_users"],
    }


# the CSV header's names for the table's columns, where they differ
_CSV_COLUMNS = {"interactions": {"timestamp": "occurred_at"}}
# the score's export of the matrix (scripts.score.read_inputs), without parsing it
_MATRIX_QUERY = (
    "select user_id, shoe_id, cast(strength as real) as strength, purchase_count > 0 as is_purchased,"
    " wishlist_count > 0 as is_wishlisted from interaction_matrix"
)


def _column_types(db, table: str) -> dict[str, str]:
    rows = db.query(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = current_schema() and table_name = ? order by ordinal_position",
        [table],
    )
    return dict(rows)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def stage_native(task: dict[str, Any]) -> dict[str, Any]:
    """The engine's own bulk paths on the benchmark's data: the yardsticks of the load and score stages."""
    import csv as csv_module

    import pyarrow  # noqa: F401 - the DuckDB export fetches Arrow

    from scripts.db import Database

    parts: dict[str, float] = {}
    counts: dict[str, int] = {}
    data_dir = Path(task["data_dir"])
    with Database(task["url"]) as db:
        # 1. typed bulk read of the three files into scratch tables (no keys: the engine's best case)
        read_rows, clock = 0, time.perf_counter()
        for table in ("users", "shoes", "interactions"):
            path = data_dir / f"{table}.csv"
            with path.open(newline="", encoding="utf-8") as handle:
                header = next(csv_module.reader(handle))
            types = _column_types(db, table)
            renames = _CSV_COLUMNS.get(table, {})
            columns = {name: types.get(renames.get(name, name), "text") for name in header}
            scratch = f"native_{table}"
            db.execute(f"drop table if exists {scratch}")
            listed = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
            if db.is_postgres:
                db.execute(f"create unlogged table {scratch} ({listed})")
                with path.open("rb") as handle, db.raw.cursor() as cur:
                    cur.copy_expert(f"copy {scratch} from stdin with (format csv, header)", handle)
            else:
                typed = ", ".join(f"{_sql_text(name)}: {_sql_text(kind)}" for name, kind in columns.items())
                db.execute(
                    f"create table {scratch} as select * from read_csv({_sql_text(str(path))}, header = true,"
                    f" columns = {{{typed}}})"
                )
            read_rows += db.scalar(f"select count(*) from {scratch}")
            db.execute(f"drop table {scratch}")
        parts["read"] = round(time.perf_counter() - clock, 3)
        counts["read_rows"] = read_rows

        # 2. raw export of the score's matrix query (bytes or Arrow, nothing parsed into frames)
        clock = time.perf_counter()
        if db.is_postgres:
            sink = _CountingSink()
            with db.raw.cursor() as cur:
                cur.copy_expert(f"copy ({_MATRIX_QUERY}) to stdout with (format csv)", sink)
            exported = sink.lines
        else:
            exported = db.raw.sql(_MATRIX_QUERY).to_arrow_table().num_rows
        parts["export"] = round(time.perf_counter() - clock, 3)
        counts["export_rows"] = int(exported)

        # 3. raw bulk write of the latest run's recommendations from a CSV file, in one transaction,
        # into a copy of the table with its key (the score stage writes the same rows)
        run_id = db.scalar("select max(run_id) from model_runs where status = 'complete'")
        written = 0
        if run_id is not None:
            rows_file = data_dir / "native_recommendations.csv"
            try:
                columns = list(_column_types(db, "recommendations"))
                listed = ", ".join(columns)
                select = f"select {listed} from recommendations where run_id = {int(run_id)}"
                db.execute("drop table if exists native_recommendations")
                if db.is_postgres:
                    with rows_file.open("wb") as handle, db.raw.cursor() as cur:
                        cur.copy_expert(f"copy ({select}) to stdout with (format csv)", handle)
                    db.execute("create table native_recommendations (like recommendations including all)")
                else:
                    db.execute(f"copy ({select}) to {_sql_text(str(rows_file))} (format csv, header false)")
                    db.execute("create table native_recommendations as select * from recommendations limit 0")
                types = _column_types(db, "native_recommendations")
                clock = time.perf_counter()
                with db.transaction():
                    if db.is_postgres:
                        with rows_file.open("rb") as handle, db.raw.cursor() as cur:
                            cur.copy_expert(
                                f"copy native_recommendations ({listed}) from stdin with (format csv)", handle
                            )
                    else:
                        typed = ", ".join(f"{_sql_text(name)}: {_sql_text(types[name])}" for name in columns)
                        db.execute(
                            f"insert into native_recommendations ({listed}) select {listed} from"
                            f" read_csv({_sql_text(str(rows_file))}, header = false, columns = {{{typed}}})"
                        )
                parts["write"] = round(time.perf_counter() - clock, 3)
                written = int(db.scalar("select count(*) from native_recommendations"))
            finally:
                db.execute("drop table if exists native_recommendations")
                rows_file.unlink(missing_ok=True)
        counts["write_rows"] = written
    return {
        "rows": read_rows,
        "rows_per_second": _rate(read_rows, parts["read"]),
        "parts": parts,
        "counts": counts,
        "rates": {
            "read": _rate(read_rows, parts["read"]),
            "export": _rate(counts["export_rows"], parts["export"]),
            "write": _rate(written, parts.get("write", 0.0)),
        },
    }


class _CountingSink:
    """A file-like target for COPY TO that keeps only the number of lines."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, data: bytes | str) -> int:
        self.lines += data.count(b"\n" if isinstance(data, bytes) else "\n")
        return len(data)


def _model_params(params: dict[str, Any]) -> dict[str, Any]:
    keys = ("top_n", "factors", "factors_used", "svd_iterations", "batch_size", "workers")
    return {key: params[key] for key in keys if key in params}


def stage_model(task: dict[str, Any]) -> dict[str, Any]:
    from scripts import model
    from scripts import score as scoring
    from scripts.db import Database

    parts: dict[str, float] = {}
    started = time.perf_counter()
    with Database(task["url"], read_only=True) as db:
        # the parameters a run would use: tuned ones stored in the database, then the defaults
        params = scoring.params_from({**scoring.stored_params(db), **task.get("score_params", {})})
        inputs = scoring.read_inputs(db)
    parts["read"] = round(time.perf_counter() - started, 3)

    clock = time.perf_counter()
    fitted = scoring.fit_model(inputs, params)
    parts["fit"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    sims = model.similar_items(fitted, params["similar_n"], params["similarity_content_weight"])
    parts["similarities"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    model.top_n(fitted.segment_scores.copy(), params["top_n"])
    parts["segments"] = round(time.perf_counter() - clock, 3)

    # every user, in the scorer's own batches and threads, rows prepared as for writing
    from tqdm import tqdm

    clock = time.perf_counter()
    rows = 0
    n_users = inputs.strength.shape[0]
    with tqdm(total=n_users, unit="user", desc="model: top-N", leave=False) as progress:
        for n_batch, frame in scoring.recommendation_batches(fitted, inputs, params, run_id=0):
            rows += len(frame)
            progress.update(n_batch)
    parts["recommend"] = round(time.perf_counter() - clock, 3)
    seconds = round(time.perf_counter() - started, 3)
    log.info(
        "model in memory: %d users x %d shoes, %d recommendations in %.1f s (%s)",
        n_users,
        inputs.strength.shape[1],
        rows,
        seconds,
        ", ".join(f"{k} {v:.1f}" for k, v in parts.items()),
    )
    return {
        "seconds": seconds,
        "rows": rows,
        "rows_per_second": None,
        "parts": parts,
        "matrix": _matrix_shape(inputs.strength),
        "n_similar_rows": int((sims.index >= 0).sum()),
        "parameters": _model_params({**params, "factors_used": int(fitted.item_factors.shape[1])}),
    }


def _matrix_shape(R) -> dict[str, int]:
    return {"users": int(R.shape[0]), "shoes": int(R.shape[1]), "nonzeros": int(R.nnz)}


def stage_implicit(task: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    from scripts import score as scoring
    from scripts.db import Database

    parts: dict[str, float] = {}
    started = time.perf_counter()
    # the same export as the scorer: interaction_matrix strengths, users x shoes
    with Database(task["url"], read_only=True) as db:
        inputs = scoring.read_inputs(db)
    R = sp.csr_matrix(inputs.strength, dtype=np.float32)
    del inputs
    parts["read"] = round(time.perf_counter() - started, 3)

    threads = int(task["threads"])
    # implicit parallelises itself; a threaded BLAS underneath only oversubscribes the cores
    with threadpool_limits(1, user_api="blas"):
        als = AlternatingLeastSquares(**IMPLICIT_PARAMS, num_threads=threads)
        clock = time.perf_counter()
        als.fit(R, show_progress=sys.stderr.isatty())
        parts["fit"] = round(time.perf_counter() - clock, 3)

        clock = time.perf_counter()
        n_users = R.shape[0]
        rows = 0
        with tqdm(total=n_users, unit="user", desc="implicit: recommend", leave=False) as progress:
            for start in range(0, n_users, IMPLICIT_BATCH_USERS):
                stop = min(start + IMPLICIT_BATCH_USERS, n_users)
                ids, _ = als.recommend(
                    np.arange(start, stop), R[start:stop], N=TOP_N, filter_already_liked_items=True
                )
                rows += int((ids >= 0).sum())
                progress.update(stop - start)
        parts["recommend"] = round(time.perf_counter() - clock, 3)
    seconds = round(time.perf_counter() - started, 3)
    import implicit

    log.info(
        "implicit %s ALS: %d users x %d shoes, %d recommendations in %.1f s (%s)",
        implicit.__version__,
        n_users,
        R.shape[1],
        rows,
        seconds,
        ", ".join(f"{k} {v:.1f}" for k, v in parts.items()),
    )
    return {
        "seconds": seconds,
        "rows": rows,
        "rows_per_second": None,
        "parts": parts,
        "matrix": _matrix_shape(R),
        "threads": threads,
        "implicit_version": implicit.__version__,
    }


# -- serve: the customer-facing views for one customer at a time (scripts/serve_bench.py) -------------
def stage_serve(task: dict[str, Any]) -> dict[str, Any]:
    """p50 / p99 per customer-facing view and protocol with concurrent clients, beside the raw lookup."""
    from scripts.serve_bench import DEFAULT_CLIENTS, DEFAULT_SECONDS, serve

    results = serve(
        task["url"], task.get("serve_clients", DEFAULT_CLIENTS), task.get("serve_seconds", DEFAULT_SECONDS)
    )
    return {"rows": None, "rows_per_second": None, "serve": results}


def _serve_lines(stages: dict[str, Any]) -> list[str]:
    from scripts.serve_bench import format_serve

    outcome = stages.get("serve")
    return ["", format_serve(outcome["serve"])] if outcome and outcome.get("serve") else []


_SCORING = ["numpy", "pandas", "scipy.sparse", "duckdb", "scripts.model", "scripts.score"]
STAGE_IMPORTS = {
    "generate": ["numpy", "scripts.generate_data"],
    "load": ["numpy", "pandas", "duckdb", "scripts.load", "scripts.schema"],
    "score": _SCORING,
    "native": ["duckdb", "pyarrow", "scripts.db"],
    "model": _SCORING + ["tqdm"],
    "implicit": _SCORING + ["implicit.cpu.als", "threadpoolctl", "tqdm"],
    "refresh": _SCORING + ["scripts.refresh"],
    "serve": ["duckdb", "scripts.serve_bench"],
    # the refresh's delivery, before it (not a stage of its own: run_stages runs it for the refresh)
    "changes": ["numpy", "pandas", "duckdb", "scripts.load", "scripts.benchmarking.changes"],
}

STAGE_FUNCTIONS = {
    "generate": stage_generate,
    "load": stage_load,
    "score": stage_score,
    "native": stage_native,
    "model": stage_model,
    "implicit": stage_implicit,
    "refresh": stage_refresh,
    "serve": stage_serve,
    "changes": stage_changes,
}


# ---------------------------------------------------------------------------------------------
# Databases: a fresh one per benchmark, cleaned up afterwards
# ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    """The database a benchmark (or one scaling size) works in, and how to clean it up."""

    url: str
    created: bool = False
    schema: str | None = None  # PostgreSQL: the fresh schema we made
    base_url: str | None = None
    files: list[Path] = field(default_factory=list)  # DuckDB: the files we made

    @property
    def engine(self) -> str:
        return engine_of(self.url)

    def drop(self) -> None:
        """Remove what was created for the benchmark (never a database it did not create)."""
        if not self.created:
            return
        if self.schema:
            from scripts.db import Database

            with Database(self.base_url) as admin:
                admin.execute(f"drop schema if exists {self.schema} cascade")
            log.info("dropped schema %s", self.schema)
        for path in self.files:
            path.unlink(missing_ok=True)


def fresh_target(db: str | None, work_dir: Path, suffix: str = "") -> Target:
    """A new, empty database: a DuckDB file, or a new schema in the PostgreSQL database of ``db``."""
    if db and engine_of(db) == "postgres":
        from scripts.db import Database

        schema = f"shoerec_bench_{uuid.uuid4().hex[:10]}"
        with Database(db) as admin:
            admin.execute(f"create schema {schema}")
        log.info("fresh schema %s in %s", schema, describe(db))
        return Target(with_search_path(db, schema), created=True, schema=schema, base_url=db)
    path = Path(db) if db else work_dir / DEFAULT_DB_NAME
    if suffix:
        path = path.with_name(f"{path.stem}-{suffix}{path.suffix}")
    wal = path.with_name(path.name + ".wal")
    if path.exists():
        if db and not suffix:
            raise SystemExit(f"{path} exists; the load stage needs a fresh database: pass a new --db path")
        path.unlink()
        wal.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Target(str(path), created=True, files=[path, wal])


def existing_target(db: str | None, work_dir: Path) -> Target:
    """The database of an earlier run (without the load stage)."""
    url = db or str(work_dir / DEFAULT_DB_NAME)
    if engine_of(url) == "duckdb" and not Path(url).exists():
        raise SystemExit(f"no database at {url}: run the load stage (or an earlier run with --keep-db)")
    return Target(url)


# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------


def machine_info(url: str | None = None) -> dict[str, Any]:
    """CPU model, cores, memory, OS, library versions, date and load average."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cores = _cores()
    versions = {"python": platform.python_version()}
    for package in ("numpy", "scipy", "pandas", "scikit-learn", "duckdb", "psycopg2-binary", "implicit"):
        versions[package] = _version(package)
    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": cores,
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
        "load_average_start": _load_average(),
    }
    if url and engine_of(url) == "postgres":
        try:
            from scripts.db import Database

            with Database(url) as db:
                info["postgresql"] = db.scalar("show server_version")
        except Exception as exc:  # the machine block should not fail the benchmark
            info["postgresql"] = f"unknown ({exc})"
    return info


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def implicit_available() -> bool:
    return importlib.util.find_spec("implicit") is not None


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


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
    task = {
        "url": target.url,
        "data_dir": str(work_dir),
        "users": args.users,
        "shoes": args.shoes,
        "interactions": args.interactions,
        "seed": args.seed,
        "threads": args.threads,
        "verbose": args.verbose,
        "max_rss_mib": args.max_rss_gib * 1024 if args.max_rss_gib else None,
        "serve_seconds": args.serve_seconds,
        "refresh_customers": args.refresh_customers,
    }
    try:
        results["stages"] = run_stages(stages, task)
        if args.compare_db:
            results["compare"] = run_compare(args, work_dir, task, stages)
        if args.scaling:
            results["scaling"] = run_scaling(args, work_dir, results["stages"].get("score"))
    finally:
        if args.keep_db:
            log.info("kept the database: %s", describe(target.url))
        else:
            target.drop()
    results["machine"]["load_average_end"] = _load_average()
    results["targets"] = check_targets(results)
    return results


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
    """Load, score and native again on ``--compare-db`` (a fresh database), from the same files."""
    target = fresh_target(args.compare_db, work_dir, suffix="compare")
    compared: dict[str, Any] = {"engine": target.engine, "database": describe(target.url)}
    try:
        compared["stages"] = run_stages(
            [stage for stage in COMPARED_STAGES if stage in stages], {**task, "url": target.url}
        )
    finally:
        if args.keep_db:
            log.info("kept the compared database: %s", describe(target.url))
        else:
            target.drop()
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
            task = {
                "url": target.url,
                "data_dir": str(data_dir),
                "users": size,
                "shoes": args.shoes,
                "interactions": round(per_user * size),
                "seed": args.seed,
                "threads": args.threads,
                "verbose": args.verbose,
                "max_rss_mib": args.max_rss_gib * 1024 if args.max_rss_gib else None,
            }
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


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets that apply to this size, with the measured score stage against them."""
    score = results["stages"].get("score")
    users = results["config"]["users"]
    if score is None:
        return []
    checks = []
    for target in TARGETS:
        low, high = target["users"]
        if users < low or (high is not None and users > high):
            continue
        if target["seconds"] is not None:
            checks.append(
                {
                    "what": f"score + write-back, {target['text']}: seconds",
                    "limit": target["seconds"],
                    "measured": score["seconds"],
                    "met": score["seconds"] <= target["seconds"],
                }
            )
        peak_gib = round(score["peak_rss_mib"] / 1024, 2)
        checks.append(
            {
                "what": f"score + write-back, {target['text']}: peak RSS GiB",
                "limit": target["peak_gib"],
                "measured": peak_gib,
                "met": peak_gib <= target["peak_gib"],
            }
        )
    refreshed = results["stages"].get("refresh")
    if refreshed and "ratio_to_score" in refreshed and users >= REFRESH_TARGET["users"]:
        checks.append(
            {
                "what": f"refresh of {refreshed['n_users']:,} changed customers / full score run, {users:,}"
                " users: share of seconds",
                "limit": REFRESH_TARGET["share"],
                "measured": refreshed["ratio_to_score"],
                "met": refreshed["ratio_to_score"] <= REFRESH_TARGET["share"],
            }
        )
    return checks


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


def _n(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}"


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _mem(mib: float | None) -> str:
    if mib is None:
        return ""
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def _parts_label(stage: str, part: str) -> str:
    labels = {
        ("score", "score"): "scoring (not overlapped)",
        ("score", "write"): "write (insert rows)",
        ("load", "load"): "load (validate..commit)",
        ("refresh", "changed"): "find changed customers",
        ("refresh", "model"): "rebuild the run's model",
        ("refresh", "read"): "read their rows",
        ("refresh", "score"): "score",
        ("refresh", "write"): "write + publish",
    }
    return labels.get((stage, part), part)


def format_report(results: dict[str, Any]) -> str:
    """The table the README quotes: machine, data, stages with their parts, comparison, targets."""
    machine, config, stages = results["machine"], results["config"], results["stages"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    lines = [
        f"Benchmark {machine['date']}",
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB RAM,"
        f" {machine['os']}",
        f"         {versions}" + (f", PostgreSQL {machine['postgresql']}" if "postgresql" in machine else ""),
        "         load average (1/5/15 min) at start {}, at end {}".format(
            machine.get("load_average_start"), machine.get("load_average_end")
        ),
    ]
    generated = stages.get("generate", {}).get("counts", {})
    interactions = generated.get("interactions", config["interactions"])
    lines.append(
        f"data: {config['users']:,} users x {config['shoes']:,} shoes, {interactions:,} interactions"
        + ("" if generated else " (requested)")
        + f"; database: {config['engine']} ({config['database']})"
    )
    matrix = (stages.get("model") or stages.get("implicit") or {}).get("matrix")
    pairs = matrix["nonzeros"] if matrix else stages.get("load", {}).get("interaction_pairs")
    if pairs:
        lines.append(f"      interaction matrix: {pairs:,} nonzero (user, shoe) pairs")
    lines.append("")

    lines += _stage_table(stages, results.get("skipped", {}))
    lines += _native_ratios(stages, config["engine"])
    compare = results.get("compare")
    if compare:
        lines += ["", f"the same files on {compare['engine']} ({compare['database']}):"]
        lines += _stage_table(compare["stages"], {})
        lines += _native_ratios(compare["stages"], compare["engine"])
        lines += _engine_ratios(config["engine"], stages, compare["engine"], compare["stages"])
    lines += _refresh_lines(stages)
    if compare and compare["stages"].get("refresh"):
        lines += _refresh_lines(compare["stages"], f" on {compare['engine']}")
    lines.append("")
    lines += _comparison(stages)
    lines += _serve_lines(stages)
    if results.get("scaling"):
        lines += [
            "",
            "scaling of the score stage (fresh data and database per size; interactions per user kept):",
            f"{'users':>12}{'seconds':>10}{'s / 1k users':>15}{'CPU s':>9}{'CPU s / 1k':>13}{'peak RSS':>11}"
            f"{'others':>8}",
        ]
        for point in results["scaling"]:
            lines.append(
                f"{point['users']:>12,}{point['seconds']:>10.1f}{point['seconds_per_1k_users']:>15.3f}"
                f"{point['cpu_seconds']:>9.1f}{point['cpu_seconds_per_1k_users']:>13.3f}"
                f"{_mem(point['peak_rss_mib']):>11}{_share(point.get('others_cpu_share')):>8}"
            )
    if results.get("targets"):
        lines += ["", "targets of the issues (score stage; refresh):"]
        for check in results["targets"]:
            lines.append(
                f"  {check['what']}: {check['measured']:g} (limit {check['limit']:g}) "
                + ("met" if check["met"] else "MISSED")
            )
    lines += [
        "",
        "peak RSS: maximum resident memory of the stage's own process (a fresh child per stage, imports",
        "included); the PostgreSQL server's memory is not counted. score: 'scoring (not overlapped)' is",
        "the time spent waiting for the scoring threads beyond the time spent writing, which overlaps it.",
        "CPU s: user + system seconds of the stage's threads and worker processes (imports excluded);",
        "others: share of the machine's cores that other processes (the PostgreSQL server included) used",
        "during the stage; seconds taken at a high share are pessimistic (CPU s are steadier).",
    ]
    return "\n".join(lines)


def _stage_table(stages: dict[str, Any], skipped: dict[str, str]) -> list[str]:
    """One line per stage (seconds, CPU, peak memory, rows, rate, others' share), then its parts."""
    lines: list[str] = []
    header = (
        f"{'stage':<28}{'seconds':>9}{'CPU s':>9}{'peak RSS':>11}{'rows':>13}{'rows/s':>11}{'others':>8}"
        "   includes"
    )
    lines += [header, "-" * len(header)]
    blank = f"{'':>9}{'':>11}"
    for stage in STAGES:
        if stage not in stages:
            if stage in skipped:
                lines.append(f"{stage:<28}{'skipped':>9}   {skipped[stage]}")
            continue
        outcome = stages[stage]
        rate = outcome.get("rows_per_second")
        lines.append(
            f"{stage:<28}{outcome['seconds']:>9.1f}{outcome.get('cpu_seconds', 0):>9.1f}"
            f"{_mem(outcome['peak_rss_mib']):>11}{_n(outcome.get('rows')):>13}{_n(rate):>11}"
            f"{_share(outcome.get('others_cpu_share')):>8}   {WHAT[stage]}"
        )
        if outcome.get("tree_peak_rss_mib", 0) > outcome["peak_rss_mib"] * 1.05:
            tree = _mem(outcome["tree_peak_rss_mib"])
            lines.append(f"{'  (with worker processes)':<28}{'':>9}{'':>9}{tree:>11}")
        for part, seconds in outcome.get("parts", {}).items():
            extra = ""
            if stage == "score" and part == "write":
                extra = f"{_n(outcome.get('rows')):>13}{_n(rate):>11}{'':>8}   rows of the three score tables"
            elif stage == "load" and part == "load":
                extra = f"{_n(outcome.get('rows')):>13}{_n(rate):>11}{'':>8}   rows read from the three files"
            lines.append(f"{'  ' + _parts_label(stage, part):<28}{seconds:>9.1f}{blank}{extra}".rstrip())
    return lines


def _refresh_lines(stages: dict[str, Any], where: str = "") -> list[str]:
    """The refresh beside the full run: what changed, how long each took, the share."""
    refreshed = stages.get("refresh")
    if not refreshed:
        return []
    lines = [
        "",
        f"refresh beside the full run{where} (python -m scripts.score --refresh, a process of its own):",
    ]
    delivery = refreshed.get("changes")
    if delivery:
        changes = delivery["changes"]
        lines.append(
            f"  the delivery: {changes['customers']:,} customers changed ({changes['existing_customers']:,}"
            f" returning with {changes['events'] - changes['events_of_new']:,} new events,"
            f" {changes['new_customers']:,} brand-new with {changes['events_of_new']:,}), loaded by"
            f" scripts.load in {delivery['parts']['load']:.1f} s (not in the refresh's seconds)"
        )
    lines.append(
        f"  refresh: {refreshed['n_users']:,} customers, {refreshed['rows']:,} rows in"
        f" {refreshed['seconds']:.2f} s (CPU {refreshed.get('cpu_seconds', 0):.1f} s)"
    )
    if "ratio_to_score" in refreshed:
        score = stages["score"]
        cpu = refreshed.get("cpu_ratio_to_score")
        lines.append(
            f"  full score stage: {score['seconds']:.1f} s (CPU {score.get('cpu_seconds', 0):.1f} s)"
            f" -> refresh / full run: {refreshed['ratio_to_score']:.1%} of the seconds"
            + (f", {cpu:.1%} of the CPU seconds" if cpu is not None else "")
        )
    else:
        lines.append("  no score stage in this run to set it beside")
    return lines


def _percent(ours: float | None, native: float | None) -> str:
    return f"{ours / native:.0%}" if ours and native else "n/a"


def _native_ratios(stages: dict[str, Any], engine: str) -> list[str]:
    """Each stage against the engine's own bulk path measured in the same run (ours / native)."""
    native = stages.get("native")
    if not native:
        return []
    rates, parts = native["rates"], native["parts"]
    read_path = "raw COPY into unlogged tables" if engine == "postgres" else "read_csv with typed columns"
    export_path = "COPY (select ...) TO STDOUT" if engine == "postgres" else "an Arrow fetch"
    write_path = "raw COPY FROM a CSV file" if engine == "postgres" else "insert from read_csv"
    lines = ["", f"against {engine}'s own bulk paths in this run (throughput, ours / native):"]
    load = stages.get("load")
    if load:
        lines.append(
            f"  load: {_n(load['rows_per_second'])} rows/s; {read_path}: {_n(rates['read'])} rows/s"
            f" -> {_percent(load['rows_per_second'], rates['read'])}"
        )
    score = stages.get("score")
    if score:
        read = score["parts"].get("read")
        lines.append(
            f"  score, read: {_n(read, 2)} s (views to arrays); {export_path} of the matrix query:"
            f" {_n(parts['export'], 2)} s -> {_percent(parts['export'], read)}"
        )
        if rates.get("write"):
            ours = score["rows_per_second"]
            lines.append(
                f"  score, write-back: {_n(ours)} rows/s; {write_path} of the run's recommendations:"
                f" {_n(rates['write'])} rows/s -> {_percent(ours, rates['write'])}"
            )
    return lines


def _engine_ratios(engine: str, stages: dict[str, Any], other: str, others: dict[str, Any]) -> list[str]:
    """The compared engine's seconds over the main engine's, stage by stage and for the score's parts."""
    lines = ["", f"{other} / {engine}, same files, same run (seconds; 1.00x = as fast):"]
    for stage in COMPARED_STAGES:
        if stage in stages and stage in others:
            mine, theirs = stages[stage]["seconds"], others[stage]["seconds"]
            lines.append(f"  {stage:<24}{theirs:>9.1f} / {mine:.1f} s = {theirs / mine:.2f}x")
    if "score" in stages and "score" in others:
        for part in ("read", "write", "score"):
            mine, theirs = stages["score"]["parts"].get(part), others["score"]["parts"].get(part)
            if mine and theirs:
                lines.append(
                    f"  {'  score, ' + part:<24}{theirs:>9.1f} / {mine:.1f} s = {theirs / mine:.2f}x"
                )
    return lines


def _comparison(stages: dict[str, Any]) -> list[str]:
    """Ours and implicit's ALS side by side, part by part."""
    ours = stages.get("model")
    als = stages.get("implicit")
    if not als or not (ours or stages.get("score")):
        return []
    if ours:
        ours_parts = ours["parts"]
        ours_fit = ours_parts["fit"] + ours_parts.get("similarities", 0) + ours_parts.get("segments", 0)
        ours_rec = ours_parts["recommend"]
        ours_read, ours_total, ours_peak = ours_parts["read"], ours["seconds"], ours["peak_rss_mib"]
        ours_cpu = ours.get("cpu_seconds", 0.0)
        source = "model stage (in memory, no write)"
    else:  # only the score stage: its parts, writing left out where it can be
        parts = stages["score"]["parts"]
        ours_fit = parts.get("fit", 0) + parts.get("similarities", 0) + parts.get("segments", 0)
        ours_rec = parts.get("score", 0)
        ours_read = parts.get("read", 0)
        ours_total = stages["score"]["seconds"]
        ours_peak = stages["score"]["peak_rss_mib"]
        ours_cpu = stages["score"].get("cpu_seconds", 0.0)
        source = "score stage (recommend = scoring not overlapped with writing)"
    used = (ours or stages["score"]).get("parameters", {})
    parts = als["parts"]
    rows = [
        ("export interaction matrix", ours_read, parts["read"]),
        ("fit", ours_fit, parts["fit"]),
        (f"top-{TOP_N} for every user", ours_rec, parts["recommend"]),
        ("fit + top-N", ours_fit + ours_rec, parts["fit"] + parts["recommend"]),
        ("whole stage", ours_total, als["seconds"]),
        ("whole stage, CPU seconds", ours_cpu, als.get("cpu_seconds", 0.0)),
    ]
    lines = [
        f"side by side on the same matrix ({als['matrix']['users']:,} x {als['matrix']['shoes']:,},"
        f" {als['matrix']['nonzeros']:,} nonzeros), seconds:",
        f"{'':<28}{'ours (hybrid)':>15}{'implicit ALS':>15}{'implicit / ours':>17}",
    ]
    for label, mine, theirs in rows:
        ratio = f"{theirs / mine:.2f}x" if mine else ""
        lines.append(f"{label:<28}{mine:>15.1f}{theirs:>15.1f}{ratio:>17}")
    lines.append(f"{'peak RSS':<28}{_mem(ours_peak):>15}{_mem(als['peak_rss_mib']):>15}")
    lines += [
        f"ours: from the {source}.",
        f"  fit = truncated SVD ({used.get('factors_used', '?')} factors, {used.get('svd_iterations', '?')}"
        " power iterations) + TF-IDF + segment cold start + the two shoe x shoe",
        "  Gram matrices + similarities + segment lists; top-N = hybrid scores, per-user scaling,",
        f"  explanations, rows prepared ({used.get('workers', '?')} threads, {used.get('batch_size', '?')}"
        " users a batch); it excludes only the shoes bought.",
        f"implicit: ALS {IMPLICIT_PARAMS['factors']} factors, {IMPLICIT_PARAMS['iterations']} iterations,"
        f" {als['threads']} threads (BLAS 1);",
        "  top-N = factor dot products, excluding every shoe the user touched.",
    ]
    return lines


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


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
