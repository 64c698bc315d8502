"""The README's promises: its SQL runs on both engines and returns rows; its commands exist; its data
contract is the one scripts/contract.py enforces (the columns in order, the ranges, the reasons)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts.contract import CONTRACTS, PRICE_MAX, parse_column
from scripts.db import Database

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_queries() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", README, flags=re.DOTALL)
    statements = [part.strip() for block in blocks for part in block.split(";")]
    return [statement for statement in statements if re.search(r"^\s*select\b", statement, re.MULTILINE)]


def test_readme_has_queries():
    assert len(readme_queries()) >= 4


@pytest.mark.parametrize("sql", readme_queries(), ids=lambda sql: sql.splitlines()[0][:60])
def test_readme_query_returns_rows(sql, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        assert db.query(sql), f"no rows on {db.engine}"


def test_quick_start_commands_exist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make (\w+)", README, flags=re.MULTILINE):
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), (
            f"make {target} is not in the Makefile"
        )
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for module in re.findall(r"python -m (scripts\.\w+)", README):
        assert (ROOT / (module.replace(".", "/") + ".py")).exists(), module


def contract_table(file_name: str) -> list[tuple[list[str], str]]:
    """The rows of the README's table for ``file_name``: (column names, rule)."""
    section = README.split("## The data contract", 1)[1]
    table = section.split(f"**`{file_name}`**", 1)[1].split("```", 1)[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| `")]
    return [(re.findall(r"`(\w+)`", names), rule.strip()) for names, _, rule in rows]


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: contract.file_name)
def test_the_readme_contract_names_the_columns_in_order_and_their_ranges(contract):
    rows = contract_table(contract.file_name)
    assert [name for names, _ in rows for name in names] == contract.names
    rules = {name: rule for names, rule in rows for name in names}
    for column in contract.columns:
        if column.kind == "decimal":
            assert f"0..{PRICE_MAX:,.0f}" in rules[column.name], column.name
        elif column.low is not None:
            assert f"{column.low}..{column.high}" in rules[column.name], column.name
        for choice in column.choices:
            assert f"`{choice}`" in rules[column.name], (column.name, choice)
        assert ("optional column" in rules[column.name]) == column.may_be_absent, column.name


def test_the_readme_reasons_are_the_ones_the_loader_gives():
    examples = re.findall(r"`((?:users|shoes|interactions)\.csv):\d+:\d+: (\w+): '([^']*)' ([^`]+)`", README)
    checked = 0
    for file_name, name, value, reason in examples:
        column = next(contract for contract in CONTRACTS if contract.file_name == file_name)[name]
        if column.kind in ("id", "category") and "neither" in reason:
            continue  # a reference checked against the database, not a cell's own rule
        _, reasons = parse_column(column, [value], categories=frozenset({"view"}))
        assert " ".join(reason.split()) == reasons[0], (file_name, name, value)
        checked += 1
    assert checked >= 1
