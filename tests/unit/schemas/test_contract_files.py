"""The published JSON Schema and the ClickHouse DDL say what the Python model says."""

from __future__ import annotations

import json
import re
from importlib import resources

import jsonschema
import orjson
import pytest

from schemas import CanonicalEvent, InvalidEvent, migrations, parse_line
from schemas.outputs import Alert, SlaRecord, WindowValue
from tests.events import wire

SCHEMA = json.loads(resources.files("schemas").joinpath("canonical_event.schema.json").read_text())

CORPUS = [
    wire("like"),
    wire("unlike", country="FR"),
    wire("repost", ts="2026-11-23T15:04:05.123456789+05:30"),
    wire("comment", parent_id="m0", by_community=True),
    wire("comment_delete"),
    wire("post", gender="other"),
    wire("like", ts="2026-11-23T15:04:05"),
    wire("like", ts=1_795_014_245),
    wire("like", ts=True),
    wire("like", type="love"),
    wire("like", event_id=""),
    wire("like", extra=1),
    wire("like", platform="Vk"),
    wire("like", age_band="18-25"),
    wire("like", parent_id=None),
    wire("like", parent_id="m1"),
    wire("like", by_community=True),
    wire("like", by_community=False),
    wire("repost", comment_id="m1"),
    wire("comment", text=None),
    wire("comment", comment_id=None),
    wire("comment", by_community=1),
    {k: v for k, v in wire("comment").items() if k != "comment_id"},
    {k: v for k, v in wire("like").items() if k != "user_id"},
    wire("follow", post_id="-"),
    wire("unfollow", post_id="-", age_band="25-34"),
    wire("follow"),
    wire("like", post_id="-"),
    wire("follow", post_id="-", text="hi"),
    wire("follow", post_id="-", by_community=True),
]


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("event", CORPUS, ids=lambda e: f"{e['type']}:{sorted(e)[0]}:{str(e.get('ts'))[:12]}")
def test_json_schema_and_validator_agree(event: dict[str, object]) -> None:
    schema_ok = jsonschema.Draft202012Validator(SCHEMA).is_valid(event)
    try:
        parse_line(orjson.dumps(event))
        python_ok = True
    except InvalidEvent:
        python_ok = False
    assert schema_ok == python_ok


def test_schema_lists_every_model_field() -> None:
    model = set(CanonicalEvent.__struct_fields__)
    assert set(SCHEMA["properties"]) == model


def test_events_table_columns_match_the_model() -> None:
    ddl = next(m for m in migrations() if m.name == "events").statements[0]
    body = ddl[ddl.index("(") + 1 : ddl.index("ENGINE")]
    columns = re.findall(r"^\s*([a-z_]+)\s+\S", body, flags=re.M)
    model = list(CanonicalEvent.__struct_fields__)
    assert columns == [*model, "ingested_at"]


@pytest.mark.parametrize(
    ("table", "record"),
    [("events_input", CanonicalEvent), ("engagement_minute_input", WindowValue),
     ("comment_sla_input", SlaRecord), ("alerts_input", Alert)],
)  # fmt: skip
def test_input_tables_have_the_wire_records_fields(table: str, record: type) -> None:
    """The loader inserts records as JSON into these tables and unknown fields are skipped: a field
    renamed on one side only would be silently lost, so the names must agree (the table may leave a
    field out only where the stored table has no use for it)."""
    ddl = next(s for m in migrations() for s in m.statements if f"TABLE IF NOT EXISTS {table}\n" in s)
    body = ddl[ddl.index("(") + 1 : ddl.index("ENGINE")]
    columns = re.findall(r"^\s*([a-z_]+)\s+\S", body, flags=re.M)
    added = f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "  # by later migrations, in their order
    columns += [
        s.removeprefix(added).split()[0] for m in migrations() for s in m.statements if s.startswith(added)
    ]
    unused = {"author_id"} if record is SlaRecord else set()
    assert columns == [f for f in record.__struct_fields__ if f not in unused]


def test_migrations_are_numbered_and_ordered() -> None:
    found = migrations()
    assert [m.version for m in found] == sorted({m.version for m in found})
    assert found[0].version == 1 and all(m.statements for m in found)
