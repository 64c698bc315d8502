"""The README's promises: its SQL runs on both engines and returns rows; its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
