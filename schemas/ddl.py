"""The numbered ClickHouse DDL files shipped in `schemas/clickhouse/`, read in order.

Each file is `NNNN_name.sql` holding one or more statements separated by `;` at the end of a line. Files
are idempotent (`IF NOT EXISTS`) and never edited once released: a change is a new file. Applying them is
the pipeline's job (`pipeline.warehouse.client`); this module only knows what they are.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from schemas.errors import SchemaError

_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    checksum: str


def migrations() -> list[Migration]:
    """Every DDL file in version order."""
    found = []
    for entry in resources.files("schemas").joinpath("clickhouse").iterdir():
        match = _NAME.fullmatch(entry.name)
        if not match:
            continue
        text = entry.read_text(encoding="utf-8")
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        statements = tuple(s.strip() for s in re.split(r";\s*$", code, flags=re.M) if s.strip())
        found.append(
            Migration(
                version=int(match.group(1)),
                name=match.group(2),
                statements=statements,
                checksum=hashlib.sha256(text.encode()).hexdigest()[:16],
            )
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise SchemaError(f"two DDL files share a version number: {versions}")
    return found
