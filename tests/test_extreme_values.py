"""Extreme values against the views, on both engines (issue 17, item 1).

One shoe with ``lifespan_days`` 2147483647 and one purchase once broke purchases, care_notifications,
user_messages and business_overview for every customer (integer overflow of lifespan / wear factor),
and a lifespan of 100,000,000 days made care_notifications 11.5M rows. Now:

- the contract gives each numeric field the business's range (lifespan_days 1..3650, price
  0..1,000,000, age 0..120; ids within bigint), so such a file is refused;
- every view computes for files at the very bounds of the contract;
- and for a row beyond them that a database may hold from before (or a tiny wear factor a retailer
  set), the views still compute: the personal lifespan is capped at 100 years, and the care reminder
  series with it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scripts.contract import BIGINT_MAX, BIGINT_MIN, LIFESPAN_DAYS_MAX, PRICE_MAX
from scripts.db import Database, view_files
from scripts.load import LoadError, load

VIEWS = [path.stem for path in view_files()]
PERSONAL_LIFESPAN_CAP = 36525  # days: 100 years (views/purchases.sql)
USERS_HEADER = "user_id,age,gender,primary_usage\n"
SHOES_HEADER = "shoe_id,name,brand,type,material,color,price,care_instructions,lifespan_days\n"
EVENTS_HEADER = "user_id,shoe_id,interaction_type,timestamp\n"


def write(folder, users: str, shoes: str, events: str):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("users.csv", users), ("shoes.csv", shoes), ("interactions.csv", events)):
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def every_view_computes(db: Database) -> dict[str, int]:
    """Row count of every view (raises if one cannot be computed)."""
    return {view: db.scalar(f"select count(*) from {view}") for view in VIEWS}


@pytest.mark.parametrize("lifespan", ["2147483647", "100000000", str(LIFESPAN_DAYS_MAX + 1)])
def test_a_lifespan_beyond_ten_years_is_refused(db, tmp_path, lifespan):
    folder = write(
        tmp_path,
        USERS_HEADER + "1,30,,running\n",
        SHOES_HEADER + f"1,Forever,Acme,boot,leather,brown,100,,{lifespan}\n",
        EVENTS_HEADER + "1,1,purchase,2024-01-01\n",
    )
    with pytest.raises(LoadError) as refused:
        load(db, folder)
    [problem] = [problem for problem in refused.value.problems if problem.file == "shoes.csv"]
    assert (problem.line, problem.column_name) == (2, "lifespan_days")
    assert problem.reason == f"is out of range (1..{LIFESPAN_DAYS_MAX})"


def test_every_view_computes_at_the_bounds_of_the_contract(schema_db, tmp_path):
    db = schema_db  # create_schema's database (a copy: conftest.py)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    users = USERS_HEADER + "".join(
        f"{user_id},{age},,{usage}\n"
        for user_id, age, usage in (
            (BIGINT_MIN, 0, "formal"),  # the lowest wear factor seeded: 0.5, the longest personal life
            (BIGINT_MAX, 120, "running"),
            (1, "", "a usage without a wear factor"),
        )
    )
    shoes = SHOES_HEADER + "".join(
        f"{shoe_id},Shoe,Acme,boot,{material},brown,{price},,{lifespan}\n"
        for shoe_id, material, price, lifespan in (
            (BIGINT_MIN, "suede", f"{PRICE_MAX:.2f}", LIFESPAN_DAYS_MAX),  # the most frequent care
            (BIGINT_MAX, "a material without a schedule", "0", 1),
            (2, "leather", "0.01", LIFESPAN_DAYS_MAX),
        )
    )
    events = EVENTS_HEADER + "".join(
        f"{user_id},{shoe_id},{kind},{stamp}\n"
        for user_id in (BIGINT_MIN, BIGINT_MAX, 1)
        for shoe_id in (BIGINT_MIN, BIGINT_MAX, 2)
        for kind in ("view", "add_to_wishlist", "purchase")
        for stamp in ("1900-01-01T00:00:00Z", "1999-12-31T23:59:59Z", now)
    )
    summary = load(db, write(tmp_path, users, shoes, events))
    assert summary.rows_rejected == 0
    counts = every_view_computes(db)
    assert counts["purchases"] == 27
    # every reminder lies within a personal lifespan: at most (20 years / 45 days) + 1 a purchase
    assert counts["care_notifications"] <= 27 * (2 * LIFESPAN_DAYS_MAX // 45 + 1)
    assert db.scalar("select max(personal_lifespan_days) from purchases") == 2 * LIFESPAN_DAYS_MAX
    assert counts["business_overview"] == 1


@pytest.mark.parametrize("lifespan", [2**31 - 1, 100_000_000])
def test_views_compute_for_a_lifespan_stored_before_the_bounds(schema_db, lifespan):
    """A database loaded before the bound may hold any positive integer; a retailer may set any
    positive wear factor. The personal lifespan is capped at 100 years, the reminders with it."""
    db = schema_db  # create_schema's database (a copy: conftest.py)
    with db.transaction():
        db.execute("insert into users (user_id, age, primary_usage) values (1, 30, 'formal'), (2, 40, 'odd')")
        db.execute("insert into wear_factors (primary_usage, wear_factor) values ('odd', 0.000001)")
        db.execute(
            "insert into shoes (shoe_id, name, brand, type, material, color, price, lifespan_days)"
            " values (1, 'Forever', 'Acme', 'boot', 'leather', 'brown', 100, ?)",
            [lifespan],
        )
        db.execute(
            "insert into interactions (user_id, shoe_id, interaction_type, occurred_at) values"
            " (1, 1, 'purchase', timestamp '2020-01-01 00:00:00'),"
            " (1, 1, 'purchase', timestamp '1950-06-01 00:00:00'),"
            " (2, 1, 'purchase', timestamp '2021-01-01 00:00:00')"
        )
    counts = every_view_computes(db)
    assert counts["purchases"] == 3
    assert db.query("select distinct personal_lifespan_days from purchases") == [(PERSONAL_LIFESPAN_CAP,)]
    # leather: first after 30 days, then every 60, within 100 years (the 1950 pair stops at 2020)
    assert counts["care_notifications"] <= 3 * (PERSONAL_LIFESPAN_CAP // 60 + 1)
    assert db.scalar("select count(*) from user_messages where kind = 'care_reminder'") == 2
    assert counts["business_overview"] == 1
