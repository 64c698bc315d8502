"""A newcomer's mistakes get one line, the fix, and exit code 2: never a traceback, never a stray file.

Each command runs as a real subprocess from a scratch working directory, as a newcomer would run it.
"""

from __future__ import annotations

import subprocess

import pytest
from helpers import run_module

from scripts.db import ROOT, Database

BUNDLED = ROOT / "data"


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if " ERROR " in line]


def assert_one_line_refusal(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize("step", ["scripts.score", "scripts.evaluate"])
def test_a_never_built_duckdb_database_is_named_with_the_fix_and_not_created(step, tmp_path):
    path = tmp_path / "never.duckdb"
    result = run_module(step, "--db", str(path), cwd=tmp_path)
    assert_one_line_refusal(result, "no database at", "python -m scripts.build")
    assert not path.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("step", ["scripts.score", "scripts.evaluate"])
def test_tables_without_views_say_which_step_is_missing(step, db_url, tmp_path):
    with Database(db_url) as db:
        from scripts.schema import create_tables

        create_tables(db)
    result = run_module(step, "--db", db_url, cwd=tmp_path)
    assert_one_line_refusal(result, "no views", "python -m scripts.build")


def test_an_empty_database_publishes_no_run(schema_db_url, tmp_path):
    result = run_module("scripts.score", "--db", schema_db_url, cwd=tmp_path)
    assert_one_line_refusal(result, "nothing to score", "0 customers")
    with Database(schema_db_url) as db:
        assert db.scalar("select count(*) from model_runs") == 0


@pytest.mark.parametrize(
    "step",
    [
        "scripts.score",
        "scripts.build",
        "scripts.load",
        "scripts.evaluate",
        "scripts.export --out exported",
        "scripts.contacts",
        "scripts.notify",
    ],
)
def test_an_unsupported_uri_scheme_is_refused_with_the_accepted_forms(step, tmp_path):
    result = run_module(*step.split(), "--db", "mysql://root@localhost/shoes", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "mysql:// is not supported" in result.stderr and "postgresql://" in result.stderr
    # no "mysql:" folder (or anything else) created
    assert not list(tmp_path.iterdir())


def test_score_help_shows_what_will_run_and_where_it_comes_from(bundled_duckdb_url, tmp_path):
    with Database(bundled_duckdb_url, read_only=True) as db:
        tuned = dict(db.query("select parameter, value from tuned_parameters"))
    assert "factors" in tuned
    result = run_module("scripts.score", "--db", bundled_duckdb_url, "--help", cwd=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert f"runs: {tuned['factors']}" in text and "tuned in" in text
    # without a database the built-in defaults are labelled as such
    plain = " ".join(
        run_module(
            "scripts.score", "--db", str(tmp_path / "none.duckdb"), "--help", cwd=tmp_path
        ).stdout.split()
    )
    assert "built-in defaults are shown" in plain and "tuned in" not in plain


def test_build_skip_invalid_loads_the_good_rows_and_says_how_many(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("users.csv", "shoes.csv"):
        (data / name).write_bytes((BUNDLED / name).read_bytes())
    lines = (BUNDLED / "interactions.csv").read_text().splitlines()[:400]
    lines.insert(5, "1,1001,view,not-a-time")
    (data / "interactions.csv").write_text("\n".join(lines) + "\n")
    path = tmp_path / "shoes.duckdb"
    strict = run_module(
        "scripts.build", "--db", str(path), "--data-dir", str(data), "--no-score", cwd=tmp_path
    )
    assert strict.returncode == 2 and "interactions.csv:6:4" in strict.stderr
    result = run_module(
        "scripts.build",
        "--db",
        str(path),
        "--data-dir",
        str(data),
        "--no-score",
        "--skip-invalid",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "loaded:" in result.stderr and "1 rows rejected" in result.stderr
    with Database(str(path), read_only=True) as db:
        assert db.scalar("select count(*) from load_rejects") == 1
        assert db.scalar("select count(*) from interactions") > 0
