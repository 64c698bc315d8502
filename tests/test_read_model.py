"""The read model of the customer views on PostgreSQL (sql/serving.sql): never a stale row.

user_recommendations, user_messages and replacement_suggestions serve each customer from served_<view>
while it is fresh, and compute live whoever a change has made stale. Here, on the bundled PostgreSQL
database (the read model built by its fixture), each kind of change is made in a transaction that is
rolled back: the views must then show exactly what live_<view> computes, for the customers the change
touched and for the others, both before refresh_serving() rebuilds the read model and after; and a
customer nothing touched must still be read from the table (explain analyze: no live function ran).
"""

from __future__ import annotations

import json
import threading

import pytest

from scripts import serving
from scripts.db import Database, UsageError

VIEW_ORDER = {
    "user_recommendations": "user_id, rank",
    "user_messages": "message_id",
    "replacement_suggestions": "user_id, shoe_id, rank",
}
ALL_TRIGGERED_TABLES = (
    "select distinct event_object_table from information_schema.triggers"
    " where trigger_schema = current_schema() and trigger_name like 'serving_%'"
)


@pytest.fixture
def db(bundled_postgres_url):
    """The bundled PostgreSQL database in a transaction that is rolled back; the read model fresh."""
    with Database(bundled_postgres_url) as database, database.transaction(rollback=True):
        assert database.scalar("select serving_is_fresh()"), "the bundled fixture leaves it fresh"
        assert database.scalar("select count(*) from serving_stale_users") == 0
        yield database


def rows(db: Database, relation: str, users: list[int]) -> list[tuple]:
    view = relation.removeprefix("live_")
    listed = ", ".join(str(user) for user in users)
    return db.query(f"select * from {relation} where user_id in ({listed}) order by {VIEW_ORDER[view]}")


def assert_live(db: Database, users: list[int]) -> None:
    """Each customer view shows these customers exactly what its live view computes."""
    for view in serving.VIEWS:
        assert rows(db, view, users) == rows(db, f"live_{view}", users), f"{view} differs from live_{view}"


def live_calls(db: Database, user_id: int) -> int:
    """How many times a live function ran to answer one customer's top 10 (0: read from served_*)."""
    value = db.scalar(
        "explain (analyze, format json)"
        f" select * from user_recommendations where user_id = {user_id} order by rank limit 10"
    )
    plan = (json.loads(value) if isinstance(value, str) else value)[0]["Plan"]
    nodes, calls = [plan], 0
    while nodes:
        node = nodes.pop()
        nodes += node.get("Plans", [])
        if node["Node Type"] == "Function Scan" and node.get("Function Name", "").startswith("live_"):
            calls += node["Actual Loops"]
    return calls


def customers(db: Database) -> tuple[int, int, int]:
    """Three customers with a list, messages and suggestions where the data has them."""
    listed = db.scalar("select min(user_id) from served_user_recommendations")
    messaged = db.scalar("select min(user_id) from served_user_messages where kind = 'replacement'")
    other = db.scalar("select max(user_id) from served_user_recommendations")
    assert None not in (listed, messaged, other) and len({listed, messaged, other}) == 3
    return listed, messaged, other


def insert_refresh(db: Database, user_id: int, status: str) -> None:
    """A refresh (id 900) of the latest run holding ``user_id``'s list from rank 2 on at half the scores."""
    run_id = db.scalar("select run_id from latest_model_run")
    finished = "timestamp '2026-06-30 01:01'" if status == "complete" else "null"
    db.execute(
        "insert into model_refreshes (refresh_id, run_id, status, started_at, finished_at)"
        f" values (900, {run_id}, '{status}', timestamp '2026-06-30 01:00', {finished})"
    )
    db.execute(
        "insert into refreshed_recommendations (refresh_id, run_id, user_id, rank, shoe_id, score,"
        " cf_score, content_score, cf_weight, popularity_share, reason_shoe_id)"
        " select 900, run_id, user_id, rank, shoe_id, score / 2, cf_score, content_score, cf_weight,"
        f" popularity_share, reason_shoe_id from recommendations where run_id = {run_id} and user_id = {user_id}"
        " and rank > 1"
    )


def test_triggers_cover_every_table_the_live_views_read(db):
    """A table a live view reads without a trigger would change rows behind the read model's back."""
    read = db.query(
        """
        with recursive reads (object_id) as (
            select classes.oid from pg_class as classes
            where classes.relnamespace = current_schema()::regnamespace
                and classes.relname in ('live_user_recommendations', 'live_user_messages',
                                        'live_replacement_suggestions')
            union
            select dependencies.refobjid
            from reads
            inner join pg_rewrite as rules on rules.ev_class = reads.object_id
            inner join pg_depend as dependencies
                on dependencies.objid = rules.oid and dependencies.classid = 'pg_rewrite'::regclass
                    and dependencies.refclassid = 'pg_class'::regclass
        )
        select classes.relname from reads inner join pg_class as classes on classes.oid = reads.object_id
        where classes.relkind = 'r'
        """
    )
    tables = {name for (name,) in read}
    assert {"interactions", "shoes", "recommendations", "merchandising_rules"} <= tables
    assert {name for (name,) in db.query(ALL_TRIGGERED_TABLES)} == tables


def test_fresh_read_model_is_the_live_views(db):
    for view in serving.VIEWS:
        served = db.scalar(f"select count(*) from served_{view}")
        assert served > 0
        for left, right in ((view, f"live_{view}"), (f"live_{view}", view)):
            extra = db.scalar(
                f"select count(*) from (select * from {left} except all select * from {right}) as d"
            )
            assert extra == 0, f"{left} has {extra} rows {right} has not"
    listed, _, _ = customers(db)
    assert live_calls(db, listed) == 0


def test_a_purchase_marks_its_customer_only(db):
    listed, messaged, other = customers(db)
    top = db.scalar(f"select shoe_id from user_recommendations where user_id = {listed} and rank = 1")
    db.execute(
        "insert into interactions (user_id, shoe_id, interaction_type, occurred_at)"
        f" values ({listed}, {top}, 'purchase', timestamp '2026-06-30 12:00:00')"
    )
    assert db.query("select user_id from serving_stale_users") == [(listed,)]
    assert db.scalar("select serving_is_fresh()")
    assert top not in {
        shoe for (shoe,) in db.query(f"select shoe_id from user_recommendations where user_id = {listed}")
    }
    assert_live(db, [listed, messaged, other])
    assert live_calls(db, listed) == 1 and live_calls(db, other) == 0
    assert db.scalar("select refresh_serving()") == 1
    assert db.scalar("select count(*) from serving_stale_users") == 0
    assert live_calls(db, listed) == 0
    assert_live(db, [listed, messaged, other])


def test_a_new_customer_gets_their_segment_list_at_once(db):
    new_id = db.scalar("select max(user_id) + 1 from users")
    db.execute(
        "insert into users (user_id, age, gender, primary_usage)"
        " select ?, age, gender, primary_usage from users where user_id = (select min(user_id) from users)",
        [new_id],
    )
    assert db.query("select user_id from serving_stale_users") == [(new_id,)]
    sources = db.query(f"select distinct list_source from user_recommendations where user_id = {new_id}")
    assert sources == [("segment",)]
    assert_live(db, [new_id])
    db.scalar("select refresh_serving()")
    assert live_calls(db, new_id) == 0
    assert_live(db, [new_id])


@pytest.mark.parametrize(
    "change",
    [
        "insert into merchandising_rules (rule_id, action, attribute, value)"
        " select 900, 'exclude', 'brand', brand from shoes where shoe_id = {top}",
        "update shoes set availability = 'out_of_stock' where shoe_id = {top}",
        "update shoes set name = name || ' II' where shoe_id = {top}",
        "update settings set reference_date = reference_date + 40",
        "update settings set recommendations_shown = 5",
        "delete from model_runs where run_id = (select max(run_id) from model_runs) and false",
    ],
    ids=["exclude rule", "sold out", "renamed", "new reference date", "shorter lists", "no row changed"],
)
def test_a_shared_change_is_served_live_until_rebuilt(db, change):
    listed, messaged, other = customers(db)
    top = db.scalar(f"select shoe_id from user_recommendations where user_id = {listed} and rank = 1")
    before = rows(db, "user_recommendations", [listed])
    db.execute(change.format(top=top))
    changes_rows = "and false" not in change
    assert db.scalar("select serving_is_fresh()") is not changes_rows
    assert_live(db, [listed, messaged, other])
    if changes_rows and "reference_date" not in change:
        assert rows(db, "user_recommendations", [listed]) != before
    assert live_calls(db, other) == (1 if changes_rows else 0)
    db.scalar("select refresh_serving()")
    assert db.scalar("select serving_is_fresh()") and live_calls(db, other) == 0
    assert_live(db, [listed, messaged, other])


def test_an_update_to_the_same_values_changes_nothing(db):
    db.execute("update shoes set name = name")
    db.execute("update users set age = age where user_id < 10")
    assert db.scalar("select serving_is_fresh()")
    assert db.scalar("select count(*) from serving_stale_users") == 0
    db.execute("update users set age = age + 1 where user_id = (select min(user_id) from users)")
    assert db.scalar("select count(*) from serving_stale_users") == 1


def test_a_published_refresh_marks_its_customers(db):
    listed, _, other = customers(db)
    insert_refresh(db, listed, "running")
    db.execute("delete from serving_stale_users")  # as a refresh_serving() between the two would leave it
    db.execute(
        "update model_refreshes set status = 'complete', finished_at = started_at where refresh_id = 900"
    )
    assert db.query("select user_id from serving_stale_users") == [(listed,)]
    assert db.query(f"select distinct list_source from user_recommendations where user_id = {listed}") == [
        ("refresh",)
    ]
    assert_live(db, [listed, other])
    db.scalar("select refresh_serving()")
    assert live_calls(db, listed) == 0
    assert_live(db, [listed, other])


def test_the_bulk_form_is_the_live_view(db):
    """live_<view>_all(low, high), from which a full rebuild fills the read model in ranges of customers (a
    plan for many customers at once), gives exactly the live view's rows, its ranges together: with a refresh
    of one customer's list, a customer the run never saw (with a negative id), a boost, a cap per brand and
    per type, and a sold-out shoe, all in force at once."""
    listed, _, other = customers(db)
    insert_refresh(db, listed, "complete")
    db.execute(
        "insert into users (user_id, age, gender, primary_usage)"
        f" select -7, age, gender, primary_usage from users where user_id = {other}"
    )
    top = db.scalar(f"select shoe_id from user_recommendations where user_id = {other} and rank = 1")
    db.execute(
        "insert into merchandising_rules (rule_id, action, attribute, value, boost_factor, max_shoes) values"
        " (901, 'cap', 'brand', null, null, 2), (902, 'cap', 'type', null, null, 3)"
    )
    db.execute(
        "insert into merchandising_rules (rule_id, action, attribute, value, boost_factor)"
        f" select 903, 'boost', 'type', type, 1.5 from shoes where shoe_id = {top}"
    )
    db.execute(f"update shoes set availability = 'out_of_stock' where shoe_id = {top}")
    sources = db.query("select distinct list_source from live_user_recommendations order by list_source")
    assert sources == [("refresh",), ("run",), ("segment",)]
    middle = db.scalar("select percentile_disc(0.5) within group (order by user_id) from users")
    for view in serving.VIEWS:
        live = f"select * from live_{view}"
        # whole, and in three ranges (one customer has a negative id)
        ranges = [("null", 0), (0, middle), (middle, "null")]
        for bulk in (
            f"select * from live_{view}_all(null, null)",
            " union all ".join(f"(select * from live_{view}_all({low}, {high}))" for low, high in ranges),
        ):
            for left, right in ((bulk, live), (live, bulk)):
                extra = db.scalar(f"select count(*) from (({left}) except all ({right})) as d")
                assert extra == 0, f"{left} has {extra} rows the other has not"
        one_range = db.scalar(f"select count(*) from live_{view}_all({middle}, null)")
        assert 0 < one_range < db.scalar(f"select count(*) from ({live}) as v")


def test_a_mark_made_during_a_rebuild_survives_it(bundled_postgres_url):
    """refresh_serving() takes the marks it handles when it starts; a customer changed by another
    transaction meanwhile stays marked (and live) for the next call."""
    with Database(bundled_postgres_url) as first, Database(bundled_postgres_url) as second:
        listed = first.scalar("select min(user_id) from served_user_recommendations")
        shoe = first.scalar("select min(shoe_id) from shoes")
        try:
            with first.transaction(rollback=True):
                first.execute(f"insert into serving_stale_users values ({listed})")
                first.scalar("select refresh_serving()")  # took the mark, not committed yet
                done = threading.Event()

                def change() -> None:  # another writer, committing its own event
                    second.execute(
                        "insert into interactions (user_id, shoe_id, interaction_type, occurred_at)"
                        f" values ({listed}, {shoe}, 'view', timestamp '2001-01-01 00:00:00')"
                    )
                    done.set()

                writer = threading.Thread(target=change)
                writer.start()
                writer.join(timeout=2)
                assert not done.is_set(), "the writer's mark waits for the rebuild that took it"
            writer.join(timeout=30)
            assert done.is_set()
            assert second.query(f"select user_id from serving_stale_users where user_id = {listed}") == [
                (listed,)
            ]
        finally:
            second.execute(
                f"delete from interactions where user_id = {listed} and occurred_at = timestamp '2001-01-01 00:00:00'"
            )
            assert serving.refresh(second) == 1
        assert second.scalar("select count(*) from serving_stale_users") == 0


def test_duckdb_has_no_read_model(bundled_duckdb_url):
    with Database(bundled_duckdb_url, read_only=True) as db:
        assert serving.refresh(db) == 0
        assert not {"serving_state", "serving_stale_users"} & db.relations("BASE TABLE")


def test_a_failed_rebuild_leaves_the_run_published(request, tmp_path, caplog):
    """The rebuild runs after the run's commit: if it fails, the run stays complete and the views exact."""
    from helpers import TINY_PARAMS, fresh_url, load_tiny

    from scripts.score import score

    with Database(fresh_url("postgres", request, tmp_path)) as db:
        load_tiny(db)
        # the last view fails (the rebuild after a run is a full one, each view committed on its own)
        db.execute(
            "alter function serving_rebuild_view(text, bigint, bigint) rename to serving_rebuild_view_as_built;"
            " create function serving_rebuild_view(view_name text, low bigint, high bigint) returns bigint"
            " language plpgsql as $$ begin"
            " if view_name = 'user_messages' then raise exception 'canceling statement due to user request'; end if;"
            " return serving_rebuild_view_as_built(view_name, low, high); end $$"
        )
        summary = score(db, **TINY_PARAMS)
        assert db.scalar("select status from model_runs where run_id = ?", [summary["run_id"]]) == "complete"
        assert "read model not rebuilt (canceling statement" in caplog.text
        assert not db.scalar("select serving_is_fresh()")
        users = [user for (user,) in db.query("select user_id from users")]
        assert db.scalar("select count(*) from user_recommendations") > 0
        assert_live(db, users)


def test_a_full_rebuild_waits_for_another_one(bundled_postgres_url):
    """serving.refresh() holds the lock refresh_serving() takes: one rebuild at a time, on every connection."""
    with Database(bundled_postgres_url) as holder, Database(bundled_postgres_url) as db:
        finished = threading.Event()

        def rebuild() -> None:
            serving.refresh(db)
            finished.set()

        with holder.transaction():
            holder.execute(
                "select pg_advisory_xact_lock(hashtext('refresh_serving'), hashtext(current_schema()))"
            )
            holder.execute("update serving_state set version = version + 1")
            worker = threading.Thread(target=rebuild)
            worker.start()
            worker.join(timeout=2)
            assert not finished.is_set(), "a rebuild ran while another held the lock"
        worker.join(timeout=120)
        assert finished.is_set()
        assert db.scalar("select serving_is_fresh()")
        assert db.scalar("select count(*) from serving_stale_users") == 0


def test_rebuild_workers_from_the_environment(monkeypatch):
    monkeypatch.delenv(serving.ENV_REBUILD_WORKERS, raising=False)
    assert serving.rebuild_workers() == serving.REBUILD_WORKERS
    monkeypatch.setenv(serving.ENV_REBUILD_WORKERS, "3")
    assert serving.rebuild_workers() == 3
    for wrong in ("0", "two", "-1"):
        monkeypatch.setenv(serving.ENV_REBUILD_WORKERS, wrong)
        with pytest.raises(UsageError, match=serving.ENV_REBUILD_WORKERS):
            serving.rebuild_workers()
