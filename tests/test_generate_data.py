"""The synthetic data generator: reproducible, in the contract, and with the structure evaluation needs.

The structure checks read the bundled ``data/*.csv`` (which the first test proves the generator makes
at its defaults); the rest run the generator on small sizes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import HEADERS

from scripts.generate_data import INTERACTION_TYPES, format_interactions, generate, main, options, window

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "data"
FILES = ("users.csv", "shoes.csv", "interactions.csv")
END = pd.Timestamp("2026-06-30 23:59:59", tz="UTC")
USAGES = {"running", "walking", "casual", "hiking", "training", "basketball", "formal"}
SCHEDULED_MATERIALS = {"leather", "suede", "mesh", "canvas", "knit", "synthetic", "gore-tex", "rubber"}


# ------------------------------------------------------------------------------------------------
# Reproducibility
# ------------------------------------------------------------------------------------------------


def test_command_at_defaults_reproduces_bundled_data(tmp_path):
    assert main(["--out", str(tmp_path), "--no-progress"]) == 0
    for name in (*FILES, "contacts.csv"):
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name
    assert not list(tmp_path.glob(".*.tmp"))  # temporary files renamed or removed


def test_command_exits_with_0(tmp_path):
    small = ["--users", "40", "--shoes", "10", "--no-progress"]
    assert main(["--out", str(tmp_path / "main"), *small]) == 0
    process = subprocess.run(
        [sys.executable, "-m", "scripts.generate_data", "--out", str(tmp_path / "process"), *small],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    for name in FILES:
        assert (tmp_path / "process" / name).read_bytes() == (tmp_path / "main" / name).read_bytes(), name


def test_options_are_the_arguments_of_generate(tmp_path):
    # the counts the command logs, for a caller that wants them: generate(**options(argv))
    counts = generate(**options(["--out", str(tmp_path), "--users", "40", "--shoes", "10", "--no-progress"]))
    assert (counts["users"], counts["shoes"]) == (40, 10)
    assert counts["interactions"] == (tmp_path / "interactions.csv").read_bytes().count(b"\n") - 1


def test_demo_profile_named_is_the_default(tmp_path):
    main(["--out", str(tmp_path), "--profile", "demo", "--no-progress"])
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def run(folder, seed):
        generate(tmp_path / folder, users=300, shoes=60, seed=seed, progress=False)
        return [(tmp_path / folder / name).read_bytes() for name in FILES]

    first, again, other = run("a", 7), run("b", 7), run("c", 8)
    assert first == again
    assert all(mine != theirs for mine, theirs in zip(first, other, strict=True))


def test_worker_processes_do_not_change_the_files(tmp_path):
    # 2,000 shoes make batches of 1,000 users: three batches, spread over two processes
    kwargs = dict(users=2500, shoes=2000, interactions=6000, seed=3, progress=False)
    one = generate(tmp_path / "one", workers=1, **kwargs)
    two = generate(tmp_path / "two", workers=2, **kwargs)
    assert one == two
    for name in FILES:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_interactions_option_is_honoured_approximately(tmp_path):
    asked = generate(tmp_path / "asked", users=400, shoes=80, interactions=12_000, progress=False)
    assert 0.9 * 12_000 <= asked["interactions"] <= 1.1 * 12_000
    lines = (tmp_path / "asked" / "interactions.csv").read_bytes().count(b"\n") - 1
    assert lines == asked["interactions"]
    default = generate(tmp_path / "default", users=400, shoes=80, progress=False)
    per_user = default["interactions"] / 400
    assert 18 <= per_user <= 26
    assert (
        generate(tmp_path / "none", users=50, shoes=10, interactions=0, progress=False)["interactions"] == 0
    )


def test_end_date_and_months_bound_the_timestamps(tmp_path):
    generate(tmp_path, users=200, shoes=40, end_date="2024-02-29", months=6, progress=False)
    at = pd.to_datetime(pd.read_csv(tmp_path / "interactions.csv")["timestamp"], utc=True)
    assert at.min() >= pd.Timestamp("2023-09-01", tz="UTC")
    assert at.max() <= pd.Timestamp("2024-02-29 23:59:59", tz="UTC")
    assert at.max() >= pd.Timestamp("2024-02-15", tz="UTC")  # the window really ends there


def test_window_is_whole_calendar_months_ending_with_the_end_date():
    start, end = window(dt.date(2026, 6, 30), 18)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert epoch + dt.timedelta(seconds=start) == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert epoch + dt.timedelta(seconds=end) == dt.datetime(2026, 6, 30, 23, 59, 59, tzinfo=dt.UTC)


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    for option in (
        "--out",
        "--profile",
        "--users",
        "--shoes",
        "--interactions",
        "--seed",
        "--end-date",
        "--months",
        "--workers",
    ):
        assert option in shown


def test_format_interactions_writes_what_csv_writer_writes():
    rng = np.random.default_rng(0)
    n = 5000
    user_id = rng.integers(0, 10 ** rng.integers(1, 12, n))
    shoe_id = np.concatenate(([0, 9, 10, 99, 100], rng.integers(1, 10**6, n - 5)))
    kind = rng.integers(0, len(INTERACTION_TYPES), n)
    at = np.concatenate(
        ([0, 951_782_400, 4_102_444_799, 1_782_863_999], rng.integers(-(10**9), 4 * 10**9, n - 4))
    )
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    for row in zip(user_id.tolist(), shoe_id.tolist(), kind.tolist(), at.tolist(), strict=True):
        moment = dt.datetime.fromtimestamp(row[3], dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        writer.writerow((row[0], row[1], INTERACTION_TYPES[row[2]], moment))
    assert format_interactions(user_id, shoe_id, kind, at) == expected.getvalue().encode()


# ------------------------------------------------------------------------------------------------
# The bundled data: the contract
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled():
    """The bundled files as text-only frames (empty cells stay ''), plus parsed timestamps."""
    frames = {
        name: pd.read_csv(DATA_DIR / name, dtype=str, keep_default_na=False, encoding="utf-8")
        for name in FILES
    }
    users, shoes, interactions = frames["users.csv"], frames["shoes.csv"], frames["interactions.csv"]
    users = users.assign(user_id=users.user_id.astype("int64"))
    shoes = shoes.assign(
        shoe_id=shoes.shoe_id.astype("int64"),
        price_value=shoes.price.astype(float),
        lifespan=shoes.lifespan_days.astype("int64"),
    )
    interactions = interactions.assign(
        user_id=interactions.user_id.astype("int64"),
        shoe_id=interactions.shoe_id.astype("int64"),
        occurred_at=pd.to_datetime(interactions.timestamp, format="%Y-%m-%dT%H:%M:%SZ", utc=True),
    )
    return users, shoes, interactions


def test_files_are_utf8_without_bom_with_lf_and_minimal_csv_quoting():
    for name in FILES:
        raw = (DATA_DIR / name).read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf"), name
        assert b"\r" not in raw, name
        text = raw.decode("utf-8")
        # what the csv module writes back from what it reads is the file itself
        rewritten = io.StringIO()
        csv.writer(rewritten, lineterminator="\n").writerows(csv.reader(io.StringIO(text, newline="")))
        assert rewritten.getvalue() == text, name
    assert sum((DATA_DIR / name).stat().st_size for name in FILES) < 4 * 1024 * 1024


def test_columns_of_the_contract_in_order(bundled):
    users, shoes, interactions = bundled
    headers = {
        name: next(csv.reader(io.StringIO((DATA_DIR / name).read_text(encoding="utf-8")))) for name in FILES
    }
    assert headers == HEADERS  # the contract's columns, in order (tests/helpers.py)


def test_users_in_range(bundled):
    users, _, _ = bundled
    assert users.user_id.is_unique
    given_age = users.age[users.age != ""]
    assert given_age.str.fullmatch(r"[0-9]+").all()
    assert given_age.astype(int).between(10, 110).all()
    assert 0.01 <= (users.age == "").mean() <= 0.10  # some unknown ages
    assert 0.01 <= (users.gender == "").mean() <= 0.10  # some unknown genders
    assert {"female", "male"} <= set(users.gender)
    assert set(users.primary_usage) == USAGES
    share = users.primary_usage.value_counts(normalize=True)
    assert share["casual"] > share["formal"] and share["running"] > share["basketball"]


def test_shoes_in_range(bundled):
    _, shoes, _ = bundled
    assert shoes.shoe_id.is_unique
    for column in ("name", "brand", "type", "material", "color", "care_instructions"):
        assert (shoes[column].str.strip() != "").all(), column
    assert shoes.price.str.fullmatch(r"[0-9]+\.[0-9]{2}").all()
    assert (shoes.price_value >= 0).all()
    assert shoes.lifespan_days.str.fullmatch(r"[0-9]+").all() and (shoes.lifespan > 0).all()
    materials = set(shoes.material)
    assert materials >= SCHEDULED_MATERIALS
    assert 1 <= len(materials - SCHEDULED_MATERIALS) <= 2  # a material without a care schedule
    assert all(material == material.lower() for material in materials)
    assert 12 <= shoes.brand.nunique() <= 15
    assert shoes.type.nunique() >= 8


def test_interactions_in_range_and_referencing_users_and_shoes(bundled):
    users, shoes, interactions = bundled
    assert set(interactions.interaction_type) == set(INTERACTION_TYPES)
    assert interactions.timestamp.str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").all()
    assert interactions.user_id.isin(users.user_id).all()
    assert interactions.shoe_id.isin(shoes.shoe_id).all()
    # the database keys events by (user, shoe, type, time): no duplicates to lose on loading
    assert not interactions.duplicated(["user_id", "shoe_id", "interaction_type", "timestamp"]).any()


# ------------------------------------------------------------------------------------------------
# The bundled data: the structure
# ------------------------------------------------------------------------------------------------


def test_timestamps_cover_about_18_months_ending_on_the_end_date(bundled):
    _, _, interactions = bundled
    assert interactions.occurred_at.max() <= END
    assert interactions.occurred_at.max() >= END - pd.Timedelta(days=2)
    assert interactions.occurred_at.min() >= pd.Timestamp("2025-01-01", tz="UTC")
    assert interactions.occurred_at.min() <= pd.Timestamp("2025-01-08", tz="UTC")
    # activity throughout: every month of the window has interactions
    assert interactions.occurred_at.dt.strftime("%Y-%m").nunique() == 18


def test_funnel_views_then_wishlists_then_purchases(bundled):
    _, _, interactions = bundled
    n = interactions.interaction_type.value_counts()
    assert n["view"] > n["add_to_wishlist"] > n["purchase"] > 0
    assert 0.10 <= n["add_to_wishlist"] / n["view"] <= 0.20  # about 100 : 15 : 5
    assert 0.03 <= n["purchase"] / n["view"] <= 0.07


def _preceded(interactions, later_type, earlier_types):
    """Share of ``later_type`` events with an earlier event of ``earlier_types`` on the same (user, shoe)."""
    later = interactions[interactions.interaction_type == later_type].reset_index()
    earlier = interactions[interactions.interaction_type.isin(earlier_types)]
    pairs = later.merge(earlier, on=["user_id", "shoe_id"], suffixes=("", "_before"))
    return pairs.loc[pairs.occurred_at_before < pairs.occurred_at, "index"].nunique() / len(later)


def test_purchases_and_wishlists_mostly_follow_a_view(bundled):
    _, _, interactions = bundled
    assert _preceded(interactions, "purchase", ["view", "add_to_wishlist"]) >= 0.8
    assert _preceded(interactions, "purchase", ["view"]) >= 0.8
    assert _preceded(interactions, "add_to_wishlist", ["view"]) >= 0.8
    # ... but not all: some purchases come without any trace before (bought in a shop)
    assert _preceded(interactions, "purchase", ["view", "add_to_wishlist"]) < 1.0


def _events_with_user_and(bundled, interaction_type, shoe_column):
    """The events of one type, with the user's columns and one column of the shoe."""
    users, shoes, interactions = bundled
    events = interactions[interactions.interaction_type == interaction_type]
    return events.merge(users, on="user_id").merge(shoes[["shoe_id", shoe_column]], on="shoe_id")


def test_segments_prefer_their_own_kind_of_shoe(bundled):
    purchases = _events_with_user_and(bundled, "purchase", "type")
    own_types = {
        "running": {"running", "trail running"},
        "hiking": {"hiking boot", "trail running"},
        "basketball": {"basketball"},
        "formal": {"oxford", "loafer", "chelsea boot"},
    }
    for usage, types in own_types.items():
        overall = purchases.type.isin(types).mean()
        of_segment = purchases[purchases.primary_usage == usage].type.isin(types).mean()
        assert of_segment >= 2 * overall, usage
        assert of_segment < 0.95, usage  # a preference, not a rule: they buy other things too


def test_personal_taste_beyond_the_segment(bundled):
    # users' views lean to their own favourite brands: the top brand's share of a user's views is
    # clearly higher than after shuffling the views among users of the same primary usage
    views = _events_with_user_and(bundled, "view", "brand")

    def mean_top_brand_share(frame):
        counts = frame.groupby(["user_id", "brand"]).size()
        total, top = counts.groupby(level=0).sum(), counts.groupby(level=0).max()
        return (top[total >= 10] / total[total >= 10]).mean()

    rng = np.random.default_rng(0)
    shuffled = views.assign(
        user_id=views.groupby("primary_usage").user_id.transform(lambda ids: rng.permutation(ids.to_numpy()))
    )
    assert mean_top_brand_share(views) >= mean_top_brand_share(shuffled) + 0.05


def test_popularity_is_skewed(bundled):
    _, shoes, interactions = bundled
    per_shoe = interactions.groupby("shoe_id").size().sort_values(ascending=False)
    top_tenth = per_shoe.head(len(shoes) // 10).sum() / len(interactions)
    assert 0.25 <= top_tenth <= 0.8


def test_cold_users_and_cold_shoes_exist(bundled):
    users, shoes, interactions = bundled
    cold_users = (~users.user_id.isin(interactions.user_id)).mean()
    cold_shoes = (~shoes.shoe_id.isin(interactions.shoe_id)).sum()
    assert 0.03 <= cold_users <= 0.15
    assert 1 <= cold_shoes <= 0.1 * len(shoes)
    # users who start late: first interaction in the last 20% of the window (cold in a time split)
    start = interactions.occurred_at.min()
    late = start + 0.8 * (interactions.occurred_at.max() - start)
    first = interactions.groupby("user_id").occurred_at.min()
    assert (first > late).sum() >= 0.03 * len(users)


def test_some_purchased_shoes_near_or_past_their_lifespan(bundled):
    _, shoes, interactions = bundled
    purchases = interactions[interactions.interaction_type == "purchase"].merge(shoes, on="shoe_id")
    worn = (END - purchases.occurred_at).dt.days / purchases.lifespan
    assert (worn >= 1).sum() >= 20  # past the end of their life
    assert ((worn >= 0.85) & (worn < 1)).sum() >= 20  # within 15% of it
    assert (worn < 0.5).mean() > 0.3  # and many recent ones


def test_some_users_buy_the_same_shoe_again_much_later(bundled):
    _, _, interactions = bundled
    purchases = interactions[interactions.interaction_type == "purchase"]
    spans = purchases.groupby(["user_id", "shoe_id"]).occurred_at.agg(["count", "min", "max"])
    again = spans[spans["count"] >= 2]
    assert 1 <= len(again) <= 0.1 * len(spans)
    assert (again["max"] - again["min"]).dt.days.median() >= 90


def test_lifespan_and_price_depend_on_type_and_material(bundled):
    _, shoes, _ = bundled
    life = shoes.groupby("type").lifespan.median()
    assert life["oxford"] > 2 * life["running"] and life["hiking boot"] > 2 * life["running"]
    leather, mesh = (shoes.material == "leather"), (shoes.material == "mesh")
    assert shoes[leather].lifespan.median() > shoes[mesh].lifespan.median()
    price = shoes.groupby("type").price_value.median()
    assert price["hiking boot"] > 2 * price["sandal"]


def test_care_instructions_depend_on_material_and_exercise_csv_quoting(bundled):
    _, shoes, _ = bundled
    care = shoes.care_instructions
    assert care.str.contains(",").any() and care.str.contains('"').any() and care.str.contains("\n").any()
    assert (care.str.contains(",") & care.str.contains('"') & care.str.contains("\n")).any()
    # the opening sentence of the care text belongs to one material only
    opening = care.str.split(r"[.;:]", n=1, regex=True).str[0]
    assert (shoes.groupby(opening).material.nunique() == 1).all()
    assert care[shoes.material == "suede"].str.contains("suede", case=False).all()


def test_names_built_from_brand_and_type(bundled):
    _, shoes, _ = bundled
    assert all(name.startswith(brand + " ") for name, brand in zip(shoes.name, shoes.brand, strict=True))
    gtx = shoes.name.str.contains(r"\bGTX\b")
    assert (shoes.material[gtx] == "gore-tex").all() and gtx.any()
    assert not shoes.name.str.contains(re.escape('"')).any()
