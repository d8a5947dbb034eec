"""The ready-made analytics queries, by name: one SQL file each in `pipeline/warehouse/queries/`.

A file opens with `-- about:` comment lines (what it answers, and how: aggregation and attribution are
named, since vendors differ) and uses ClickHouse query parameters, bound by `NamedQuery.bind`:
`{start:DateTime}` and `{end:DateTime}` (the period, UTC), `{community:String}` and `{post:String}` (''
means all), `{limit:UInt32}`. The same files are documented in docs/analytics.md and run unchanged on a
ClickHouse server.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pipeline.errors import UnknownQuery

_PARAMETER = re.compile(r"\{(\w+):[^}]+\}")


@dataclass(frozen=True, slots=True)
class NamedQuery:
    name: str
    about: str
    sql: str

    @property
    def parameters(self) -> frozenset[str]:
        return frozenset(_PARAMETER.findall(self.sql))

    def bind(
        self,
        *,
        end: dt.datetime,
        since_s: float,
        community: str = "",
        post: str = "",
        limit: int = 20,
    ) -> dict[str, Any]:
        """The values of the parameters this query uses; the period is (end - since_s, end]."""
        if end.tzinfo is None:
            raise ValueError("the end of the period must be timezone-aware")
        start = end - dt.timedelta(seconds=since_s)
        values = {
            "start": int(start.timestamp()),
            "end": int(end.timestamp()),
            "community": community,
            "post": post,
            "limit": limit,
        }
        return {name: values[name] for name in self.parameters}


def catalogue() -> dict[str, NamedQuery]:
    """Every named query, by name (the file name without `.sql`)."""
    found = {}
    for entry in sorted(
        resources.files("pipeline.warehouse").joinpath("queries").iterdir(), key=lambda e: e.name
    ):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")
        about = " ".join(
            line.removeprefix("--").strip().removeprefix("about:").strip()
            for line in text.splitlines()
            if line.startswith("--")
        )
        name = entry.name.removesuffix(".sql")
        found[name] = NamedQuery(name, about, text)
    return found


def named(name: str) -> NamedQuery:
    queries = catalogue()
    if name not in queries:
        raise UnknownQuery(f"no named query {name!r}; there are: {', '.join(queries)}")
    return queries[name]
