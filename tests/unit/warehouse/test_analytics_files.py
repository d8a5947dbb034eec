"""The analyst user's grants and the analytics docs keep up with the DDL and the named queries."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.warehouse.named_queries import catalogue
from schemas import migrations

ROOT = Path(__file__).resolve().parents[3]


def created_relations() -> set[str]:
    """Every table and view with something to read: not the loader's input tables (Null engine, always
    empty), which only their materialized views read."""
    names = set()
    for migration in migrations():
        for statement in migration.statements:
            match = re.search(r"CREATE (?:TABLE|VIEW) IF NOT EXISTS (\w+)", statement)
            if match and not re.search(r"ENGINE = Null\b", statement):
                names.add(match.group(1))
    return names


def test_the_analyst_may_read_every_table_and_view_and_nothing_more() -> None:
    users = (ROOT / "deploy" / "clickhouse" / "users.sql").read_text()
    granted = set(re.findall(r"GRANT SELECT ON pulse\.(\w+) TO analyst;", users))
    assert granted == created_relations()
    assert "readonly = 2" in users


def test_every_named_query_and_table_is_documented() -> None:
    doc = (ROOT / "docs" / "analytics.md").read_text()
    assert all(f"| `{name}` |" in doc for name in catalogue())
    assert all(f"`{name}`" in doc for name in created_relations())
