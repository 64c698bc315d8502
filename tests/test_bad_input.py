"""The loader against a corpus of malformed files (tests/bad_input/), on both engines.

The corpus is data, collected here by two generic tests:

- ``rejected/<case>/``: the files that differ from ``base/`` (usually one, broken in one place) and
  ``expect.txt``, one line per problem the loader must name: ``file[:line[:column]] reason``
  (``file:line`` for a whole-row problem, ``file`` alone for a whole-file one), plus directives:
  ``without <file>`` (the file is left out), ``refused in both modes`` (a file-level problem that
  --skip-invalid cannot skip), ``loads <key>`` (a valid row of the broken file that --skip-invalid
  must load: an id, or ``user_id,shoe_id`` for interactions).
- ``accepted/<case>/``: files that look odd but keep the contract (BOM, CRLF, quoted newlines, an
  extra column, ...) and ``expect.json``: a query and the rows (as text) it must return after the load.

Every case runs against one database per engine that already holds the base files. Strict mode must
refuse the case with exactly the expected locations and leave a dump of every table unchanged; the
same case with ``skip_invalid=True`` keeps every bad row in ``load_rejects`` with its reason and
loads the valid rows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import ENGINES, dump, fresh_url

from scripts.contract import CONTRACTS
from scripts.db import Database
from scripts.load import LoadError, load

CORPUS = Path(__file__).resolve().parent / "bad_input"
BASE = CORPUS / "base"
REJECTED = sorted(path.name for path in (CORPUS / "rejected").iterdir())
ACCEPTED = sorted(path.name for path in (CORPUS / "accepted").iterdir())
CONTRACT = {contract.file_name: contract for contract in CONTRACTS}
DATA_TABLES = ("load_rejects", "load_runs", "interactions", "shoes", "users")  # children first


# -- reading a case ------------------------------------------------------------------------------
class Expectation:
    """What ``expect.txt`` of a rejected case says."""

    def __init__(self, folder: Path):
        self.problems: list[tuple[str, str]] = []  # (location, reason substring)
        self.without: list[str] = []
        self.loads: list[str] = []
        self.whole_file = False
        for line in (folder / "expect.txt").read_text(encoding="utf-8").splitlines():
            if line.startswith("without "):
                self.without.append(line.removeprefix("without "))
            elif line.startswith("loads "):
                self.loads.append(line.removeprefix("loads "))
            elif line == "refused in both modes":
                self.whole_file = True
            elif line.strip():
                location, _, reason = line.partition(" ")
                self.problems.append((location, reason))

    @property
    def locations(self) -> set[str]:
        return {location for location, _ in self.problems}


def case_dir(kind: str, name: str, tmp_path: Path) -> Path:
    """The base files with the case's files laid over them (and the ``without`` ones left out)."""
    folder = tmp_path / name
    shutil.copytree(BASE, folder)
    source = CORPUS / kind / name
    for path in source.glob("*.csv"):
        shutil.copyfile(path, folder / path.name)
    if kind == "rejected":
        for missing in Expectation(source).without:
            (folder / missing).unlink()
    return folder


def location(problem) -> str:
    return (
        problem.file
        + (f":{problem.line}" if problem.line else "")
        + (f":{problem.column}" if problem.column else "")
    )


def reset(db: Database) -> None:
    """Back to the base data alone (a case only ever adds rows to it)."""
    db.execute("delete from load_rejects")
    db.execute("delete from load_runs")
    db.execute(
        "delete from interactions"
        " where occurred_at >= timestamp '2024-03-04 00:00:00' or user_id not in (1, 2)"
    )
    db.execute("delete from users where user_id not in (1, 2, 3)")
    db.execute("delete from shoes where shoe_id not in (10, 11)")


@pytest.fixture(scope="module", params=ENGINES)
def base_db(request, tmp_path_factory):
    """One database per engine for the module, holding the base files; ``.pristine`` is its dump."""
    # DuckDB in memory: the same transaction and rollback as a file, a third less time per load
    url = (
        ":memory:"
        if request.param == "duckdb"
        else fresh_url(request.param, request, tmp_path_factory.mktemp("x"))
    )
    with Database(url) as db:
        load(db, BASE)
        reset(db)
        db.pristine = dump(db)
        yield db


# -- the corpus ----------------------------------------------------------------------------------
def test_the_corpus_is_large_enough():
    assert len(REJECTED) >= 50
    assert len(ACCEPTED) >= 4
    for name in REJECTED:
        assert Expectation(CORPUS / "rejected" / name).problems, name


@pytest.mark.parametrize("name", REJECTED)
def test_a_malformed_file_is_refused_where_it_breaks(base_db, tmp_path, name):
    expected = Expectation(CORPUS / "rejected" / name)
    folder = case_dir("rejected", name, tmp_path)
    before = dump(base_db)
    with pytest.raises(LoadError) as caught:
        load(base_db, folder)
    error = caught.value
    # exactly the expected places, each with its reason, in the message the CLI prints
    assert {location(problem) for problem in error.problems} == expected.locations
    assert error.count == len(error.problems)
    message = str(error)
    for where, reason in expected.problems:
        found = [problem for problem in error.problems if location(problem) == where]
        assert any(reason in str(problem) for problem in found), (where, reason, [str(p) for p in found])
        assert f"\n{where}: " in message
    assert dump(base_db) == before  # nothing written, nothing created

    # the same files with --skip-invalid
    if expected.whole_file:
        with pytest.raises(LoadError):
            load(base_db, folder, skip_invalid=True)
        assert dump(base_db) == before
        return
    try:
        summary = load(base_db, folder, skip_invalid=True)
        rejects = base_db.query(
            "select file_name, line_number, column_name, reason from load_rejects where load_id = ?",
            [summary.load_id],
        )
        assert {f"{file}:{line}" for file, line, _, _ in rejects} == {
            ":".join(where.split(":")[:2]) for where in expected.locations
        }
        for where, reason in expected.problems:
            file, line, *column = where.split(":")
            name_of = CONTRACT[file].columns[int(column[0]) - 1].name if column else None
            assert any((f, str(n), c) == (file, line, name_of) and reason in r for f, n, c, r in rejects), (
                where,
                reason,
                rejects,
            )
        assert summary.rows_rejected == len({(file, line) for file, line, _, _ in rejects})
        # the valid rows of the broken file load
        for key in expected.loads:
            table = {"users.csv": "users", "shoes.csv": "shoes"}.get(file_of_key(expected), "interactions")
            if table == "interactions":
                user_id, shoe_id = map(int, key.split(","))
                sql, params = (
                    "select count(*) from interactions where user_id = ? and shoe_id = ?",
                    [user_id, shoe_id],
                )
            else:
                sql, params = f"select count(*) from {table} where {table[:-1]}_id = ?", [int(key)]
            assert base_db.scalar(sql, params) == 1, (table, key)
        # and the base data is still all there
        assert base_db.scalar("select count(*) from users where user_id in (1, 2, 3)") == 3
        assert base_db.scalar("select count(*) from interactions") >= 3
    finally:
        reset(base_db)
        assert dump(base_db) == base_db.pristine


def file_of_key(expected: Expectation) -> str:
    """The file a ``loads`` directive is about: the file of the last expected problem (the broken one)."""
    return expected.problems[-1][0].split(":")[0]


@pytest.mark.parametrize("name", ACCEPTED)
def test_an_odd_but_valid_file_loads_the_expected_values(base_db, tmp_path, name):
    expected = json.loads((CORPUS / "accepted" / name / "expect.json").read_text(encoding="utf-8"))
    try:
        summary = load(base_db, case_dir("accepted", name, tmp_path))
        assert summary.rows_rejected == 0
        got = [
            [None if value is None else str(value) for value in row] for row in base_db.query(expected["sql"])
        ]
        assert got == expected["rows"]
    finally:
        reset(base_db)
        assert dump(base_db) == base_db.pristine
