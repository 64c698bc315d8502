"""A day's delivery for the refresh stage: customers changed the way a retailer's data changes.

Some existing customers come back with a few new events, some brand-new customers arrive with an
event or two. The delivery is what a retailer sends between full runs, and what ``scripts.load``
takes as an addition: ``users.csv`` with the new customers only (the customers already loaded stay
as they are), ``interactions.csv`` with the new events only (appended), no ``shoes.csv`` (the
catalogue is unchanged).

The new events are stamped on the reference day, no later than the newest event stored, so that
they count in ``interaction_matrix`` and move nobody else's decay anchor: the refresh changes the
changed customers' lists and nothing else.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NEW_CUSTOMER_SHARE = 0.2  # of the changed customers, brand-new ones
EVENTS_OF_EXISTING = (1, 3)  # new events of a returning customer, at least and at most
EVENTS_OF_NEW = (1, 2)  # events of a brand-new customer, at least and at most
STAMP_HOURS = 6  # the new events fall within this many hours before the anchor


@dataclass
class Changes:
    """What a delivery holds."""

    customers: int
    new_customers: int
    existing_customers: int
    events: int
    events_of_new: int


def split(customers: int) -> tuple[int, int]:
    """(brand-new, existing) customers of ``customers`` changed ones."""
    new = round(customers * NEW_CUSTOMER_SHARE)
    return new, customers - new


def write_changes(db, out_dir: Path | str, customers: int, seed: int = 42) -> Changes:
    """Write ``users.csv`` and ``interactions.csv`` changing ``customers`` customers of ``db``.

    Shoes are drawn by their popularity in the stored events (plus one, so that any shoe may be
    drawn), event kinds in the shares the stored events have; new customers copy the age, gender and
    usage of a random existing customer (the segments a retailer already has).

    Raises
    ------
    ValueError
        The database holds fewer customers than the existing ones to change.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_new, n_existing = split(customers)
    users = db.query_df("select user_id, age, gender, primary_usage from users order by user_id")
    if n_existing > len(users):
        raise ValueError(
            f"{customers:,} changed customers need {n_existing:,} existing ones; the database has {len(users):,}"
        )
    shoes = db.query_df("select shoe_id, count(*) as n from interactions group by shoe_id order by shoe_id")
    kinds = db.query_df(
        "select interaction_type, count(*) as n from interactions group by interaction_type"
        " order by interaction_type"
    )
    anchor = _anchor(db)

    # returning customers: a few new events each
    returning = rng.choice(users["user_id"].to_numpy(np.int64), size=n_existing, replace=False)
    returning_events = rng.integers(EVENTS_OF_EXISTING[0], EVENTS_OF_EXISTING[1] + 1, size=n_existing)
    # brand-new customers: the next ids, an existing customer's attributes, an event or two
    first_id = int(users["user_id"].max()) + 1
    new_ids = np.arange(first_id, first_id + n_new, dtype=np.int64)
    like = rng.integers(0, len(users), size=n_new)
    new_users = users.iloc[like][["age", "gender", "primary_usage"]].reset_index(drop=True)
    new_users.insert(0, "user_id", new_ids)
    new_events = rng.integers(EVENTS_OF_NEW[0], EVENTS_OF_NEW[1] + 1, size=n_new)

    user_ids = np.concatenate([np.repeat(returning, returning_events), np.repeat(new_ids, new_events)])
    popularity = shoes["n"].to_numpy(np.float64) + 1.0
    shoe_ids = rng.choice(
        shoes["shoe_id"].to_numpy(np.int64), size=len(user_ids), p=popularity / popularity.sum()
    )
    kind_share = kinds["n"].to_numpy(np.float64)
    types = rng.choice(
        kinds["interaction_type"].to_numpy(), size=len(user_ids), p=kind_share / kind_share.sum()
    )
    offsets = rng.integers(0, STAMP_HOURS * 3600, size=len(user_ids))
    stamps = [f"{anchor - dt.timedelta(seconds=int(seconds)):%Y-%m-%dT%H:%M:%S}Z" for seconds in offsets]

    _write_csv(out_dir / "users.csv", new_users)
    _write_csv(
        out_dir / "interactions.csv",
        pd.DataFrame(
            {"user_id": user_ids, "shoe_id": shoe_ids, "interaction_type": types, "timestamp": stamps}
        ),
    )
    return Changes(
        customers=customers,
        new_customers=n_new,
        existing_customers=n_existing,
        events=len(user_ids),
        events_of_new=int(new_events.sum()),
    )


def _anchor(db) -> dt.datetime:
    """The newest stored event, or the last second of the reference day if that comes first."""
    newest = db.scalar("select max(occurred_at) from interactions")
    reference_date = db.scalar("select reference_date from current_settings")
    if isinstance(reference_date, str):
        reference_date = dt.date.fromisoformat(reference_date)
    end_of_day = dt.datetime.combine(reference_date, dt.time(23, 59, 59))
    newest = pd.Timestamp(newest).to_pydatetime().replace(tzinfo=None)
    return min(newest, end_of_day)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    """The frame as a contract CSV file: a header row, empty cells for missing values."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(frame.columns)
        for row in frame.itertuples(index=False):
            writer.writerow(["" if _missing(value) else _cell(value) for value in row])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _cell(value: Any) -> Any:
    # an age read back as a float (a column with nulls) is written as the whole number it is
    return int(value) if isinstance(value, float) and value.is_integer() else value
