"""Data checks as SQL (dbt-style): each ``tests/sql_assertions/*.sql`` returns the rows that break a rule.

Every assertion must return no rows, on DuckDB and PostgreSQL, over one small but non-trivial database
built here from a seeded generator: a few dozen users and shoes, two years of interactions (some after
the reference date), repeat purchases, materials without a care schedule, usages without a wear factor,
and four scoring runs (two complete, one failed, one running) whose raw scores include shoes the users
have bought. ``test_fixture_exercises_every_rule`` checks that the database really contains what the
rules are about, so an assertion cannot pass for want of data.

The grain comment is the test: each view's first line says what one row is (``-- one row per
(user_id, rank): ...``, ``-- one row per shoe_id: ...``, ``-- one row: ...``), and its uniqueness and
not-null checks are generated from that line (:func:`grain_of`), so they cannot drift from the header;
each generated check is also shown to catch duplicated rows.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ENGINES, fresh_url

from scripts.db import Database, view_files
from scripts.schema import create_schema

ASSERTIONS_DIR = Path(__file__).resolve().parent / "sql_assertions"
ASSERTIONS = sorted(ASSERTIONS_DIR.glob("*.sql"))
VIEWS = [path.stem for path in view_files()]
_GRAIN = re.compile(r"^--\s*(?P<count>zero or one row|one row)\b(?P<rest>.*)")
_KEY_LIST = re.compile(r"\(\s*([a-z_][a-z0-9_]*(?:\s*,\s*[a-z_][a-z0-9_]*)*)\s*\)")
_ONE_KEY = re.compile(r"^\s*per\s+([a-z_][a-z0-9_]*)\s*:")

REFERENCE_DATE = dt.date(2024, 6, 15)
N_USERS = 60
N_SHOES = 40
TOP_N = 10
N_SIMILAR = 8
SEED = 20240615

USAGES = ["running", "walking", "casual", "hiking", "skating"]  # skating: no wear factor, '*' applies
GENDERS = ["female", "male", None]
MATERIALS = ["leather", "suede", "mesh", "canvas", "cork", "knit", "gore-tex"]  # cork: no care schedule
BRANDS = ["Stride", "Peak", "Urbano", "Velour"]
TYPES = ["running", "hiking", "sneaker", "boot"]
COLORS = ["black", "white", "red", "blue"]
# Edges, for a runner (wear factor 1.0): a mesh pair (reminders at +45, +105, +165) whose third reminder
# falls on its end of life, the reference date; a leather pair (first reminder at +30) replaced on the day
# of that reminder; a pair whose replacement window (85 of 100 days) opens on the reference date.
EDGE_USER = N_USERS + 1
EDGE_SHOES = [(141, "mesh", 165), (142, "leather", 400), (143, "mesh", 100)]  # shoe_id, material, lifespan
EDGE_PURCHASES = [
    (141, REFERENCE_DATE - dt.timedelta(days=165)),
    (142, dt.date(2024, 1, 1)),
    (142, dt.date(2024, 1, 31)),
    (143, REFERENCE_DATE - dt.timedelta(days=85)),
]
RUNS = [  # run_id, status, started_at
    (1, "complete", dt.datetime(2024, 6, 1, 8)),
    (2, "complete", dt.datetime(2024, 6, 10, 8)),
    (3, "failed", dt.datetime(2024, 6, 12, 8)),
    (4, "running", dt.datetime(2024, 6, 14, 8)),
]


# -- the fixture database -------------------------------------------------------------------------
def fixture_tables(seed: int = SEED) -> dict[str, pd.DataFrame]:
    """The fixture's rows per table, from a seeded generator."""
    rng = np.random.default_rng(seed)
    user_ids = np.arange(1, N_USERS + 1)
    shoe_ids = np.arange(101, 101 + N_SHOES)
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "age": pd.array(
                [None if rng.random() < 0.15 else int(rng.integers(14, 80)) for _ in user_ids], "Int64"
            ),
            "gender": pd.Series([GENDERS[rng.integers(len(GENDERS))] for _ in user_ids], dtype="object"),
            "primary_usage": [USAGES[rng.integers(len(USAGES))] for _ in user_ids],
        }
    )
    shoes = pd.DataFrame(
        {
            "shoe_id": shoe_ids,
            "name": [f"Shoe {shoe_id}" for shoe_id in shoe_ids],
            "brand": [BRANDS[rng.integers(len(BRANDS))] for _ in shoe_ids],
            "type": [TYPES[rng.integers(len(TYPES))] for _ in shoe_ids],
            "material": [MATERIALS[i % len(MATERIALS)] for i in range(N_SHOES)],
            "color": [COLORS[rng.integers(len(COLORS))] for _ in shoe_ids],
            "price": np.round(rng.uniform(30, 200, N_SHOES), 2),
            "care_instructions": pd.Series(
                [None if i % 3 == 0 else f"Care for shoe {shoe_id}." for i, shoe_id in enumerate(shoe_ids)],
                dtype="object",
            ),
            "lifespan_days": rng.integers(90, 700, N_SHOES),
        }
    )

    # interactions: the last 10 users have none; repeat purchases of the same shoe are forced below
    start = dt.datetime(2022, 6, 1)
    span_seconds = int((dt.datetime(2024, 8, 1) - start).total_seconds())  # runs past the reference date
    events = []
    for user_id in user_ids[: N_USERS - 10]:
        for _ in range(int(rng.integers(3, 25))):
            kind = rng.choice(["view", "add_to_wishlist", "purchase"], p=[0.6, 0.2, 0.2])
            at = start + dt.timedelta(seconds=int(rng.integers(span_seconds)))
            events.append((user_id, int(rng.choice(shoe_ids)), str(kind), at))
    for user_id in user_ids[:8]:  # the same shoe bought twice, a year apart
        shoe_id = int(rng.choice(shoe_ids))
        events.append((user_id, shoe_id, "purchase", dt.datetime(2023, 3, 1, 9)))
        events.append((user_id, shoe_id, "purchase", dt.datetime(2024, 3, 1, 9)))
    # the edges (see EDGE_SHOES)
    users.loc[len(users)] = [EDGE_USER, 30, "female", "running"]
    edge_shoes = pd.DataFrame(EDGE_SHOES, columns=["shoe_id", "material", "lifespan_days"])
    edge_shoes = edge_shoes.assign(
        name="Edge " + edge_shoes["shoe_id"].astype(str),
        brand="Stride",
        type="running",
        color="black",
        price=99.0,
    )
    shoes = pd.concat([shoes, edge_shoes], ignore_index=True)
    events += [
        (EDGE_USER, shoe_id, "purchase", dt.datetime.combine(day, dt.time(12)))
        for shoe_id, day in EDGE_PURCHASES
    ]
    interactions = pd.DataFrame(events, columns=["user_id", "shoe_id", "interaction_type", "occurred_at"])
    interactions = interactions.drop_duplicates(["user_id", "shoe_id", "interaction_type", "occurred_at"])

    model_runs = pd.DataFrame(
        {
            "run_id": [run_id for run_id, _, _ in RUNS],
            "status": [status for _, status, _ in RUNS],
            "started_at": [started for _, _, started in RUNS],
            "finished_at": [
                None if status == "running" else started + dt.timedelta(seconds=95.5)
                for _, status, started in RUNS
            ],
            "parameters": ["{}"] * len(RUNS),
        }
    )
    model_runs["finished_at"] = pd.to_datetime(model_runs["finished_at"])

    # every run scores every user: random shoes (bought ones included), scores descending
    recommendations, similarities, segments = [], [], []
    by_user = interactions.groupby("user_id")["shoe_id"].apply(list).to_dict()
    for run_id, _, _ in RUNS:
        for user_id in user_ids:
            picked = rng.choice(shoe_ids, TOP_N, replace=False)
            scores = np.sort(rng.random(TOP_N))[::-1]
            history = by_user.get(user_id, [])
            for rank, (shoe_id, score) in enumerate(zip(picked, scores, strict=True), start=1):
                reason = int(rng.choice(history)) if history and rng.random() < 0.7 else None
                weight = float(rng.random())
                recommendations.append(
                    (run_id, user_id, rank, int(shoe_id), score, score, score, weight, reason)
                )
        for shoe_id in shoe_ids:
            others = rng.choice(shoe_ids[shoe_ids != shoe_id], N_SIMILAR, replace=False)
            values = np.sort(rng.random(N_SIMILAR))[::-1]
            for rank, (other, value) in enumerate(zip(others, values, strict=True), start=1):
                similarities.append((run_id, int(shoe_id), rank, int(other), value))
        for usage in USAGES:
            for gender in ["female", "male", "unknown"]:
                for rank, shoe_id in enumerate(rng.choice(shoe_ids, 5, replace=False), start=1):
                    segments.append((run_id, usage, gender, "25-34", rank, int(shoe_id), 1.0 / rank))
    return {
        "users": users,
        "shoes": shoes,
        "interactions": interactions,
        "model_runs": model_runs,
        "recommendations": pd.DataFrame(
            recommendations,
            columns=[
                "run_id",
                "user_id",
                "rank",
                "shoe_id",
                "score",
                "cf_score",
                "content_score",
                "cf_weight",
                "reason_shoe_id",
            ],
        ).astype({"reason_shoe_id": "Int64"}),
        "shoe_similarities": pd.DataFrame(
            similarities, columns=["run_id", "shoe_id", "rank", "similar_shoe_id", "similarity"]
        ),
        "segment_recommendations": pd.DataFrame(
            segments, columns=["run_id", "primary_usage", "gender", "age_band", "rank", "shoe_id", "score"]
        ),
        # two offline evaluations: the views show the latest only
        "evaluation_runs": pd.DataFrame(
            {
                "evaluation_id": [1, 2],
                "started_at": pd.to_datetime(["2024-06-01 10:00", "2024-06-02 10:00"]),
                "finished_at": pd.to_datetime(["2024-06-01 10:01", "2024-06-02 10:01"]),
                "cutoff_date": [dt.date(2024, 5, 1), dt.date(2024, 5, 2)],
                "relevant_types": ["purchase", "add_to_wishlist,purchase"],
                "parameters": ["{}", "{}"],
                "n_train_interactions": [100, 110],
                "n_test_interactions": [20, 25],
            }
        ),
        "evaluations": pd.DataFrame(
            [
                (evaluation_id, model, group, k, metric, float(rng.random()), 10)
                for evaluation_id in (1, 2)
                for model in ("popularity", "hybrid")
                for group in ("warm", "cold", "all")
                for k in (5, 10)
                for metric in ("ndcg", "precision")
            ],
            columns=["evaluation_id", "model", "user_group", "k", "metric", "value", "n_users"],
        ),
    }


def build_fixture(db: Database) -> None:
    """Schema, a fixed reference date, and the fixture's rows."""
    create_schema(db)
    db.execute("update settings set reference_date = ?", [REFERENCE_DATE])
    for table, frame in fixture_tables().items():
        db.insert_df(table, frame)
    # one active merchandising rule (a boost), so the rule views hold a row and the lists apply it
    db.execute(
        "insert into merchandising_rules (rule_id, action, attribute, value, boost_factor, is_active)"
        " values (1, 'boost', 'brand', 'Peak', 1.2, true)"
    )
    add_messaging(db)


def add_messaging(db: Database) -> None:
    """Consent for every other customer (email; a few opted out later) and an outbox: messages sent
    40 and 3 days before the reference date (with suggestions), one queued, one suppressed."""
    users = [user_id for (user_id,) in db.query("select user_id from users order by user_id")]
    given, withdrawn = dt.datetime(2023, 1, 1), dt.datetime(2024, 1, 1)
    preferences = [
        (user_id, "email", "marketing", f"c{user_id}@example.com", True, "Europe/Berlin", given)
        for user_id in users[::2]
    ] + [
        (user_id, "email", "marketing", f"c{user_id}@example.com", False, None, withdrawn)
        for user_id in users[:6:2]
    ]
    frame = pd.DataFrame(
        preferences,
        columns=["user_id", "channel", "purpose", "address", "is_opted_in", "time_zone", "updated_at"],
    )
    db.insert_df("contact_preferences", frame.assign(source="test", recorded_at=given))
    rows = []
    for index, user_id in enumerate(users[1:9]):
        status = ["sent", "sent", "sent", "sent", "sent", "sent", "queued", "suppressed"][index]
        day = REFERENCE_DATE - dt.timedelta(days=40 if index < 3 else 3)
        kind = "replacement" if index % 2 else "care_reminder"
        rows.append(
            (f"{kind}:{user_id}:0:2020-01-01:{day}", user_id, kind, "marketing", day, status,
             "no_consent" if status == "suppressed" else None, day, day if status == "sent" else None,
             dt.datetime.combine(day, dt.time(9)), dt.datetime.combine(day, dt.time(9)))
        )  # fmt: skip
    columns = ["idempotency_key", "user_id", "kind", "purpose", "due_on", "status", "reason", "queued_on",
               "sent_on", "created_at", "updated_at"]  # fmt: skip
    db.insert_df("notifications", pd.DataFrame(rows, columns=columns))
    suggestions = [
        (key, rank, shoe_id) for key, *_ in rows[1::2] for rank, shoe_id in enumerate((101, 102), start=1)
    ]
    db.insert_df(
        "notification_suggestions", pd.DataFrame(suggestions, columns=["idempotency_key", "rank", "shoe_id"])
    )


@pytest.fixture(scope="module", params=ENGINES)
def fixture_db(request, tmp_path_factory):
    """The fixture database on each engine in turn, built once for the module."""
    url = fresh_url(request.param, request, tmp_path_factory.mktemp("assertions"))
    with Database(url) as db:
        build_fixture(db)
        yield db


# -- the assertions -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ASSERTIONS, ids=lambda path: path.stem)
def test_assertion_holds(fixture_db, path):
    rows = fixture_db.query(fixture_db.render_file(path))
    assert rows == [], f"{path.name} found {len(rows)} violating rows on {fixture_db.engine}, e.g. {rows[:5]}"


# -- the grain of every view, from its header ----------------------------------------------------
def grain_of(view: str) -> tuple[str, tuple[str, ...]]:
    """What a view's first line says one row is: ("exactly one" | "at most one" | "per key", key columns).

    ``-- one row per (a, b): ...`` or ``-- one row per purchase event (a, b) ...`` -> the columns in the
    first parenthesised list of plain names; ``-- one row per a: ...`` -> (a,); ``-- one row: ...`` ->
    exactly one row; ``-- zero or one row: ...`` -> at most one.
    """
    first = (view_path(view)).read_text(encoding="utf-8").splitlines()[0]
    match = _GRAIN.match(first)
    assert match, f"{view}.sql: the first line must say what one row is (-- one row per (...): ...)"
    rest = match.group("rest")
    if not rest.lstrip().startswith("per"):
        return ("exactly one" if match.group("count") == "one row" else "at most one"), ()
    keys = _KEY_LIST.search(rest) or _ONE_KEY.match(rest)
    assert keys, f"{view}.sql: no key columns in its grain line: {first!r}"
    return "per key", tuple(column.strip() for column in keys.group(1).split(","))


def view_path(view: str) -> Path:
    return next(path for path in view_files() if path.stem == view)


def grain_check(view: str, relation: str | None = None) -> str:
    """SQL returning the rows that break the view's grain: duplicated keys, null keys, too many rows."""
    relation = relation or view
    kind, keys = grain_of(view)
    if kind != "per key":
        bound = "<> 1" if kind == "exactly one" else "> 1"
        return f"select count(*) as n_rows from {relation} as checked having count(*) {bound}"
    columns = ", ".join(keys)
    nulls = " or ".join(f"{key} is null" for key in keys)
    return (
        f"select {columns}, count(*) as n_rows from {relation} as checked group by {columns} having count(*) > 1"
        f" union all select {columns}, 0 as n_rows from {relation} as checked where {nulls}"
    )


def test_every_view_states_its_grain():
    grains = {view: grain_of(view) for view in VIEWS}
    assert grains["user_recommendations"] == ("per key", ("user_id", "rank"))
    assert grains["current_settings"] == ("exactly one", ())
    assert grains["latest_model_run"] == ("at most one", ())
    # every key column is a column of the view
    with Database(":memory:") as db:
        create_schema(db)
        for view, (_kind, keys) in grains.items():
            columns = {name for name, *_ in db.query(f"describe {view}")}
            assert set(keys) <= columns, (view, keys)


@pytest.mark.parametrize("view", VIEWS)
def test_grain_is_unique_and_never_null(fixture_db, view):
    rows = fixture_db.query(grain_check(view))
    assert rows == [], f"{view} breaks its grain {grain_of(view)} on {fixture_db.engine}: {rows[:5]}"


@pytest.mark.parametrize("view", VIEWS)
def test_grain_check_catches_duplicated_rows(fixture_db, view):
    doubled = f"(select * from {view} union all select * from {view})"
    assert fixture_db.query(grain_check(view, doubled)), f"the grain check of {view} misses duplicated rows"


# What the fixture must contain for each rule to be tested: (what, a query counting it).
PRECONDITIONS = [
    ("a bought shoe among the latest run's raw recommendations",
     "select count(*) from recommendations inner join interactions"
     " on recommendations.user_id = interactions.user_id and recommendations.shoe_id = interactions.shoe_id"
     " where recommendations.run_id = 2 and interactions.interaction_type = 'purchase'"),
    ("an owned shoe among the latest run's similar shoes of an open window",
     "select count(*) from replacement_windows"
     " inner join shoe_similarities on replacement_windows.shoe_id = shoe_similarities.shoe_id"
     " inner join interactions on replacement_windows.user_id = interactions.user_id"
     " and shoe_similarities.similar_shoe_id = interactions.shoe_id"
     " where shoe_similarities.run_id = 2 and interactions.interaction_type = 'purchase'"
     " and replacement_windows.status <> 'ok'"),
    ("a pair replaced before its end of life",
     "select count(*) from purchases where next_purchase_on < end_of_life_on"),
    ("a pair replaced on the day of a reminder",
     "select count(*) from purchases where material = 'leather' and next_purchase_on = purchased_on + 30"),
    ("a purchase after the reference date",
     "select count(*) from interactions cross join current_settings"
     " where interaction_type = 'purchase' and occurred_at >= current_settings.reference_date + 1"),
    ("a material without a care schedule", "select count(*) from care_notifications where material = 'cork'"),
    ("a usage without a wear factor", "select count(*) from purchases where primary_usage = 'skating'"),
    ("an end of life on the reference date",
     "select count(*) from replacement_windows inner join current_settings"
     " on replacement_windows.end_of_life_on = current_settings.reference_date"),
    ("a window opening on the reference date",
     "select count(*) from replacement_windows inner join current_settings"
     " on replacement_windows.window_opens_on = current_settings.reference_date"),
]  # fmt: skip


def test_fixture_exercises_every_rule(fixture_db):
    """The fixture holds what the rules are about, so no assertion passes for want of data."""
    db = fixture_db
    empty = [path.stem for path in view_files() if db.scalar(f"select count(*) from {path.stem}") == 0]
    assert not empty, f"views empty in the fixture: {empty}"
    assert db.scalar("select run_id from latest_model_run") == 2
    statuses = {
        "care_notifications": {"upcoming", "due", "overdue"},
        "replacement_windows": {"ok", "nearing_end_of_life", "past_end_of_life"},
    }
    for view, allowed in statuses.items():
        assert {status for (status,) in db.query(f"select distinct status from {view}")} == allowed
    kinds = {kind for (kind,) in db.query("select distinct kind from user_messages")}
    assert kinds == {"care_reminder", "replacement"}
    missing = [what for what, sql in PRECONDITIONS if db.scalar(sql) == 0]
    assert not missing, f"the fixture lacks: {missing}"
