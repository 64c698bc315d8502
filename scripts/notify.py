"""The daily after-sale job: enqueue what is due, send it, record what happened.

    python -m scripts.notify [--db ...] [--on YYYY-MM-DD] [--sink file:PATH | webhook:URL] [--dry-run]

1. Enqueue (one transaction): every row of the view ``message_candidates`` for the day (``--on``, else
   the reference date in force) is recorded in the outbox (table ``notifications``) under its
   idempotency key: ``send`` rows as queued, rendered from ``message_templates`` (jinja2 in a sandbox)
   with a one-click unsubscribe token; ``suppressed`` (no consent) and ``expired`` rows with their
   reason; ``deferred`` rows (one a day, the 7-day cap) are not recorded and come back tomorrow.
   Queued or failed rows older than ``settings.message_expiry_days`` become expired. Running the job
   twice the same day adds nothing: the view excludes what the outbox holds.
2. Send (with ``--sink``): each queued row (and each failed one under ``settings.max_send_attempts``)
   goes to the sink unless it is quiet hours in the customer's time zone (it then waits for a later
   run); it is marked sent or failed (with the error) right after.

   - ``file:PATH``: one JSON line per message appended to PATH (flushed and fsynced before the row is
     marked sent), and PATH with the suffix ``.csv`` rewritten from it for an email tool. A run
     first reads PATH: a message already there is marked sent, never written again; a line torn by a
     crash is cut off. So a killed run loses nothing and the file holds each message once.
   - ``webhook:URL``: an HTTP POST of the same JSON with the header ``Idempotency-Key``, retried with
     exponential back-off on errors and 5xx/429. After a crash between the POST and the mark the
     next run posts again with the same key: the receiver drops the duplicate.

3. Print a summary: candidates, queued, suppressed and deferred by reason, sent, failed, held.

Without ``--sink`` the job only enqueues (another process may send). ``--dry-run`` prints the summary
and writes nothing. Scheduling is the caller's (cron, systemd, pg_cron: see sql/schedule.sql); runs
are idempotent, so running it hourly only sends each message once, when the customer is awake.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import secrets
import time
import urllib.error
import urllib.request
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jinja2
import jinja2.sandbox
import pandas as pd

from scripts import serving
from scripts.cli import base_parser, reports_database_errors, setup_logging
from scripts.clock import utc_now
from scripts.db import Database, describe
from scripts.killpoints import kill_point

log = logging.getLogger(__name__)

# Test hook: SHOEREC_NOTIFY_KILL_AT=<stage>[:<k>] kills this process with SIGKILL the k-th time (default:
# the first) it reaches that stage; CHECKPOINTS lists them in the order a run reaches them (torn_write:
# half a JSON line written; sink_written: a message in the sink, not yet marked; marked_sent: marked).
KILL_AT_ENV = "SHOEREC_NOTIFY_KILL_AT"
CHECKPOINTS = (
    "candidates_read",
    "before_enqueue_commit",
    "enqueued",
    "torn_write",
    "sink_written",
    "marked_sent",
    "before_export",
    "exported",
)
_reached: Counter = Counter()

OUTBOX_COLUMNS = (
    "idempotency_key", "user_id", "kind", "purpose", "shoe_id", "purchased_on", "due_on", "channel",
    "address", "time_zone", "subject", "body", "unsubscribe_token", "status", "reason", "attempts",
    "queued_on", "sent_on", "created_at", "updated_at", "sent_at", "last_error",
)  # fmt: skip
CSV_COLUMNS = (
    "idempotency_key", "user_id", "kind", "channel", "address", "subject", "body", "unsubscribe_url",
    "list_unsubscribe", "list_unsubscribe_post", "due_on", "sent_on",
)  # fmt: skip
RETRY_DELAYS = (0.5, 1.0, 2.0)  # seconds before the 2nd, 3rd and 4th POST of one message in a run
HTTP_TIMEOUT = 10.0


class SinkError(RuntimeError):
    """A message could not be delivered (the row is marked failed with this text)."""


def _checkpoint(stage: str) -> None:
    """Test hook: die here, as abruptly as possible, if ``$SHOEREC_NOTIFY_KILL_AT`` names this stage."""
    kill_point(KILL_AT_ENV, _reached, stage)


# -- pure parts ----------------------------------------------------------------------------------
def is_quiet(now_utc: dt.datetime, time_zone: str | None, start_hour: int, end_hour: int) -> bool:
    """True when ``now_utc`` (naive UTC) falls in the quiet hours [start, end) local to ``time_zone``.

    ``start > end`` spans midnight (21 -> 8); ``start == end`` means no quiet hours. An unknown or
    missing time zone counts as UTC.
    """
    if start_hour == end_hour:
        return False
    try:
        zone = zoneinfo.ZoneInfo(time_zone) if time_zone else dt.UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    hour = now_utc.replace(tzinfo=dt.UTC).astimezone(zone).hour
    if start_hour < end_hour:
        return start_hour <= hour < end_hour
    return hour >= start_hour or hour < end_hour


def sandbox() -> jinja2.sandbox.SandboxedEnvironment:
    """The environment retailer-edited templates render in: sandboxed, plain text, no autoescape."""
    return jinja2.sandbox.SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


def render(env: jinja2.Environment, subject: str, body: str, variables: dict[str, Any]) -> tuple[str, str]:
    """Subject and body of one message; raises jinja2's errors (a broken or unsafe template)."""
    return env.from_string(subject).render(variables).strip(), env.from_string(body).render(variables).strip()


def unsubscribe_link(base_url: str, token: str) -> str:
    """The one-click link: ``base_url?token=...`` (``&token=`` when the base has a query already)."""
    return f"{base_url}{'&' if '?' in base_url else '?'}token={token}"


def message_record(row: dict[str, Any], base_url: str) -> dict[str, Any]:
    """What a sink receives for one outbox row, with the RFC 8058 headers for an email."""
    link = unsubscribe_link(base_url, row["unsubscribe_token"]) if row.get("unsubscribe_token") else None
    headers = (
        {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        if link
        else {}
    )
    return {
        "idempotency_key": row["idempotency_key"],
        "user_id": int(row["user_id"]),
        "kind": row["kind"],
        "channel": row["channel"],
        "address": row["address"],
        "subject": row["subject"],
        "body": row["body"],
        "unsubscribe_token": row.get("unsubscribe_token"),
        "unsubscribe_url": link,
        "headers": headers,
        "due_on": str(row["due_on"]),
        "sent_on": str(row["sent_on"]),
    }


# -- sinks ---------------------------------------------------------------------------------------
class Sink(Protocol):
    def delivered(self) -> set[str]: ...
    def send(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class FileSink:
    """JSON lines appended to ``path`` (the record of what was sent), and ``path.csv`` made from them.

    Parameters
    ----------
    path : Path
        The JSONL file (created with its folder when missing).
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.csv_path = self.path.with_suffix(".csv")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keys = self._repair_and_read()
        self._handle = open(self.path, "ab")  # noqa: SIM115 - open for the sink's life, closed in close()

    def _repair_and_read(self) -> set[str]:
        """Cut a torn last line (a crash mid-write) and return the keys of the complete lines."""
        if not self.path.exists():
            return set()
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            log.warning("%s: cutting a torn last line of %d bytes", self.path, len(data) - len(complete))
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
                handle.flush()
                os.fsync(handle.fileno())
        return {json.loads(line)["idempotency_key"] for line in complete.splitlines() if line.strip()}

    def delivered(self) -> set[str]:
        return set(self._keys)

    def send(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        half = len(line) // 2
        self._handle.write(line[:half])
        self._handle.flush()
        _checkpoint("torn_write")
        self._handle.write(line[half:])
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._keys.add(record["idempotency_key"])

    def close(self) -> None:
        self._handle.close()
        _checkpoint("before_export")
        write_csv(self.path, self.csv_path)
        _checkpoint("exported")


def write_csv(jsonl_path: Path, csv_path: Path) -> int:
    """Rewrite ``csv_path`` (atomically) from every line of ``jsonl_path``; returns the row count."""
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    rows = 0
    with open(jsonl_path, encoding="utf-8") as source, open(tmp, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for line in source:
            if not line.strip():
                continue
            record = json.loads(line)
            headers = record.get("headers") or {}
            record["list_unsubscribe"] = headers.get("List-Unsubscribe")
            record["list_unsubscribe_post"] = headers.get("List-Unsubscribe-Post")
            writer.writerow(["" if record.get(name) is None else record[name] for name in CSV_COLUMNS])
            rows += 1
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, csv_path)
    return rows


class WebhookSink:
    """POST each message as JSON to ``url`` with an ``Idempotency-Key`` header; retries with back-off.

    Parameters
    ----------
    url : str
        An http(s) URL.
    delays : sequence of float
        Seconds to wait before each retry (``RETRY_DELAYS``: four attempts in all).
    timeout : float
        Seconds per request.
    """

    def __init__(self, url: str, delays: tuple[float, ...] = RETRY_DELAYS, timeout: float = HTTP_TIMEOUT):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http:// or https://, not {url!r}")
        self.url, self.delays, self.timeout = url, tuple(delays), timeout

    def delivered(self) -> set[str]:
        return set()  # the receiver dedupes by Idempotency-Key

    def send(self, record: dict[str, Any]) -> None:
        payload = json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")
        error = ""
        for attempt, delay in enumerate((0.0, *self.delays)):
            if delay:
                time.sleep(delay)
            request = urllib.request.Request(
                self.url,
                data=payload,
                method="POST",
                headers={"Content-Type": "application/json", "Idempotency-Key": record["idempotency_key"]},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - the retailer's URL
                    response.read()
                    return
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code} {exc.reason}"
                if exc.code < 500 and exc.code != 429:
                    raise SinkError(error) from exc  # the receiver refused it: retrying will not help
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            log.debug("POST %s attempt %d failed: %s", record["idempotency_key"], attempt + 1, error)
        raise SinkError(f"{error} (after {len(self.delays) + 1} attempts)")

    def close(self) -> None:
        pass


def make_sink(spec: str) -> Sink:
    """``file:PATH`` or ``webhook:URL``."""
    kind, _, target = spec.partition(":")
    if kind == "file" and target:
        return FileSink(target)
    if kind == "webhook" and target:
        return WebhookSink(target)
    raise ValueError(f"--sink must be file:PATH or webhook:URL, not {spec!r}")


# -- the run -------------------------------------------------------------------------------------
@dataclass
class RunSummary:
    """What one run did. ``candidates`` = queued + suppressed + expired + deferred (by reason)."""

    on: dt.date | None = None
    is_dry_run: bool = False
    candidates: int = 0
    queued: int = 0
    suppressed: Counter = field(default_factory=Counter)  # reason -> rows recorded suppressed
    expired: int = 0
    deferred: Counter = field(default_factory=Counter)  # reason -> rows left for another day
    render_failed: int = 0
    expired_in_flight: int = 0
    sent: int = 0
    already_delivered: int = 0
    failed: int = 0
    held_quiet_hours: int = 0

    def lines(self) -> list[str]:
        head = f"notify {self.on}{' (dry run: nothing written)' if self.is_dry_run else ''}"
        suppressed = ", ".join(f"{r} {n}" for r, n in sorted(self.suppressed.items())) or "none"
        deferred = ", ".join(f"{r} {n}" for r, n in sorted(self.deferred.items())) or "none"
        return [
            f"{head}: {self.candidates} candidates",
            f"  queued {self.queued} (of which {self.render_failed} failed to render)",
            f"  suppressed: {suppressed}",
            f"  expired: {self.expired} (and {self.expired_in_flight} queued earlier, not sent in time)",
            f"  deferred to another day: {deferred}",
            f"  sent {self.sent} (+{self.already_delivered} found in the sink after a crash),"
            f" failed {self.failed}, held for quiet hours {self.held_quiet_hours}",
        ]


def _settings(db: Database) -> dict[str, Any]:
    frame = db.query_df("select * from current_settings")
    return frame.iloc[0].to_dict()


def _as_date(value: Any) -> dt.date | None:
    """A date from what a driver or pandas returns for a date column (date, Timestamp, None)."""
    if value is None or _is_missing(value):
        return None
    return (
        value
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime)
        else pd.Timestamp(value).date()
    )


DATE_COLUMNS = ("purchased_on", "due_on", "end_of_life_on", "reference_date", "queued_on", "sent_on")


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row of a DataFrame with NA as None and its date columns as dates."""
    row = {name: (None if _is_missing(value) else value) for name, value in row.items()}
    return {name: (_as_date(value) if name in DATE_COLUMNS else value) for name, value in row.items()}


def _tokens(
    db: Database, wanted: set[tuple[int, str, str]], now: dt.datetime
) -> dict[tuple[int, str, str], str]:
    """The unsubscribe token of each (user, channel, purpose), created where missing."""
    known = {
        (int(u), c, p): t
        for u, c, p, t in db.query("select user_id, channel, purpose, token from unsubscribe_tokens")
    }
    new = [(secrets.token_urlsafe(18), *key) for key in sorted(wanted - set(known))]
    if new:
        frame = pd.DataFrame(new, columns=["token", "user_id", "channel", "purpose"]).assign(created_at=now)
        db.insert_df("unsubscribe_tokens", frame)
        known.update({(u, c, p): t for t, u, c, p in new})
    return known


def _suggestions(db: Database) -> dict[tuple[int, int], list[dict[str, Any]]]:
    rows = db.query(
        "select user_id, shoe_id, rank, suggested_shoe_id, suggested_name, brand, price"
        " from replacement_suggestions order by user_id, shoe_id, rank"
    )
    found: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for user_id, shoe_id, rank, suggested, name, brand, price in rows:
        found.setdefault((int(user_id), int(shoe_id)), []).append(
            {
                "rank": int(rank),
                "shoe_id": int(suggested),
                "name": name,
                "brand": brand,
                "price": f"{float(price):.2f}",
            }
        )
    return found


def enqueue(
    db: Database, on: dt.date | None, now: dt.datetime, summary: RunSummary, *, dry_run: bool
) -> dict:
    """Record the day's candidates in the outbox, in one transaction; returns the settings in force."""
    with db.transaction(rollback=dry_run):
        stored = db.scalar("select reference_date from settings")
        if on is not None:  # the views compute as of --on inside this transaction only
            db.execute("update settings set reference_date = ?", [on])
        settings = _settings(db)
        day = _as_date(settings["reference_date"])
        summary.on = day
        cutoff = day - dt.timedelta(days=int(settings["message_expiry_days"]))
        summary.expired_in_flight = int(
            db.scalar(
                "select count(*) from notifications where status in ('queued', 'failed') and due_on < ?",
                [cutoff],
            )
        )
        db.execute(
            "update notifications set status = 'expired', reason = 'expired', updated_at = ?"
            " where status in ('queued', 'failed') and due_on < ?",
            [now, cutoff],
        )
        candidates = db.query_df("select * from message_candidates")
        _checkpoint("candidates_read")
        summary.candidates = len(candidates)
        rows, suggested = _outbox_rows(db, candidates, settings, day, now, summary)
        if rows:
            db.insert_df("notifications", pd.DataFrame(rows, columns=list(OUTBOX_COLUMNS)))
        if suggested:
            db.insert_df(
                "notification_suggestions",
                pd.DataFrame(suggested, columns=["idempotency_key", "rank", "shoe_id"]),
            )
        if on is not None:
            db.execute("update settings set reference_date = ?", [stored])
        _checkpoint("before_enqueue_commit")
    if not dry_run:
        _checkpoint("enqueued")
    return settings


def _outbox_rows(
    db, candidates: pd.DataFrame, settings: dict, day: dt.date, now: dt.datetime, summary: RunSummary
):
    """The outbox rows (tuples in OUTBOX_COLUMNS order) and suggestion rows for the candidates."""
    to_send = candidates[candidates["decision"] == "send"]
    templates = {
        (kind, channel): (subject, body)
        for kind, channel, subject, body in db.query(
            "select kind, channel, subject_template, body_template from message_templates"
        )
    }
    tokens = _tokens(
        db,
        {(int(r.user_id), r.channel, r.purpose) for r in to_send.itertuples() if r.purpose == "marketing"},
        now,
    )
    suggestions = _suggestions(db) if (to_send["kind"] == "replacement").any() else {}
    env = sandbox()
    rows, suggested = [], []
    for row in candidates.to_dict("records"):
        row = _plain(row)
        decision, reason = row["decision"], row["reason"]
        if decision == "deferred":
            summary.deferred[reason] += 1
            continue
        subject = body = token = error = None
        status = {"send": "queued", "suppressed": "suppressed", "expired": "expired"}[decision]
        if decision == "send":
            summary.queued += 1
            token = tokens.get((int(row["user_id"]), row["channel"], row["purpose"]))
            shoes = (
                suggestions.get((int(row["user_id"]), int(row["shoe_id"])), [])
                if row["kind"] == "replacement"
                else []
            )
            variables = {
                **{name: value for name, value in row.items() if name not in ("address",)},
                "purchased_on": str(row["purchased_on"]),
                "due_on": str(row["due_on"]),
                "end_of_life_on": str(row["end_of_life_on"]),
                "personal_lifespan_days": None
                if row["personal_lifespan_days"] is None
                else int(row["personal_lifespan_days"]),
                "days_overdue": int(row["days_overdue"]),
                "suggestions": shoes,
                "unsubscribe_url": unsubscribe_link(settings["unsubscribe_url"], token) if token else "",
            }
            try:
                subject, body = render(env, *templates[(row["kind"], row["channel"])], variables)
            except (jinja2.TemplateError, KeyError, TypeError, ValueError) as exc:
                status, error = "failed", f"template: {type(exc).__name__}: {exc}"
                summary.render_failed += 1
            suggested += [(row["idempotency_key"], shoe["rank"], shoe["shoe_id"]) for shoe in shoes]
        elif decision == "suppressed":
            summary.suppressed[reason] += 1
        else:
            summary.expired += 1
        rows.append(
            (row["idempotency_key"], int(row["user_id"]), row["kind"], row["purpose"], row["shoe_id"],
             row["purchased_on"], row["due_on"], row["channel"], row["address"], row["time_zone"],
             subject, body, token, status, reason, 0, day, None, now, now, None, error)
        )  # fmt: skip
    return rows, suggested


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def send_queued(db: Database, sink: Sink, settings: dict, now: dt.datetime, summary: RunSummary) -> None:
    """Send each sendable outbox row through ``sink`` and mark it sent or failed, one row at a time."""
    day = summary.on
    pending = db.query_df(
        "select * from notifications"
        " where status in ('queued', 'failed') and body is not null and attempts < ?"
        " order by queued_on, user_id, idempotency_key",
        [int(settings["max_send_attempts"])],
    )
    delivered = sink.delivered()
    start, end = int(settings["quiet_hours_start_hour"]), int(settings["quiet_hours_end_hour"])
    for row in pending.to_dict("records"):
        row = _plain(row)
        key = row["idempotency_key"]
        if key in delivered:  # written by a run that died before marking it
            _mark_sent(db, key, day, now)
            summary.already_delivered += 1
            continue
        if is_quiet(now, row["time_zone"] or settings["default_time_zone"], start, end):
            summary.held_quiet_hours += 1
            continue
        db.execute(
            "update notifications set attempts = attempts + 1, updated_at = ? where idempotency_key = ?",
            [now, key],
        )
        try:
            sink.send(message_record({**row, "sent_on": day}, settings["unsubscribe_url"]))
        except SinkError as exc:
            db.execute(
                "update notifications set status = 'failed', last_error = ?, updated_at = ?"
                " where idempotency_key = ?",
                [str(exc), now, key],
            )
            summary.failed += 1
            continue
        _checkpoint("sink_written")
        _mark_sent(db, key, day, now)
        summary.sent += 1
        _checkpoint("marked_sent")
    sink.close()


def _mark_sent(db: Database, key: str, day: dt.date, now: dt.datetime) -> None:
    db.execute(
        "update notifications set status = 'sent', sent_on = ?, sent_at = ?, updated_at = ?,"
        " last_error = null"
        " where idempotency_key = ?",
        [day, now, now, key],
    )


def notify(
    db: Database,
    on: dt.date | None = None,
    sink: Sink | None = None,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> RunSummary:
    """Run the daily job on an open database (see the module docstring); returns what it did.

    Parameters
    ----------
    db : Database
        The database, as a writer.
    on : date, optional
        The day to run for (the views are computed as of it); default the reference date in force.
    sink : Sink, optional
        Where to send; None only enqueues.
    dry_run : bool
        Compute the summary and write nothing (the enqueue transaction is rolled back, nothing is sent).
    now : datetime, optional
        The clock (naive UTC), for quiet hours and timestamps; default now.
    """
    now = now or utc_now()
    summary = RunSummary(is_dry_run=dry_run)
    settings = enqueue(db, on, now, summary, dry_run=dry_run)
    if not dry_run:
        # PostgreSQL: a new day (or --on's restore of the settings) leaves the customer views' read model
        # stale; rebuilt here, once a day
        serving.refresh(db)
    if sink is not None and not dry_run:
        send_queued(db, sink, settings, now, summary)
    return summary


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"--on: {value!r} is not a date YYYY-MM-DD") from exc


def _timestamp(value: str) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp.astimezone(dt.UTC).replace(tzinfo=None) if stamp.tzinfo else stamp


@reports_database_errors
def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument(
        "--on", type=_date, default=None, help="the day to run for (default: the reference date in force)"
    )
    parser.add_argument(
        "--sink", default=None, help="file:PATH (JSONL + CSV) or webhook:URL; none: enqueue only"
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would happen, write nothing")
    parser.add_argument(
        "--now", type=_timestamp, default=None, help=argparse.SUPPRESS
    )  # the clock: tests, replays
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        sink = make_sink(args.sink) if args.sink and not args.dry_run else None
    except ValueError as exc:
        parser.error(str(exc))
    with Database(args.db) as db:
        summary = notify(db, args.on, sink, dry_run=args.dry_run, now=args.now)
    for line in summary.lines():
        print(line)
    log.info("notify done on %s", describe(db.url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
