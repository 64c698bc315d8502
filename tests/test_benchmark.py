"""The scale benchmark end to end at a tiny size: every stage measured in its own process, on both engines.

Timings are never asserted against limits (the machine is shared); only that each stage was measured
(positive seconds and memory), that the rates are rows / seconds, and that the printed table and the
JSON carry them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import benchmark
from scripts.db import Database

TINY = ["--users", "300", "--shoes", "50", "--interactions", "5000", "--no-implicit"]


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    """The tiny data set, generated once (in this process) for the tests that skip the generate stage."""
    from scripts.generate_data import generate

    folder = tmp_path_factory.mktemp("tiny_csv")
    generate(folder, users=300, shoes=50, interactions=5000, progress=False)
    return folder


def _run(tmp_path: Path, capsys, *extra: str, work_dir: Path | None = None) -> tuple[dict, str]:
    out = tmp_path / "results.json"
    work_dir = work_dir or tmp_path / "bench"
    code = benchmark.main([*TINY, "--work-dir", str(work_dir), "--json", str(out), *extra])
    assert code == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def _check_stage(results: dict, stage: str) -> dict:
    outcome = results["stages"][stage]
    assert outcome["seconds"] > 0
    assert outcome["peak_rss_mib"] > 0
    assert outcome["cpu_seconds"] >= 0
    # a fresh process per stage: its peak is at least what it held after starting
    assert outcome["peak_rss_mib"] >= outcome["baseline_rss_mib"] > 0
    return outcome


def test_every_stage_is_measured_and_printed(tmp_path, capsys):
    results, table = _run(tmp_path, capsys, "--keep-db", "--refresh-customers", "20")

    assert list(results["stages"]) == ["generate", "load", "score", "native", "model", "refresh"]
    assert results["skipped"] == {"implicit": "--no-implicit"}
    for stage in results["stages"]:
        _check_stage(results, stage)

    generated = results["stages"]["generate"]["counts"]
    load = results["stages"]["load"]
    # the loader read every generated row, at rows / the loader's own seconds
    assert load["rows"] == generated["users"] + generated["shoes"] + generated["interactions"]
    assert load["rows_per_second"] == pytest.approx(load["rows"] / load["parts"]["load"], rel=1e-2)

    score = results["stages"]["score"]
    counts = score["counts"]
    # write-back rate: rows of the three score tables / seconds spent writing them
    assert counts["n_users"] == 300 and counts["n_recommendations"] > 0
    written = counts["n_recommendations"] + counts["n_similarities"] + counts["n_segment_recommendations"]
    assert score["rows"] == written
    assert score["rows_per_second"] == pytest.approx(written / score["parts"]["write"], rel=1e-3)
    # the in-memory model scores the same users and ranks as many shoes as the written run
    assert results["stages"]["model"]["rows"] == counts["n_recommendations"]

    # the engine's own bulk paths on the same data: every row read, exported and written again
    native = results["stages"]["native"]
    assert native["counts"]["read_rows"] == load["rows"]
    assert native["counts"]["export_rows"] == load["interaction_pairs"]
    assert native["counts"]["write_rows"] == counts["n_recommendations"]
    assert native["rates"]["read"] == pytest.approx(load["rows"] / native["parts"]["read"], rel=1e-2)
    assert "against duckdb's own bulk paths in this run" in table
    ratio = load["rows_per_second"] / native["rates"]["read"]
    assert f"read_csv with typed columns: {native['rates']['read']:,.0f} rows/s -> {ratio:.0%}" in table

    # the refresh, last: the stages before it measured the data the score stage scored
    assert results["stages"]["refresh"]["n_users"] == 20

    # the table: one line per stage with its seconds, the machine, the targets that apply
    for stage in ("generate", "load", "score", "native", "model", "refresh"):
        line = next(line for line in table.splitlines() if line.startswith(stage + " "))
        assert f"{results['stages'][stage]['seconds']:.1f}" in line
    assert "implicit" in table and "skipped" in table
    assert results["machine"]["cpu"] in table and f"{results['machine']['cores']} cores" in table
    assert f"{load['rows_per_second']:,.0f}" in table
    assert [check["met"] for check in results["targets"]] == [True, True]  # 300 users: far from 60 s / 4 GiB

    # kept on request, the database serves a later run without the load stage, which leaves it in place
    database = tmp_path / "bench" / benchmark.DEFAULT_DB_NAME
    assert database.is_file()
    again, _ = _run(tmp_path, capsys, "--stages", "score")
    assert list(again["stages"]) == ["score"]
    assert again["stages"]["score"]["run_id"] == score["run_id"] + 1
    assert database.is_file()


def test_postgresql_fresh_schema_is_used_and_dropped(tmp_path, capsys, pg_database_url, tiny_csv):
    results, table = _run(
        tmp_path, capsys, "--db", pg_database_url, "--stages", "load,score", work_dir=tiny_csv
    )

    assert results["config"]["engine"] == "postgres"
    for stage in ("load", "score"):
        _check_stage(results, stage)
    assert results["stages"]["score"]["counts"]["n_users"] == 300
    assert results["stages"]["score"]["rows_per_second"] > 0
    assert "PostgreSQL" in table
    # the schema the benchmark made is gone
    with Database(pg_database_url) as db:
        schemas = db.query(
            "select schema_name from information_schema.schemata where schema_name like ?",
            ["shoerec_bench_%"],
        )
    assert schemas == []


def test_a_second_engine_is_compared_in_the_same_run(tmp_path, capsys, pg_database_url, tiny_csv):
    results, table = _run(
        tmp_path,
        capsys,
        "--stages",
        "load,score,native",
        "--compare-db",
        pg_database_url,
        work_dir=tiny_csv,
    )

    compared = results["compare"]
    assert results["config"]["engine"] == "duckdb" and compared["engine"] == "postgres"
    assert list(compared["stages"]) == ["load", "score", "native"]
    for stage in compared["stages"]:
        assert compared["stages"][stage]["seconds"] > 0
    # the same files, the same rows on both engines
    assert compared["stages"]["load"]["rows"] == results["stages"]["load"]["rows"]
    assert compared["stages"]["native"]["counts"] == results["stages"]["native"]["counts"]
    assert "against postgres's own bulk paths in this run" in table
    assert "raw COPY into unlogged tables" in table and "raw COPY FROM a CSV file" in table
    ratio = compared["stages"]["score"]["seconds"] / results["stages"]["score"]["seconds"]
    assert f"= {ratio:.2f}x" in table
    # the compared schema is gone too
    with Database(pg_database_url) as db:
        schemas = db.query(
            "select schema_name from information_schema.schemata where schema_name like ?",
            ["shoerec_bench_%"],
        )
    assert schemas == []


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_the_refresh_is_set_beside_the_full_run(tmp_path, capsys, request, tiny_csv, engine):
    database = [] if engine == "duckdb" else ["--db", request.getfixturevalue("pg_database_url")]
    results, table = _run(
        tmp_path,
        capsys,
        *database,
        "--stages",
        "load,score,refresh",
        "--refresh-customers",
        "40",
        work_dir=tiny_csv,
    )

    refreshed = _check_stage(results, "refresh")
    score = results["stages"]["score"]
    # the delivery: 40 customers changed, a fifth of them brand-new, all loaded by scripts.load
    delivery = refreshed["changes"]
    assert delivery["changes"]["customers"] == 40
    assert delivery["changes"]["new_customers"] == 8 and delivery["changes"]["existing_customers"] == 32
    assert delivery["files"]["users.csv"]["loaded"] == 8
    assert delivery["files"]["interactions.csv"]["loaded"] == delivery["changes"]["events"]
    assert not delivery["files"]["shoes.csv"]["present"]
    # every changed customer refreshed, and only they, against the run the score stage wrote
    assert refreshed["n_users"] == 40
    assert refreshed["run_id"] == score["run_id"]
    assert refreshed["rows"] > 0 and set(refreshed["parts"]) >= {"changed", "model", "read", "score", "write"}
    assert refreshed["ratio_to_score"] == pytest.approx(refreshed["seconds"] / score["seconds"], abs=1e-4)
    assert refreshed["cpu_ratio_to_score"] > 0
    assert "refresh beside the full run" in table
    assert f"{refreshed['ratio_to_score']:.1%} of the seconds" in table
    # 300 users: no target applies (the is at 100,000)
    assert not any("refresh" in check["what"] for check in results["targets"])


def test_missing_implicit_is_skipped_with_a_message(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(benchmark, "implicit_available", lambda: False)
    out = tmp_path / "results.json"
    arguments = ["--work-dir", str(tmp_path), "--stages", "implicit", "--json", str(out)]
    code = benchmark.main([*TINY[:-1], *arguments])
    results = json.loads(out.read_text())

    assert code == 0
    assert results["stages"] == {}
    assert "requirements-bench.txt" in results["skipped"]["implicit"]
    assert "skipping the implicit comparison" in caplog.text


def test_arguments_are_checked():
    with pytest.raises(SystemExit):
        benchmark.main(["--stages", "generate,bogus"])
    with pytest.raises(SystemExit):
        benchmark.main(["--users", "0"])
    # a fifth of the changed customers are new: 400 returning ones need 400 users
    with pytest.raises(SystemExit):
        benchmark.main(["--users", "300", "--stages", "refresh", "--refresh-customers", "500"])
    assert benchmark.scaling_sizes("auto", 100_000) == [25_000, 50_000, 100_000]
    assert benchmark.scaling_sizes("50000,25000", 100_000) == [25_000, 50_000]
    with pytest.raises(ValueError):
        benchmark.scaling_sizes("0,10", 100)


def test_a_stage_beyond_the_memory_limit_is_killed_and_reported(tmp_path, caplog):
    # 20 MiB: any Python process importing numpy goes beyond it
    code = benchmark.main(
        [*TINY, "--work-dir", str(tmp_path), "--stages", "generate", "--max-rss-gib", "0.02"]
    )

    assert code == 1
    # stopped while it ran, or found over the limit when it finished between two samples
    assert "generate: killed at" in caplog.text or "generate: went to" in caplog.text
    assert "beyond --max-rss-gib 0.02" in caplog.text


def test_the_command_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "scripts.benchmark", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(benchmark.__file__).parent.parent,
        check=True,
    )
    assert (
        "--refresh-customers" in done.stdout and "refresh   python -m scripts.score --refresh" in done.stdout
    )
