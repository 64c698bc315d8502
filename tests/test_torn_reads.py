"""No torn reads: a reader polling the recommendations and messages views while the scorer
publishes run after run sees, at every poll, exactly one complete run.

The scorer runs in its own process (5 runs on tiny data, each with other parameters so that every
run has its own row count and checksum); the test process polls several times a second:
``select run_id, count(*), sum(score) from user_recommendations group by run_id`` must give one
row that equals what that run gives once published, and the rows of ``user_messages`` must be
those of one published run. The expected figures of run r are read afterwards from the same views,
in a rolled-back transaction where the runs after r are marked failed, and checked against the
run's own rows in ``recommendations`` (without the shoes the user bought).

PostgreSQL: the reader keeps one connection (like the dashboard); the scorer's rows appear at its
commit, all at once. The test counts the polls made while a publishing transaction was open (the
scorer's session had the same transaction id, with rows written, just before and just after the
poll) and requires some: reads before and after publication alone prove nothing. DuckDB: a file has
one writer process, and no other process can open it while the writer holds it: the reader opens a
short read-only connection per poll and gets either a complete run or a clean DatabaseError (the
dashboard shows "being rebuilt; try again"); the writer in turn waits while a reader holds the file.
No read can overlap a publication there, so the test requires polls refused while the writer held
the file.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import time

from scripts.db import ROOT, Database, DatabaseError
from scripts.generate_data import generate
from scripts.load import load
from scripts.score import score

RUNS = 5
BASE_PARAMS = {"factors": 2, "workers": 1, "keep_runs": 10}
POLL_SECONDS = {"postgres": 0.01, "duckdb": 0.1}  # PostgreSQL: often, to catch transactions in flight
BATCH_SIZE = 4  # customers a batch: a run writes its recommendations in 15 statements of one transaction

# publishes RUNS runs, top_n 3, 4, ... and similar_n 2, 3, ... (the first run has 2 and 1);
# opening waits while a reader holds DuckDB
WRITER = """
import sys, time
from scripts.db import Database, DatabaseError
from scripts.score import score
url, runs = sys.argv[1], int(sys.argv[2])
for run in range(runs):
    for attempt in range(400):
        try:
            db = Database(url)
            break
        except DatabaseError:
            time.sleep(0.02)
    else:
        raise SystemExit("the database stayed locked")
    with db:
        score(db, top_n=3 + run, similar_n=2 + run, factors=2, workers=1, keep_runs=10, batch_size=int(sys.argv[3]))
"""

RECOMMENDATIONS = "select run_id, count(*), sum(score) from user_recommendations group by run_id"
MESSAGES = "select user_id, message_id, kind, message_on, status, shoe_id, title, body from user_messages"


def messages_checksum(db: Database) -> tuple[int, str]:
    rows = sorted(map(repr, db.query(MESSAGES)))
    return len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()


def writing_transaction(db: Database) -> int | None:
    """The transaction id of another client session's open transaction that has written (the
    scorer's publication), else None."""
    return db.scalar(
        "select max(cast(cast(backend_xid as text) as bigint)) from pg_stat_activity"
        " where datname = current_database() and backend_type = 'client backend'"
        " and pid <> pg_backend_pid() and backend_xid is not null"
    )


def poll(db: Database) -> tuple[list[tuple], tuple[int, str]]:
    return db.query(RECOMMENDATIONS), messages_checksum(db)


def published(db: Database) -> dict[int, tuple[tuple, tuple[int, str]]]:
    """What the views show for each complete run r, when r is the newest (rolled back afterwards)."""
    expected = {}
    for (run_id,) in db.query("select run_id from model_runs where status = 'complete' order by run_id"):
        with db.transaction(rollback=True):
            db.execute("update model_runs set status = 'failed' where run_id > ?", [run_id])
            recommendations, messages = poll(db)
        assert len(recommendations) == 1 and recommendations[0][0] == run_id
        _, count, total = recommendations[0]
        # the run's own rows, without the shoes the user bought
        own_count, own_total = db.query(
            "select count(*), sum(score) from recommendations as recs where run_id = ? and not exists ("
            " select 1 from interactions as events where events.user_id = recs.user_id"
            " and events.shoe_id = recs.shoe_id and events.interaction_type = 'purchase')",
            [run_id],
        )[0]
        assert count == own_count and math.isclose(total, own_total, rel_tol=1e-9)
        expected[run_id] = ((count, total), messages)
    return expected


def is_complete(observed, expected) -> bool:
    """One run in the recommendations, with that run's figures; the messages of a published run."""
    recommendations, messages = observed
    if len(recommendations) != 1 or recommendations[0][0] not in expected:
        return False
    run_id, count, total = recommendations[0]
    want_count, want_total = expected[run_id][0]
    return (
        count == want_count
        and math.isclose(total, want_total, rel_tol=1e-9)
        and messages in {run_messages for _, run_messages in expected.values()}
    )


def test_readers_see_one_complete_run_while_runs_are_published(schema_db_url, engine, tmp_path):
    data = tmp_path / "data"
    generate(data, users=60, shoes=20, interactions=600, seed=1, progress=False)
    with Database(schema_db_url) as db:
        load(db, data, progress=False)
        db.execute(
            "update settings set reference_date = (select cast(max(occurred_at) as date) from interactions)"
        )
        first = score(db, top_n=2, similar_n=1, **BASE_PARAMS)["run_id"]
        assert db.scalar("select count(*) from user_messages") > 0
        observations = [poll(db)]  # before the writer starts: the first run

    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, schema_db_url, str(RUNS), str(BATCH_SIZE)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    locked = 0
    during = 0  # PostgreSQL: polls made while one publishing transaction stayed open
    reader = Database(schema_db_url, read_only=True) if engine == "postgres" else None
    try:
        while writer.poll() is None:
            if reader is not None:
                before = writing_transaction(reader)
                observations.append(poll(reader))
                during += before is not None and writing_transaction(reader) == before
            else:
                try:  # a short read-only connection, as the dashboard opens
                    with Database(schema_db_url, read_only=True) as short:
                        observations.append(poll(short))
                except DatabaseError:
                    locked += 1
            time.sleep(POLL_SECONDS[engine])
    finally:
        if reader is not None:
            reader.close()
        _, errors = writer.communicate(timeout=300)
    assert writer.returncode == 0, errors

    with Database(schema_db_url) as db:
        observations.append(poll(db))  # after the writer: the last run
        expected = published(db)
    assert sorted(expected) == list(range(first, first + RUNS + 1))
    assert len({figures for figures, _ in expected.values()}) == RUNS + 1, "runs must be told apart"
    torn = [observed for observed in observations if not is_complete(observed, expected)]
    seen = {observed[0][0][0] for observed in observations if observed[0]}
    print(
        f"\n{engine}: {len(observations) + locked} polls, {len(observations)} read"
        f" ({len(seen)} distinct runs seen, {during} during a publishing transaction),"
        f" {locked} clean DatabaseError (file held by the writer), {len(torn)} torn reads"
    )
    assert torn == []
    assert {first, first + RUNS} <= seen
    # reads before and after the publications alone would pass without proving anything
    if engine == "postgres":
        assert during > 0, "no poll overlapped a publishing transaction"
    else:
        assert locked > 0, "no poll came while the writer held the file"
