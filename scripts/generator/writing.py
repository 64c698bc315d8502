"""The CSV files: users.csv, shoes.csv, contacts.csv, and the lines of interactions.csv.

Byte for byte what the csv module writes (UTF-8, LF line ends, minimal quoting); the interactions,
by far the largest file, are formatted in bulk with numpy instead (:func:`format_interactions`).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

from scripts.generator.catalogue import Catalogue
from scripts.generator.users import Users
from scripts.generator.world import (
    BRAND_NAMES,
    COLOR_NAMES,
    DAY,
    GENDERS,
    INTERACTION_TYPES,
    MATERIALS,
    TYPES,
    USAGES,
)

USERS_HEADER = ("user_id", "age", "gender", "primary_usage")
SHOES_HEADER = (
    "shoe_id", "name", "brand", "type", "material", "color", "price", "care_instructions", "lifespan_days",
)  # fmt: skip
INTERACTIONS_HEADER = ("user_id", "shoe_id", "interaction_type", "timestamp")


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digits of non-negative integers, right-aligned, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers % 10 + ord("0")).astype(np.uint8)


def _id_field(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(characters, mask) of integer ids written without padding (the mask keeps the digits)."""
    width = len(str(int(values.max()))) if len(values) else 1
    n_digits = np.ones(len(values), dtype=np.int64)
    for power in range(1, width):
        n_digits += values >= 10**power
    return _digits(values, width), np.arange(width) >= (width - n_digits)[:, None]


def _timestamp_field(seconds: np.ndarray) -> np.ndarray:
    """(n, 20) ASCII characters of ``YYYY-MM-DDTHH:MM:SSZ`` for epoch seconds (years 1000-9999)."""
    days = seconds // DAY
    second_of_day = seconds - days * DAY
    date = days.astype("datetime64[D]")
    year = date.astype("datetime64[Y]")
    month = date.astype("datetime64[M]")
    chars = np.empty((len(seconds), 20), dtype=np.uint8)
    chars[:, 0:4] = _digits(year.astype(np.int64) + 1970, 4)
    chars[:, 5:7] = _digits((month - year).astype(np.int64) + 1, 2)
    chars[:, 8:10] = _digits((date - month).astype(np.int64) + 1, 2)
    chars[:, 11:13] = _digits(second_of_day // 3600, 2)
    chars[:, 14:16] = _digits(second_of_day // 60 % 60, 2)
    chars[:, 17:19] = _digits(second_of_day % 60, 2)
    chars[:, [4, 7]] = ord("-")
    chars[:, 10] = ord("T")
    chars[:, [13, 16]] = ord(":")
    chars[:, 19] = ord("Z")
    return chars


def format_interactions(user_id: np.ndarray, shoe_id: np.ndarray, kind: np.ndarray, at: np.ndarray) -> bytes:
    """CSV lines (no header) of interactions, byte for byte as the csv module writes them.

    No field here ever needs quoting, so each line is put together as a row of a byte matrix: one
    fixed-width slot per field, a mask of the characters that are really there, and the masked
    matrix read out row by row.
    """
    user_chars, user_mask = _id_field(user_id)
    shoe_chars, shoe_mask = _id_field(shoe_id)
    names = [name.encode() for name in INTERACTION_TYPES]
    type_width = max(len(name) for name in names)
    type_table = np.zeros((len(names), type_width), dtype=np.uint8)
    for k, name in enumerate(names):
        type_table[k, : len(name)] = np.frombuffer(name, dtype=np.uint8)
    type_mask_table = np.arange(type_width) < np.array([len(name) for name in names])[:, None]
    n = len(user_id)
    comma = np.full((n, 1), ord(","), dtype=np.uint8)
    chars = np.hstack(
        (
            user_chars,
            comma,
            shoe_chars,
            comma,
            type_table[kind],
            comma,
            _timestamp_field(at),
            np.full((n, 1), ord("\n"), dtype=np.uint8),
        )
    )
    always = np.ones((n, 1), dtype=bool)
    mask = np.hstack(
        (user_mask, always, shoe_mask, always, type_mask_table[kind], always, np.ones((n, 21), bool))
    )
    return chars[mask].tobytes()


def _price(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _open_csv(path: Path):
    return open(path, "w", encoding="utf-8", newline="")


def write_users(path: Path, users: Users) -> None:
    with _open_csv(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(USERS_HEADER)
        ages = users.age.tolist()
        for user_id, age, gender, usage in zip(
            users.user_id.tolist(), ages, users.gender, users.usage, strict=True
        ):
            writer.writerow((user_id, "" if age < 0 else age, GENDERS[gender], USAGES[usage]))


CONTACTS_HEADER = ("user_id", "channel", "address", "opted_in", "updated_at", "purpose", "time_zone")
CONTACT_TIME_ZONES = (  # (IANA name or "" for none given, share)
    ("Europe/Berlin", 0.35), ("Europe/London", 0.2), ("America/New_York", 0.15),
    ("America/Los_Angeles", 0.1), ("Asia/Tokyo", 0.05), ("", 0.15),
)  # fmt: skip
EMAIL_SHARE, EMAIL_OPT_IN, SMS_SHARE, SMS_OPT_IN, WITHDRAWN_SHARE = 0.8, 0.7, 0.15, 0.5, 0.05


def write_contacts(path: Path, users: Users, end: int, seed: int) -> int:
    """contacts.csv: consent per customer and channel, from a random stream of its own.

    ``numpy.random.default_rng([seed, 1])`` draws it, so the three other files are the same with or
    without it. 80% of customers give an email address (70% of them opt in to marketing), 15% a phone
    number (50% opt in); 5% of the email opt-ins withdraw later (a second, newer row). Returns the
    number of rows written.
    """
    rng = np.random.default_rng([seed, 1])
    n = len(users.user_id)
    zones = [name for name, _ in CONTACT_TIME_ZONES]
    zone = rng.choice(len(zones), size=n, p=[share for _, share in CONTACT_TIME_ZONES])
    has_email, email_in = rng.random(n) < EMAIL_SHARE, rng.random(n) < EMAIL_OPT_IN
    has_sms, sms_in = rng.random(n) < SMS_SHARE, rng.random(n) < SMS_OPT_IN
    withdrawn = rng.random(n) < WITHDRAWN_SHARE
    given = users.active_from + (rng.random(n) * (end - users.active_from) * 0.5).astype(np.int64)
    later = given + (rng.random(n) * (end - given)).astype(np.int64)

    def stamp(second: int) -> str:
        return dt.datetime.fromtimestamp(int(second), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    rows = 0
    with _open_csv(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CONTACTS_HEADER)
        for i, user_id in enumerate(users.user_id.tolist()):
            if has_email[i]:
                address = f"customer{user_id}@example.com"
                opted = "true" if email_in[i] else "false"
                row = (user_id, "email", address, opted, stamp(given[i]), "marketing", zones[zone[i]])
                writer.writerow(row)
                rows += 1
                if email_in[i] and withdrawn[i] and later[i] > given[i]:
                    writer.writerow((user_id, "email", address, "false", stamp(later[i]), "marketing", ""))
                    rows += 1
            if has_sms[i]:
                phone = f"+4915{user_id:08d}"
                opted = "true" if sms_in[i] else "false"
                writer.writerow((user_id, "sms", phone, opted, stamp(given[i]), "marketing", zones[zone[i]]))
                rows += 1
    return rows


def write_shoes(path: Path, shoes: Catalogue) -> None:
    with _open_csv(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(SHOES_HEADER)
        for i, shoe_id in enumerate(shoes.shoe_id.tolist()):
            writer.writerow(
                (
                    shoe_id,
                    shoes.names[i],
                    BRAND_NAMES[shoes.brand[i]],
                    TYPES[shoes.type[i]],
                    MATERIALS[shoes.material[i]],
                    COLOR_NAMES[shoes.color[i]],
                    _price(int(shoes.price_cents[i])),
                    shoes.care[i],
                    int(shoes.lifespan_days[i]),
                )
            )
