"""The daily after-sale job (scripts/notify.py), on DuckDB and PostgreSQL.

A hand-made world, reference date 2024-06-15 (care: the seeded leather schedule, first reminder after
30 days; shoe 1 lasts 100 days, so its window opens after 85):

    user 1  Europe/Berlin, email opt-in    a leather pair bought 2024-05-16: care due today
    user 2  opted out (email)              the same: suppressed, no_consent
    user 3  Europe/London, email opt-in    shoe 1 bought 2024-03-22 (window opens today) and a
                                           leather pair: replacement today, care deferred
    user 4  America/New_York, sms opt-in   care due today (06:00 local at 10:00 UTC: quiet hours)
    user 5  Europe/Berlin, email opt-in    four leather pairs, reminders due today and 1-3 days ago

The view's rules have their cases in tests/sql/message_candidates; here: the job around them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import signal
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from helpers import assert_every_kill_point_passes, built_url, run_killed

from scripts import notify as notify_module
from scripts.contacts import load_contacts, unsubscribe
from scripts.db import Database
from scripts.notify import FileSink, WebhookSink, is_quiet, notify, render, sandbox
from scripts.schema import create_schema

REF = dt.date(2024, 6, 15)
DAYTIME = dt.datetime(2024, 6, 15, 13, 0)  # Berlin 15:00, London 14:00, New York 09:00
NY_NIGHT = dt.datetime(2024, 6, 15, 10, 0)  # New York 06:00: quiet; Berlin 12:00, London 11:00


def days_ago(k: int) -> dt.datetime:
    return dt.datetime.combine(REF - dt.timedelta(days=k), dt.time(10))


def build_world(db: Database) -> None:
    create_schema(db)
    db.execute("update settings set reference_date = ?", [REF])
    db.insert_df("users", pd.DataFrame({"user_id": [1, 2, 3, 4, 5], "primary_usage": ["running"] * 5}))
    shoes = [(1, "Old Runner", "running", "rubber", 100)] + [
        (shoe_id, f"Oxford {shoe_id}", "oxford", "leather", 1000) for shoe_id in (2, 3, 4, 5)
    ]
    frame = pd.DataFrame(shoes, columns=["shoe_id", "name", "type", "material", "lifespan_days"])
    db.insert_df("shoes", frame.assign(brand="Stride", color="black", price=99.0))
    purchases = [(1, 2, 30), (2, 2, 30), (3, 1, 85), (3, 2, 30), (4, 2, 30)]
    purchases += [(5, shoe_id, 30 + k) for k, shoe_id in enumerate((2, 3, 4, 5))]
    db.insert_df(
        "interactions",
        pd.DataFrame(
            [(user, shoe, "purchase", days_ago(k)) for user, shoe, k in purchases],
            columns=["user_id", "shoe_id", "interaction_type", "occurred_at"],
        ),
    )
    given = dt.datetime(2024, 1, 1)
    preferences = [
        (1, "email", "c1@example.com", True, "Europe/Berlin", given),
        (2, "email", "c2@example.com", True, None, given),
        (2, "email", "c2@example.com", False, None, dt.datetime(2024, 2, 1)),
        (3, "email", "c3@example.com", True, "Europe/London", given),
        (4, "sms", "+15550004", True, "America/New_York", given),
        (5, "email", "c5@example.com", True, "Europe/Berlin", given),
    ]
    frame = pd.DataFrame(
        preferences, columns=["user_id", "channel", "address", "is_opted_in", "time_zone", "updated_at"]
    )
    db.insert_df("contact_preferences", frame.assign(purpose="marketing", source="test", recorded_at=given))


@pytest.fixture
def world(engine, request, tmp_path):
    """build_world's database on each engine in turn (a copy of the session's one: see built_url)."""
    with Database(built_url(engine, request, tmp_path, build_world)) as database:
        yield database


def outbox(db: Database) -> dict[str, tuple]:
    """key -> (status, reason, channel, sent_on) of every outbox row."""
    rows = db.query("select idempotency_key, status, reason, channel, sent_on from notifications")
    return {key: tuple(rest) for key, *rest in rows}


def table_digest(db: Database, table: str) -> str:
    return hashlib.sha256(
        "\n".join(sorted(map(repr, db.query(f"select * from {table}")))).encode()
    ).hexdigest()


def journal_keys(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [
        json.loads(line)["idempotency_key"] for line in path.read_text(encoding="utf-8").splitlines() if line
    ]


# -- pure parts -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("utc", "zone", "quiet"),
    [
        (dt.datetime(2024, 6, 15, 19, 0), "Europe/Berlin", True),  # 21:00 CEST: quiet from 21
        (dt.datetime(2024, 6, 15, 18, 59), "Europe/Berlin", False),  # 20:59
        (dt.datetime(2024, 6, 15, 6, 0), "Europe/Berlin", False),  # 08:00: quiet until 8
        (dt.datetime(2024, 6, 15, 5, 59), "Europe/Berlin", True),  # 07:59
        (dt.datetime(2024, 1, 15, 7, 30), "Europe/Berlin", False),  # 08:30 CET (winter, +1)
        (dt.datetime(2024, 6, 15, 10, 0), "America/New_York", True),  # 06:00 EDT
        (dt.datetime(2024, 6, 15, 13, 0), "Asia/Tokyo", True),  # 22:00 JST
        (dt.datetime(2024, 6, 15, 13, 0), None, False),  # UTC 13:00
        (dt.datetime(2024, 6, 15, 23, 0), "Not/AZone", True),  # unknown: UTC 23:00
    ],
)
def test_quiet_hours_are_local(utc, zone, quiet):
    assert is_quiet(utc, zone, 21, 8) is quiet


def test_quiet_hours_within_a_day_and_none():
    assert is_quiet(dt.datetime(2024, 6, 15, 13), None, 12, 14)
    assert not is_quiet(dt.datetime(2024, 6, 15, 14), None, 12, 14)
    assert not is_quiet(dt.datetime(2024, 6, 15, 3), None, 8, 8)


def test_templates_render_in_a_sandbox():
    env = sandbox()
    subject, body = render(env, "{{ title }}", "{{ name }}: {{ suggestions[0].name }}", {
        "title": "Hi", "name": "<b>Runner</b>", "suggestions": [{"name": "Pace"}],
    })  # fmt: skip
    assert (subject, body) == ("Hi", "<b>Runner</b>: Pace")  # plain text: nothing escaped, nothing run
    with pytest.raises(Exception, match="unsafe|not safely callable|access"):
        render(env, "{{ ''.__class__.__mro__[1].__subclasses__() }}", "", {})


# -- enqueue, consent, idempotency ------------------------------------------------------------------
def test_twice_the_same_day_is_one_outbox(world, tmp_path):
    db = world
    sink_path = tmp_path / "out" / "messages.jsonl"
    first = notify(db, sink=FileSink(sink_path), now=DAYTIME)
    assert (first.candidates, first.queued, dict(first.suppressed), dict(first.deferred)) == (
        9,
        4,
        {"no_consent": 1},
        {"daily_limit": 4},
    )
    assert first.candidates == first.queued + sum(first.suppressed.values()) + first.expired + sum(
        first.deferred.values()
    )
    assert first.sent == 4
    digest = {
        table: table_digest(db, table)
        for table in ("notifications", "notification_suggestions", "unsubscribe_tokens")
    }
    again = notify(db, sink=FileSink(sink_path), now=DAYTIME)
    assert (again.queued, again.sent, sum(again.suppressed.values()), again.expired) == (0, 0, 0, 0)
    assert again.deferred == {"daily_limit": 4}
    assert digest == {table: table_digest(db, table) for table in digest}
    keys = journal_keys(sink_path)
    assert sorted(keys) == sorted(key for key, row in outbox(db).items() if row[0] == "sent")
    assert len(keys) == len(set(keys)) == 4
    csv_rows = pd.read_csv(sink_path.with_suffix(".csv"))
    assert sorted(csv_rows["idempotency_key"]) == sorted(keys)
    assert csv_rows["list_unsubscribe_post"].eq("List-Unsubscribe=One-Click").all()
    assert csv_rows["unsubscribe_url"].str.contains("token=").all()


def test_replacement_goes_first_and_the_rest_wait(world, tmp_path):
    db = world
    notify(db, sink=FileSink(tmp_path / "m.jsonl"), now=DAYTIME)
    box = outbox(db)
    user3 = {key: row for key, row in box.items() if key.split(":")[1] == "3"}
    assert list(user3) == ["replacement:3:1:2024-03-22:2024-06-15"]
    user5 = [key for key in box if key.split(":")[1] == "5"]
    assert user5 == ["care_reminder:5:5:2024-05-13:2024-06-12"]  # the oldest due first
    # the next day, the deferred messages come one at a time
    notify(
        db,
        on=REF + dt.timedelta(days=1),
        sink=FileSink(tmp_path / "m.jsonl"),
        now=DAYTIME + dt.timedelta(days=1),
    )
    box = outbox(db)
    assert "care_reminder:3:2:2024-05-16:2024-06-15" in box
    assert "care_reminder:5:4:2024-05-14:2024-06-13" in box


def test_an_opted_out_customer_gets_nothing_of_that_purpose(world, tmp_path):
    db = world
    notify(db, sink=FileSink(tmp_path / "m.jsonl"), now=DAYTIME)
    assert outbox(db)["care_reminder:2:2:2024-05-16:2024-06-15"] == ("suppressed", "no_consent", None, None)
    # customer 1 unsubscribes with the token of the message just sent: their next reminder is suppressed
    token = db.scalar("select unsubscribe_token from notifications where user_id = 1")
    assert unsubscribe(db, token, now=dt.datetime(2024, 6, 16, 8)) == (1, "email", "marketing")
    assert unsubscribe(db, "no-such-token") is None
    next_due = REF + dt.timedelta(days=60)  # leather: every 60 days after the first reminder
    later = notify(db, on=next_due, sink=FileSink(tmp_path / "m.jsonl"), now=DAYTIME + dt.timedelta(days=60))
    assert outbox(db)[f"care_reminder:1:2:2024-05-16:{next_due}"][:2] == ("suppressed", "no_consent")
    assert later.suppressed["no_consent"] >= 2
    sent_to_2 = db.scalar("select count(*) from notifications where user_id = 2 and status = 'sent'")
    assert sent_to_2 == 0


def test_a_marketing_opt_out_does_not_block_a_transactional_message(world):
    db = world
    db.execute("update message_kinds set purpose = 'transactional' where kind = 'care_reminder'")
    notify(db, now=DAYTIME)
    assert outbox(db)["care_reminder:2:2:2024-05-16:2024-06-15"][:3] == ("queued", None, "email")


def test_one_a_day_the_cap_and_expiry_over_three_weeks(world, tmp_path):
    db = world
    db.execute("update settings set message_expiry_days = 5")
    for day in range(21):
        on = REF + dt.timedelta(days=day)
        notify(db, on=on, sink=FileSink(tmp_path / "m.jsonl"), now=DAYTIME + dt.timedelta(days=day))
    sent = db.query_df("select user_id, purpose, due_on, sent_on from notifications where status = 'sent'")
    sent["sent_on"] = pd.to_datetime(sent["sent_on"])
    assert sent.groupby(["user_id", "sent_on"]).size().max() == 1, "two messages to a customer on one day"
    for _, messages in sent[sent["purpose"] == "marketing"].groupby("user_id"):
        days = sorted(messages["sent_on"])
        for first in days:
            in_window = [d for d in days if first <= d < first + pd.Timedelta(days=7)]
            assert len(in_window) <= 2, f"{len(in_window)} marketing messages in 7 days"
    assert ((sent["sent_on"] - pd.to_datetime(sent["due_on"])).dt.days <= 5).all()
    # customer 5's four reminders (due 06-12 .. 06-15): two sent on 06-15 and 06-16, then the cap holds
    # the other two until 06-22, past their expiry (due + 5 days)
    user5 = db.query("select status, sent_on from notifications where user_id = 5 order by due_on")
    assert user5 == [
        ("sent", REF),
        ("sent", REF + dt.timedelta(days=1)),
        ("expired", None),
        ("expired", None),
    ]


def test_quiet_hours_hold_a_message_until_the_customer_is_awake(world, tmp_path):
    db = world
    path = tmp_path / "m.jsonl"
    early = notify(db, sink=FileSink(path), now=NY_NIGHT)
    assert early.held_quiet_hours == 1
    assert outbox(db)["care_reminder:4:2:2024-05-16:2024-06-15"][0] == "queued"
    later = notify(db, sink=FileSink(path), now=NY_NIGHT + dt.timedelta(hours=4))
    assert (later.sent, later.held_quiet_hours) == (1, 0)
    assert outbox(db)["care_reminder:4:2:2024-05-16:2024-06-15"][0] == "sent"


def test_a_message_never_sent_in_time_expires(world, tmp_path):
    db = world
    for day in range(16):  # always run at 06:00 in New York: customer 4 is never awake
        notify(
            db,
            on=REF + dt.timedelta(days=day),
            sink=FileSink(tmp_path / "m.jsonl"),
            now=NY_NIGHT + dt.timedelta(days=day),
        )
    assert outbox(db)["care_reminder:4:2:2024-05-16:2024-06-15"][:2] == ("expired", "expired")


def test_dry_run_writes_nothing(world):
    db = world
    before = {table: table_digest(db, table) for table in ("notifications", "unsubscribe_tokens", "settings")}
    summary = notify(db, on=REF + dt.timedelta(days=3), dry_run=True, now=DAYTIME)
    assert summary.is_dry_run and summary.queued > 0
    assert before == {table: table_digest(db, table) for table in before}


def test_a_broken_template_fails_its_message_only(world):
    db = world
    db.execute(
        "update message_templates set body_template = '{{ name.__class__.__mro__ }}'"
        " where kind = 'replacement'"
    )
    summary = notify(db, now=DAYTIME)
    assert summary.render_failed == 1
    status, error = db.query("select status, last_error from notifications where kind = 'replacement'")[0]
    assert status == "failed" and error.startswith("template:")
    assert db.scalar("select count(*) from notifications where status = 'queued'") == 3


def test_contacts_file_loads_once_and_is_checked(db, tmp_path):
    build_world(db)
    (tmp_path / "contacts.csv").write_text(
        "user_id,channel,address,opted_in,updated_at\n1,email,new@example.com,no,2024-06-01T00:00:00Z\n",
        encoding="utf-8",
    )
    assert load_contacts(db, tmp_path).rows_loaded == 1
    assert load_contacts(db, tmp_path).rows_loaded == 0
    summary = notify(db, now=DAYTIME)
    assert outbox(db)["care_reminder:1:2:2024-05-16:2024-06-15"][:2] == ("suppressed", "no_consent")
    assert summary.suppressed["no_consent"] == 2
    (tmp_path / "contacts.csv").write_text(
        "user_id,channel,address,opted_in,updated_at\n99,email,x@example.com,true,2024-06-01\n",
        encoding="utf-8",
    )
    with pytest.raises(Exception, match="is not a loaded user"):
        load_contacts(db, tmp_path)
    assert load_contacts(db, tmp_path / "nowhere") is None


# -- the webhook sink, against a server on 127.0.0.1 -------------------------------------------------
class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict]] = []
    seen: set[str] = set()

    def do_POST(self):  # noqa: N802 - http.server's name
        key = self.headers.get("Idempotency-Key")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, key, body))
        if self.path == "/down":
            code = 500
        elif self.path == "/reject":
            code = 400
        elif self.path == "/flaky" and (self.path, key) not in self.seen:
            self.seen.add((self.path, key))
            code = 503
        else:
            code = 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received, Receiver.seen = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_webhook_retries_with_back_off_and_sends_the_key(world, receiver):
    db = world
    down = notify(db, sink=WebhookSink(f"{receiver}/down", delays=(0.01, 0.02)), now=DAYTIME)
    assert (down.sent, down.failed) == (0, 4)
    assert len(Receiver.received) == 4 * 3  # three attempts each
    failed = db.query("select status, attempts, last_error from notifications where status <> 'suppressed'")
    assert {(status, attempts) for status, attempts, _ in failed} == {("failed", 1)}
    assert all(error.startswith("HTTP 500") for *_, error in failed)
    Receiver.received = []
    flaky = notify(db, sink=WebhookSink(f"{receiver}/flaky", delays=(0.01, 0.02)), now=DAYTIME)
    assert (flaky.sent, flaky.failed) == (4, 0)
    keys = [key for _, key, _ in Receiver.received]
    assert len(keys) == 8 and len(set(keys)) == 4  # 503 then 200, with the same Idempotency-Key
    assert all(body["idempotency_key"] == key for _, key, body in Receiver.received)
    assert db.query("select distinct attempts, last_error from notifications where status = 'sent'") == [
        (2, None)
    ]


def test_webhook_refusal_is_not_retried(receiver):
    sink = WebhookSink(f"{receiver}/reject", delays=(0.01, 0.01))
    with pytest.raises(notify_module.SinkError, match="HTTP 400"):
        sink.send({"idempotency_key": "k"})
    assert len(Receiver.received) == 1  # a 4xx is the receiver's no: not retried


# -- SIGKILL at every checkpoint ----------------------------------------------------------------------
KILL_POINTS = [
    "candidates_read", "before_enqueue_commit", "enqueued",
    "torn_write:1", "sink_written:1", "marked_sent:1",
    "torn_write:3", "sink_written:3", "marked_sent:3",
    "sink_written:4", "marked_sent:4", "before_export", "exported",
]  # fmt: skip


def test_kill_points_cover_every_checkpoint():
    assert {point.partition(":")[0] for point in KILL_POINTS} == set(notify_module.CHECKPOINTS)


def _notify_job(url: str, path: str) -> None:
    with Database(url) as db:
        notify(db, sink=FileSink(path), now=DAYTIME)


def _reset(url: str, path: Path) -> None:
    with Database(url) as db:
        for table in ("notifications", "notification_suggestions", "unsubscribe_tokens"):
            db.execute(f"delete from {table}")
    for file in (path, path.with_suffix(".csv")):
        file.unlink(missing_ok=True)


def test_a_killed_run_loses_nothing_and_sends_nothing_twice(db_url, engine, tmp_path):
    with Database(db_url) as db:
        build_world(db)
    path = tmp_path / "out" / "messages.jsonl"
    _notify_job(db_url, str(path))
    with Database(db_url) as db:
        expected = outbox(db)
    expected_keys = sorted(journal_keys(path))
    assert len(expected_keys) == 4

    def check(point: str) -> list[str]:
        _reset(db_url, path)
        code = run_killed(notify_module.KILL_AT_ENV, point, _notify_job, db_url, str(path))
        problems = [] if code == -signal.SIGKILL else [f"exit code {code}, not killed"]
        _notify_job(db_url, str(path))  # the next run finishes the job
        with Database(db_url) as db:
            if outbox(db) != expected:
                problems.append("the outbox differs from an uninterrupted run")
        keys = journal_keys(path)
        if sorted(keys) != expected_keys:
            problems.append(f"the file holds {sorted(keys)}")
        if sorted(pd.read_csv(path.with_suffix(".csv"))["idempotency_key"]) != expected_keys:
            problems.append("the CSV differs from the file")
        return problems

    assert_every_kill_point_passes(f"notify on {engine}", KILL_POINTS, check)


# -- the bundled data at its reference date -----------------------------------------------------------
@pytest.fixture
def bundled_copy(engine, bundled_duckdb_url, request, tmp_path):
    """A writable copy of the bundled, scored database, with data/contacts.csv loaded."""
    from helpers import DATA_DIR

    from scripts.db import with_search_path

    if engine == "duckdb":
        url = str(tmp_path / "bundled.duckdb")
        shutil.copy(bundled_duckdb_url, url)
    else:
        from scripts import build
        from scripts.load import load

        base = request.getfixturevalue("pg_database_url")
        schema = f"n_{uuid.uuid4().hex[:10]}"
        with Database(base) as admin:
            admin.execute(f"create schema {schema}")
        request.addfinalizer(lambda: _drop(base, schema))
        url = with_search_path(base, schema)
        with Database(url) as db, Database(bundled_duckdb_url, read_only=True) as source:
            create_schema(db)
            load(db, DATA_DIR, progress=False)
            build.set_reference_date(db, "auto", DATA_DIR)
            for table in ("model_runs", "recommendations", "shoe_similarities"):
                db.insert_df(table, source.query_df(f"select * from {table}"))
            # the statistics a build leaves (scripts.build analyses on PostgreSQL): without them the
            # planner's guesses for tables loaded a moment ago make notify take minutes instead of seconds
            db.execute("analyze")
    with Database(url) as db:
        create_schema(db)
        load_contacts(db, DATA_DIR)
    return url


def _drop(base: str, schema: str) -> None:
    with Database(base) as admin:
        admin.execute(f"drop schema if exists {schema} cascade")


def test_bundled_data_one_message_per_customer_none_stale(bundled_copy, engine, tmp_path, capsys):
    with Database(bundled_copy) as db:
        summary = notify(db, sink=FileSink(tmp_path / "messages.jsonl"), now=dt.datetime(2026, 6, 30, 10, 0))
        decided = db.query_df("select user_id, status, due_on, queued_on from notifications")
        expiry = db.scalar("select message_expiry_days from current_settings")
    for line in summary.lines():
        print(line)
    print(
        f"bundled on {engine}: {summary.candidates} candidates, {summary.queued} queued, {summary.sent} sent"
    )
    parts = (
        summary.queued + sum(summary.suppressed.values()) + summary.expired + sum(summary.deferred.values())
    )
    assert summary.candidates == parts > 0
    going = decided[decided["status"].isin(["queued", "sent"])]
    assert going.groupby("user_id").size().max() == 1
    age = (pd.to_datetime(going["queued_on"]) - pd.to_datetime(going["due_on"])).dt.days
    assert age.max() <= expiry
    assert summary.sent + summary.held_quiet_hours == summary.queued
