"""Serving benchmark: one customer's rows of the customer-facing views, as a web shop reads them.

    python -m scripts.serve_bench --db URL [--clients 4] [--seconds 10] [--json FILE]

Per query below, ``--clients`` concurrent clients each run it for ``--seconds`` for a random customer
(user_id drawn uniformly from the users table), with the simple protocol (the SQL text with the id,
planned every time) and with the prepared one (planned once per connection, then executed), and the
latency of every query is kept: the report gives p50 and p99 in milliseconds (after an untimed warm-up
a quarter as long). The raw indexed lookup (the same top 10 straight from ``recommendations`` by its
key, for the latest run) is measured in the same run, so the views are read as a ratio to it (the
machine is shared: ratios within one run only).
On PostgreSQL the customer views serve their read model (sql/serving.sql): the report says whether it
was fresh, and also times the live functions a customer marked stale is served from (``live: ...``).

PostgreSQL runs pgbench (``-M simple`` / ``-M prepared``, a log of every transaction); without pgbench,
and on DuckDB (the dashboard's engine), a pool of Python threads, one connection (cursor) each, sends
the literal SQL (simple) or a statement with a bound parameter (prepared).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from scripts.cli import setup_logging
from scripts.db import Database, describe, engine_of

log = logging.getLogger(__name__)

DEFAULT_CLIENTS = 4
DEFAULT_SECONDS = 10.0
PROTOCOLS = ("simple", "prepared")
WARM_UP_SHARE = 0.25  # of --seconds, run before each timed query and protocol and not kept
PGBENCH_CANDIDATES = ("pgbench", "/usr/lib/postgresql/15/bin/pgbench")

# name -> the query for one customer (:uid is the customer; :run the latest complete run)
QUERIES = {
    "raw recommendations lookup": (
        "select run_id, user_id, rank, shoe_id, score from recommendations"
        " where run_id = :run and user_id = :uid and rank <= 10 order by rank"
    ),
    "user_recommendations top 10": (
        "select * from user_recommendations where user_id = :uid order by rank limit 10"
    ),
    "user_messages": "select * from user_messages where user_id = :uid",
    "replacement_suggestions": "select * from replacement_suggestions where user_id = :uid",
}
RAW = "raw recommendations lookup"
# PostgreSQL: the same customers computed live, as the views serve a customer marked stale (or everyone while
# the read model is being rebuilt): the function each view calls then (sql/macros.sql, read_model_select)
LIVE_QUERIES = {
    "live: user_recommendations": (
        "select * from live_user_recommendations_for(:uid) order by rank limit 10"
    ),
    "live: user_messages": "select * from live_user_messages_for(:uid)",
    "live: replacement_suggestions": "select * from live_replacement_suggestions_for(:uid)",
}


def queries_for(engine: str) -> dict[str, str]:
    """What the serve stage measures on ``engine`` (DuckDB has no read model: no live queries apart)."""
    return {**QUERIES, **(LIVE_QUERIES if engine == "postgres" else {})}


def percentile(values: list[float], share: float) -> float | None:
    """The ``share`` quantile (0..1) of ``values``, nearest rank; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))
    return ordered[index]


def summarise(latencies_ms: list[float], seconds: float) -> dict[str, Any]:
    return {
        "queries": len(latencies_ms),
        "qps": round(len(latencies_ms) / seconds, 1) if seconds > 0 else None,
        "p50_ms": _round(percentile(latencies_ms, 0.50)),
        "p99_ms": _round(percentile(latencies_ms, 0.99)),
        "mean_ms": _round(statistics.fmean(latencies_ms)) if latencies_ms else None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def pgbench_path() -> str | None:
    for candidate in PGBENCH_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _pg_conninfo(url: str) -> tuple[list[str], dict[str, str]]:
    """pgbench's connection options and environment for a libpq URI (search_path through PGOPTIONS)."""
    parts = urlparse(url)
    args = []
    if parts.hostname:
        args += ["-h", parts.hostname]
    if parts.port:
        args += ["-p", str(parts.port)]
    if parts.username:
        args += ["-U", unquote(parts.username)]
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    options = parse_qs(parts.query).get("options")
    if options:
        env["PGOPTIONS"] = options[0]
    args.append(unquote(parts.path.lstrip("/")) or "postgres")
    return args, env


def run_pgbench(
    url: str, sql: str, protocol: str, users: tuple[int, int], run_id: int, clients: int, seconds: float
) -> dict[str, Any]:
    """One query for ``seconds`` with pgbench; latencies from its per-transaction log."""
    conn_args, env = _pg_conninfo(url)
    with tempfile.TemporaryDirectory(prefix="serve_bench_") as work:
        script = Path(work) / "query.sql"
        script.write_text(
            f"\\set uid random({users[0]}, {users[1]})\n\\set run {run_id}\n{sql};\n", encoding="utf-8"
        )
        command = [
            pgbench_path(), "-n", "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(max(1, round(seconds))),
            "-M", protocol, "-f", str(script), "-l", "--log-prefix", str(Path(work) / "log"),
        ] + conn_args  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        latencies = []
        for log_file in Path(work).glob("log*"):
            for line in log_file.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 3:
                    latencies.append(int(fields[2]) / 1000.0)  # microseconds
    return summarise(latencies, seconds)


def run_threads(
    url: str, sql: str, protocol: str, users: tuple[int, int], run_id: int, clients: int, seconds: float
) -> dict[str, Any]:
    """One query for ``seconds`` from ``clients`` Python threads, one connection each."""
    engine = engine_of(url)
    placeholder = "%s" if engine == "postgres" else "?"
    statement = sql.replace(":run", str(run_id))
    prepared_sql = statement.replace(":uid", placeholder)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients)

    def client(number: int) -> None:
        rng = random.Random(number)
        try:
            if engine == "postgres":
                import psycopg2

                connection = psycopg2.connect(url)
                connection.autocommit = True
                cursor = connection.cursor()
                if protocol == "prepared":
                    cursor.execute(f"prepare serve_query(bigint) as {statement.replace(':uid', '$1')}")
            else:
                import duckdb

                connection = duckdb.connect(url, read_only=True)
                cursor = connection.cursor()
            barrier.wait()
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                uid = rng.randint(*users)
                started = time.perf_counter()
                if protocol == "simple":
                    cursor.execute(statement.replace(":uid", str(uid)))
                elif engine == "postgres":
                    cursor.execute("execute serve_query(%s)", (uid,))
                else:
                    cursor.execute(prepared_sql, (uid,))
                cursor.fetchall()
                latencies[number].append((time.perf_counter() - started) * 1000.0)
            connection.close()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]}")
    return summarise([value for per_client in latencies for value in per_client], seconds)


def serve(
    url: str,
    clients: int = DEFAULT_CLIENTS,
    seconds: float = DEFAULT_SECONDS,
    use_pgbench: bool = True,
    analyze: bool = True,
) -> dict[str, Any]:
    """p50 / p99 of every query in QUERIES with both protocols; results keyed by query, then protocol.
    ``analyze``: on PostgreSQL, analyse first (the planner's statistics as after a daily load)."""
    engine = engine_of(url)
    with Database(url, read_only=engine == "duckdb") as db:
        users = (
            int(db.scalar("select min(user_id) from users")),
            int(db.scalar("select max(user_id) from users")),
        )
        run_id = db.scalar("select run_id from latest_model_run")
        if engine == "postgres" and analyze:
            db.execute("analyze")  # the planner's statistics as after any daily load
    if run_id is None:
        raise RuntimeError("no complete scoring run to serve")
    tool = "pgbench" if engine == "postgres" and use_pgbench and pgbench_path() else "threads"
    runner = run_pgbench if tool == "pgbench" else run_threads
    results: dict[str, Any] = {
        "engine": engine,
        "tool": tool,
        "clients": clients,
        "seconds": seconds,
        "users": users,
        "queries": {},
    }
    if engine == "postgres":
        with Database(url) as db:
            results["read_model_fresh"] = bool(db.scalar("select serving_is_fresh()"))
    for name, sql in queries_for(engine).items():
        results["queries"][name] = {}
        for protocol in PROTOCOLS:
            log.info("serve: %s, %s protocol, %d clients, %g s ...", name, protocol, clients, seconds)
            # a warm-up, not kept: the first reads of a table larger than the cache (the raw lookup runs
            # first) would otherwise be timed as its latency
            runner(url, sql, protocol, users, int(run_id), clients, seconds * WARM_UP_SHARE)
            measured = runner(url, sql, protocol, users, int(run_id), clients, seconds)
            results["queries"][name][protocol] = measured
            log.info(
                "serve: %s %s: p50 %s ms, p99 %s ms", name, protocol, measured["p50_ms"], measured["p99_ms"]
            )
    return results


def format_serve(results: dict[str, Any]) -> str:
    """The table the README quotes: p50 / p99 per query and protocol, and the ratio to the raw lookup."""
    raw = results["queries"].get(RAW, {})
    lines = [
        f"serving one customer ({results['engine']}, {results['tool']}, {results['clients']} clients,"
        f" {results['seconds']:g} s per query and protocol,"
        f" user_id {results['users'][0]}..{results['users'][1]}"
        + {True: ", read model fresh", False: ", read model STALE: every customer computed live"}.get(
            results.get("read_model_fresh"), ""
        )
        + "):",
        f"{'query':<30}{'protocol':>10}{'queries':>9}{'p50 ms':>9}{'p99 ms':>9}{'p99 / raw':>11}",
    ]
    for name, by_protocol in results["queries"].items():
        for protocol, measured in by_protocol.items():
            base = (raw.get(protocol) or {}).get("p99_ms")
            ratio = f"{measured['p99_ms'] / base:.1f}x" if base and measured["p99_ms"] is not None else "-"
            lines.append(
                f"{name:<30}{protocol:>10}{measured['queries']:>9}{_fmt(measured['p50_ms']):>9}"
                f"{_fmt(measured['p99_ms']):>9}{ratio:>11}"
            )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.serve_bench",
        description=(__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--db", default=os.environ.get("SHOEREC_DB"), help="a scored database (URI or DuckDB path)"
    )
    parser.add_argument(
        "--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent clients (%(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=DEFAULT_SECONDS, help="per query and protocol (%(default)s)"
    )
    parser.add_argument("--no-pgbench", action="store_true", help="on PostgreSQL, Python threads instead")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not args.db:
        parser.error("--db (or SHOEREC_DB) is required")
    log.info("serving benchmark on %s", describe(args.db))
    results = serve(args.db, args.clients, args.seconds, use_pgbench=not args.no_pgbench)
    print(format_serve(results), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
