"""The bulk paths of scripts/db.py on PostgreSQL give what the row paths give.

``query_df`` exports with ``COPY (select ...) TO STDOUT`` parsed by pyarrow; ``fetch_df`` is the
reference (psycopg2's rows). ``insert_df`` writes in binary COPY where every column holds what its
table column stores, else CSV with pyarrow's writer for numbers, booleans and timestamps; pandas'
``to_csv`` is the reference. Frames are compared with their dtypes, floats bit for bit; written rows
as PostgreSQL's text of each whole row (floats in their shortest exact form).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import psycopg2
import pytest
from helpers import BASE_INTERACTIONS, TINY_PARAMS, fresh_url, load_tiny, write_files

from scripts import db as db_module
from scripts.db import Database
from scripts.score import read_inputs, score

N = 2_000


def _floats(rng: np.random.Generator, n: int) -> np.ndarray:
    """Doubles of every magnitude, sign and last bit (from random bit patterns, finite only)."""
    bits = rng.integers(0, 2**63, n, dtype=np.int64) | (rng.integers(0, 2, n, dtype=np.int64) << 63)
    values = bits.view(np.float64)
    return np.where(np.isfinite(values), values, 0.5)


@pytest.fixture
def pg(request, tmp_path):
    with Database(fresh_url("postgres", request, tmp_path)) as database:
        yield database


@pytest.fixture
def typed_table(pg):
    """A table of every type the COPY path parses, with nulls, edge values and awkward text."""
    rng = np.random.default_rng(7)
    pg.execute(
        "create table typed (id bigint, small smallint, whole integer, big bigint, single real,"
        " double double precision, flag boolean, flag_null boolean, label text, code varchar(12),"
        " padded char(4), day date, moment timestamp, amount numeric(12, 4), always_null integer)"
    )
    doubles = _floats(rng, N)
    singles = rng.standard_normal(N).astype(np.float32) * np.float32(10.0) ** rng.integers(-30, 30, N)
    texts = ["", "a,b", 'say "hi"', "line\nbreak", "cr\ronly", "tab\there", "NULL", "\\N", "émoji 👟", " "]
    frame = pd.DataFrame(
        {
            "id": np.arange(N, dtype=np.int64),
            "small": rng.integers(-(2**15), 2**15, N),
            "whole": pd.array(rng.integers(-(2**31), 2**31, N), dtype="Int64"),
            "big": rng.integers(-(2**63), 2**63 - 1, N, dtype=np.int64),
            "single": singles,
            "double": doubles,
            "flag": rng.integers(0, 2, N).astype(bool),
            "flag_null": pd.array(rng.integers(0, 2, N).astype(bool), dtype="boolean"),
            "label": [texts[i % len(texts)] for i in range(N)],
            "code": [f"c{i}" for i in range(N)],
            "padded": ["ab"] * N,
            "day": [dt.date(1900, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 60_000, N)],
            "moment": pd.to_datetime(rng.integers(0, 2**41, N), unit="us"),
            "amount": [f"{v:.4f}" for v in rng.uniform(-1e6, 1e6, N)],
            "always_null": pd.array([pd.NA] * N, dtype="Int64"),
        }
    )
    # nulls in every column but the key
    frame = frame.astype(object).astype({"id": np.int64})
    for i, column in enumerate(frame.columns[1:]):
        frame.loc[frame.index % 7 == i % 7, column] = None
    pg.insert_df("typed", frame)  # text columns: pandas' writer
    pg.execute(
        "insert into typed (id, double, single) values (-1, 'NaN', 'Infinity'), (-2, '-Infinity', 'NaN')"
    )
    return pg


def test_copy_export_equals_the_rows_types_included(typed_table):
    sql = "select * from typed order by id"
    fast = typed_table.query_df(sql)
    assert typed_table._copy_out_df(sql, None) is not None  # the COPY path did run
    reference = typed_table.fetch_df(sql)
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)
    # floats bit for bit (assert_frame_equal treats NaN = NaN)
    for column in ("single", "double"):
        assert np.array_equal(
            fast[column].to_numpy().view(np.int64), reference[column].to_numpy().view(np.int64)
        )
    assert fast["flag"].dtype == object and set(fast["flag"].dropna()) == {True, False}
    assert fast["always_null"].isna().all()


def test_copy_export_with_parameters_repeated_names_and_percent(typed_table):
    sql = "select id, id, label, '100%' as pct from typed where id < ? and label like ? order by id"
    fast = typed_table.query_df(sql, [500, "%a%"])
    pd.testing.assert_frame_equal(fast, typed_table.fetch_df(sql, [500, "%a%"]), check_exact=True)
    assert list(fast.columns) == ["id", "id", "label", "pct"] and len(fast) > 0


@pytest.mark.parametrize(
    "sql",
    [
        # types the row path takes
        "select timestamptz '2024-05-01 12:00+02' as at, '{\"a\": 1}'::json as doc, array[1, 2] as items",
        "select * from typed where id > 10000000",  # no rows: the dtypes of an empty result
        "select 'infinity'::date as day, '0.5'::float8 as x",  # a value pyarrow does not parse
        "values (1, 'a')",  # not a select
    ],
)
def test_what_copy_does_not_cover_falls_back_to_the_rows(typed_table, sql):
    pd.testing.assert_frame_equal(typed_table.query_df(sql), typed_table.fetch_df(sql), check_exact=True)


def test_a_query_copy_cannot_wrap_leaves_the_transaction_usable(typed_table):
    with typed_table.transaction():
        gone = typed_table.query_df(
            "with gone as (delete from typed where id < 0 returning id) select id from gone"
        )
        assert sorted(gone["id"]) == [-2, -1]
        assert typed_table.scalar("select count(*) from typed") == N


def _numbers_frame() -> pd.DataFrame:
    """A frame of every type both fast writers take: extreme doubles, NaN and infinities, nulls."""
    rng = np.random.default_rng(11)
    doubles = _floats(rng, N)
    doubles[:3] = [np.nan, np.inf, -np.inf]
    frame = pd.DataFrame(
        {
            "run_id": np.int64(3),
            "user_id": rng.integers(0, 2**62, N, dtype=np.int64),
            "rank": (np.arange(N) % 50 + 1).astype(np.int32),
            "score": doubles,
            "single": rng.standard_normal(N).astype(np.float32),
            "reason_shoe_id": pd.array(np.where(np.arange(N) % 3 == 0, None, np.arange(N)), dtype="Int64"),
            "flag": pd.array(np.where(np.arange(N) % 5 == 0, None, np.arange(N) % 2 == 0), dtype="boolean"),
            "at": pd.to_datetime(rng.integers(0, 2**41, N), unit="us"),
        }
    )
    frame.loc[5, "score"] = -0.0
    return frame


_NUMBERS_COLUMNS = (
    "run_id bigint, user_id bigint, rank integer, score double precision, single real,"
    " reason_shoe_id bigint, flag boolean, at timestamp"
)


def _pandas_reference(pg: Database, table: str, frame: pd.DataFrame, chunk: int = 700) -> None:
    """``frame`` into ``table`` by pandas' CSV writer, chunk by chunk: the rows every fast path must give."""
    for start in range(0, len(frame), chunk):
        buffer = db_module._pandas_csv(frame.iloc[start : start + chunk])
        with pg.raw.cursor() as cur:
            cur.copy_expert(f"copy {table} ({', '.join(frame.columns)}) from stdin with (format csv)", buffer)


def _row_texts_differ(pg: Database, a: str, b: str) -> int:
    """Rows of ``a`` not in ``b`` or the other way round, compared as PostgreSQL's text of the row."""
    one_way = "select count(*) from (select cast(x as text) from {} as x except all select cast(y as text) from {} as y) as d"
    return pg.scalar(one_way.format(a, b)) + pg.scalar(one_way.format(b, a))


def _count_chunks(monkeypatch) -> list[int]:
    """The rows of each chunk binary COPY encodes, in order."""
    chunks = []
    encode = db_module._binary_rows

    def spy(fields, start, stop):
        chunks.append(stop - start)
        return encode(fields, start, stop)

    monkeypatch.setattr(db_module, "_binary_rows", spy)
    return chunks


@pytest.fixture
def copies(monkeypatch):
    """The COPY statements insert_df sends (their text), in order: one per frame, run for each chunk."""
    sent = []
    statement = db_module._copy_statement

    def spy(*args):
        sent.append(statement(*args))
        return sent[-1]

    monkeypatch.setattr(db_module, "_copy_statement", spy)
    return sent


def test_arrow_csv_writes_the_rows_pandas_writes(pg, monkeypatch, copies):
    frame = _numbers_frame()
    assert db_module._arrow_writable(frame)
    monkeypatch.setattr(db_module, "_binary_fields", lambda frame, types: None)  # the CSV writers only
    pg.execute(f"create table by_arrow ({_NUMBERS_COLUMNS}); create table by_pandas ({_NUMBERS_COLUMNS})")
    with pg.transaction():
        pg.insert_df("by_arrow", frame)
    assert copies and all(text.endswith("(format csv)") for text in copies)
    _pandas_reference(pg, "by_pandas", frame)
    assert _row_texts_differ(pg, "by_arrow", "by_pandas") == 0
    # the same rows, and NaN written as null by both
    assert (
        pg.scalar("select count(*) from (select * from by_arrow except all select * from by_pandas) as d")
        == 0
    )
    assert (
        pg.scalar("select count(*) from (select * from by_pandas except all select * from by_arrow) as d")
        == 0
    )
    back = pg.query_df("select * from by_arrow order by user_id")
    expected = frame.sort_values("user_id", ignore_index=True)
    assert np.array_equal(back["score"].isna(), expected["score"].isna())
    finite = np.isfinite(expected["score"].to_numpy())
    assert np.array_equal(back["score"].to_numpy()[finite], expected["score"].to_numpy()[finite])
    assert np.array_equal(back["single"].to_numpy(np.float32), expected["single"].to_numpy())


def test_binary_copy_writes_the_rows_pandas_writes(pg, monkeypatch, copies):
    frame = _numbers_frame()
    # the edges of each integer type, NaT, and times before 2000 and with microseconds
    frame.loc[0, "user_id"], frame.loc[1, "user_id"] = -(2**63), 2**63 - 1
    frame["rank"] = frame["rank"].astype(np.int64)  # an int64 frame column whose values fit integer
    frame.loc[2, "rank"], frame.loc[3, "rank"] = -(2**31), 2**31 - 1
    frame.loc[4, "at"] = pd.NaT
    frame.loc[6, "at"] = pd.Timestamp("1969-07-20 20:17:40.123456")
    pg.execute(f"create table by_binary ({_NUMBERS_COLUMNS}); create table by_pandas ({_NUMBERS_COLUMNS})")
    assert db_module._binary_fields(frame, pg._column_types("by_binary")) is not None
    monkeypatch.setattr(db_module, "_COPY_CHUNK_ROWS", 700)  # chunks cut through the nulls too
    chunks = _count_chunks(monkeypatch)
    with pg.transaction():
        assert pg.insert_df("by_binary", frame) == N
    assert copies == [f"copy by_binary ({', '.join(frame.columns)}) from stdin with (format binary)"]
    assert chunks == [700, 700, 600]
    # in the frame's order
    stored = pg.query_df("select user_id from by_binary order by ctid")["user_id"].to_numpy()
    assert np.array_equal(stored, frame["user_id"].to_numpy())
    _pandas_reference(pg, "by_pandas", frame)
    assert _row_texts_differ(pg, "by_binary", "by_pandas") == 0
    assert pg.scalar("select count(*) from by_binary where score is null") == 1  # the NaN
    assert pg.scalar("select count(*) from by_binary where cast(score as text) = '-0'") == 1
    assert pg.scalar("select count(*) from by_binary where at is null") == 1  # the NaT


def test_binary_copy_of_bytea_and_small_integers(pg, monkeypatch, copies):
    """The model state's shape: integers, then bytea cells as bytes or hex text, nulls and empty ones."""
    rng = np.random.default_rng(5)
    blobs = [rng.bytes(int(size)) for size in rng.integers(0, 3000, 300)]
    frame = pd.DataFrame(
        {
            "run_id": np.int64(2),
            "cells": [None if i % 11 == 0 else blob for i, blob in enumerate(blobs)],
            "position": np.arange(300, dtype=np.int32),
            "hexed": ["\\x" + blob.hex() if i % 7 else None for i, blob in enumerate(blobs)],
            "small": pd.array(np.where(np.arange(300) % 3 == 0, None, np.arange(300) - 150), dtype="Int16"),
        }
    )
    frame.loc[1, "cells"] = b""
    columns = "run_id bigint, cells bytea, position integer, hexed bytea, small smallint"
    pg.execute(f"create table by_binary ({columns}); create table by_pandas ({columns})")
    monkeypatch.setattr(db_module, "_COPY_CHUNK_ROWS", 128)
    chunks = _count_chunks(monkeypatch)
    pg.insert_df("by_binary", frame)
    # bytea last in binary COPY (fixed-width fields first)
    listed = "run_id, position, small, cells, hexed"
    assert copies == [f"copy by_binary ({listed}) from stdin with (format binary)"]
    assert chunks == [128, 128, 44]
    reference = frame.assign(cells=[None if c is None else "\\x" + c.hex() for c in frame["cells"]])
    _pandas_reference(pg, "by_pandas", reference)
    assert _row_texts_differ(pg, "by_binary", "by_pandas") == 0
    assert pg.scalar("select count(*) from by_binary where cells = ''::bytea") == 1


@pytest.mark.parametrize(
    "case",
    [
        "float32 into double",  # the CSV text of a float32 read as a double is another double
        "float64 into real",
        "int into double",
        "text",
        "nanoseconds",  # PostgreSQL rounds the text to microseconds
        "bytea in escape form",
        "timestamptz",
    ],
)
def test_what_binary_copy_does_not_hold_exactly_goes_as_csv(pg, copies, case):
    rng = np.random.default_rng(3)
    values = {
        "float32 into double": ("double precision", rng.random(50, dtype=np.float32)),
        "float64 into real": ("real", rng.random(50)),
        "int into double": ("double precision", rng.integers(0, 2**60, 50)),
        "text": ("text", [f"t{i}" for i in range(50)]),
        "nanoseconds": ("timestamp", pd.to_datetime(rng.integers(0, 2**60, 50), unit="ns")),
        "bytea in escape form": ("bytea", ["abc\\000"] * 50),
        "timestamptz": ("timestamptz", pd.to_datetime(rng.integers(0, 2**50, 50), unit="us")),
    }
    kind, column = values[case]
    frame = pd.DataFrame({"id": np.arange(50), "value": column})
    pg.execute(
        f"create table by_fast (id bigint, value {kind}); create table by_pandas (id bigint, value {kind})"
    )
    assert db_module._binary_fields(frame, pg._column_types("by_fast")) is None
    pg.insert_df("by_fast", frame)
    assert copies[-1].endswith("(format csv)")
    _pandas_reference(pg, "by_pandas", frame)
    assert _row_texts_differ(pg, "by_fast", "by_pandas") == 0


def test_an_integer_out_of_the_columns_range_is_refused_as_before(pg):
    pg.execute("create table narrow (value integer)")
    frame = pd.DataFrame({"value": np.array([1, 2**31], dtype=np.int64)})
    assert db_module._binary_fields(frame, pg._column_types("narrow")) is None
    with pytest.raises(psycopg2.errors.NumericValueOutOfRange):
        pg.insert_df("narrow", frame)


def test_text_frames_keep_the_pandas_writer():
    assert not db_module._arrow_writable(pd.DataFrame({"a": [1], "b": ["x"]}))
    assert not db_module._arrow_writable(
        pd.DataFrame({"a": pd.to_datetime(["2024-01-01"]).tz_localize("UTC")})
    )


def _row_paths(monkeypatch) -> None:
    """Force the reference paths: rows fetched, CSV written by pandas."""
    monkeypatch.setattr(Database, "query_df", Database.fetch_df)
    monkeypatch.setattr(db_module, "_binary_fields", lambda frame, types: None)
    monkeypatch.setattr(db_module, "_arrow_writable", lambda frame: False)


def test_read_inputs_is_the_same_on_both_paths_and_engines(
    bundled_postgres_url, bundled_duckdb_url, monkeypatch
):
    with Database(bundled_postgres_url) as pg:
        fast = read_inputs(pg)
        with monkeypatch.context() as patch:
            _row_paths(patch)
            rows = read_inputs(pg)
    with Database(bundled_duckdb_url, read_only=True) as duck:
        native = read_inputs(duck)
    for other in (rows, native):
        for name in ("user_ids", "shoe_ids", "user_segment"):
            assert np.array_equal(getattr(fast, name), getattr(other, name)), name
        for name in ("strength", "purchased", "wishlisted"):
            a, b = getattr(fast, name), getattr(other, name)
            assert a.dtype == b.dtype and (a != b).nnz == 0, name
        pd.testing.assert_frame_equal(fast.segments, other.segments)
        assert fast.shoe_fields == other.shoe_fields
        assert fast.reference_date == other.reference_date


STATE_TABLES = ("model_run_shoes", "model_run_segments", "model_run_users")


def _state_texts(pg: Database) -> dict[str, list[str]]:
    """The model state of the one run kept (a run prunes the others'), each row as text without run_id."""
    texts = {}
    for table in STATE_TABLES:
        columns = [c for c in pg.query_df(f"select * from {table} limit 0").columns if c != "run_id"]
        rows = pg.query(f"select cast(row({', '.join(columns)}) as text) from {table} order by 1")
        texts[table] = [text for (text,) in rows]
    return texts


def test_a_run_writes_the_same_recommendations_on_both_paths(pg, monkeypatch, copies):
    load_tiny(pg)
    copies.clear()
    fast = score(pg, **TINY_PARAMS)["run_id"]
    # the run's tables in binary COPY, the model state's bytea too; the segments' rows hold text
    forms = {text.split()[1]: text.rsplit(" ", 1)[-1] for text in copies}
    assert set(forms) == {"recommendations", "shoe_similarities", "segment_recommendations", *STATE_TABLES}
    text = {"segment_recommendations": "csv)", "model_run_segments": "csv)"}
    assert forms == {**dict.fromkeys(forms, "binary)"), **text}
    fast_state = _state_texts(pg)
    assert all(fast_state.values())
    with monkeypatch.context() as patch:
        _row_paths(patch)
        slow = score(pg, **TINY_PARAMS)["run_id"]
    assert _state_texts(pg) == fast_state
    for table in ("recommendations", "shoe_similarities", "segment_recommendations"):
        columns = [c for c in pg.query_df(f"select * from {table} limit 0").columns if c != "run_id"]
        listed = ", ".join(columns)
        one_run = f"select {listed} from {table} where run_id = ?"
        difference = f"{one_run} except all {one_run}"
        assert pg.scalar(f"select count(*) from {table} where run_id = ?", [fast]) > 0
        assert pg.query(difference, [fast, slow]) == [] and pg.query(difference, [slow, fast]) == [], table


# ---------------------------------------------------------------------------------------------
# the DuckDB loader's memory bound
# ---------------------------------------------------------------------------------------------


def _key_constraints(db: Database) -> list:
    if db.is_postgres:
        sql = (
            "select constraint_type from information_schema.table_constraints"
            " where table_schema = current_schema() and table_name = 'interactions'"
            " and constraint_type = 'PRIMARY KEY'"
        )
    else:
        sql = (
            "select constraint_type from duckdb_constraints()"
            " where table_name = 'interactions' and constraint_type = 'PRIMARY KEY'"
        )
    return db.query(sql)


def test_the_merge_keeps_the_interactions_key_without_an_index_on_duckdb(db, tmp_path):
    from scripts.load import load

    # PostgreSQL keeps its primary key; DuckDB has none (no ART index of every event)
    create_schema_for(db)
    assert len(_key_constraints(db)) == (1 if db.is_postgres else 0)
    # an event twice in the file, and the whole file again: each event is stored once
    twice = BASE_INTERACTIONS + BASE_INTERACTIONS.splitlines(keepends=True)[1]
    first = load(db, write_files(tmp_path / "a", interactions_csv=twice))
    assert first.files["interactions.csv"].loaded == 3
    assert first.files["interactions.csv"].duplicates == 1
    again = load(db, write_files(tmp_path / "b", interactions_csv=twice))
    assert again.files["interactions.csv"].loaded == 0
    assert again.files["interactions.csv"].unchanged == 3
    key = "user_id, shoe_id, interaction_type, occurred_at"
    assert db.scalar(f"select count(*) from (select distinct {key} from interactions) as events") == 3
    assert db.scalar("select count(*) from interactions") == 3


def create_schema_for(db: Database) -> None:
    from scripts.schema import create_schema

    create_schema(db)


def test_a_duckdb_load_runs_within_its_memory_limit_and_restores_it(tmp_path, monkeypatch):
    from scripts import load as load_module
    from scripts.db import UsageError

    seen = []
    stage_file = load_module._stage_file

    def spy(db, *args, **kwargs):
        seen.append(db.scalar("select current_setting('memory_limit')"))
        return stage_file(db, *args, **kwargs)

    monkeypatch.setattr(load_module, "_stage_file", spy)
    monkeypatch.setenv(load_module.ENV_LOAD_MEMORY_LIMIT, "300MB")
    with Database(str(tmp_path / "bounded.duckdb")) as db:
        create_schema_for(db)
        before = db.scalar("select current_setting('memory_limit')")
        load_module.load(db, write_files(tmp_path / "files"))
        assert seen and all(setting.startswith("286") for setting in seen)  # 300 MB = 286.1 MiB
        assert db.scalar("select current_setting('memory_limit')") == before
        monkeypatch.setenv(load_module.ENV_LOAD_MEMORY_LIMIT, "lots; drop table users")
        with pytest.raises(UsageError):
            load_module.load(db, write_files(tmp_path / "files"))
        assert db.scalar("select count(*) from users") == 3
