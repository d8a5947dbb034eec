"""Holding a store against the reference: every row the reference expects in `engagement_minute`,
`comment_sla` and `alerts` (under FINAL), every row the store has beyond them, and every difference.

The store is read through a `query` callable (SQL in, rows out), so the same judgement serves an embedded
store, a server, or a test's rows: `store_query(settings)` builds one on `run_query`, which asks the loader
when it holds the embedded store. Times are read as epoch milliseconds, so nothing is lost to rounding;
float columns are compared to a millionth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any, Literal

from pipeline.warehouse import ClickHouseSettings
from pipeline.warehouse.query_service import run_query
from pulse.chaos.comment_clocks import AlertRow, SlaRow
from pulse.chaos.reference import Expected, MinuteRow

Query = Callable[[str], Sequence[Sequence[Any]]]
MismatchKind = Literal["missing", "extra", "different"]
EXAMPLES = 5  # mismatches of each kind kept per table

_ENGAGEMENT_SQL = (
    "SELECT platform, community_id, post_id, toUnixTimestamp(minute) * 1000, "
    "likes, unlikes, comments, reposts, unique_engagers, score FROM engagement_minute FINAL"
)
_SLA_SQL = (
    "SELECT platform, community_id, comment_id, post_id, toUnixTimestamp64Milli(commented_at), sla_seconds, "
    "toUnixTimestamp64Milli(answered_at), response_seconds, breached, cancelled, stage FROM comment_sla FINAL"
)
_ALERTS_SQL = (
    "SELECT alert_id, kind, post_id, comment_id, author_id, toUnixTimestamp64Milli(commented_at), "
    "toUnixTimestamp64Milli(fired_at), waited_seconds, sla_seconds, response_seconds FROM alerts FINAL "
    "WHERE kind IN ({kinds})"
)


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: MismatchKind
    key: str
    expected: str | None  # the reference's row, or None when the store has one the reference does not
    stored: str | None  # the store's row, or None when it is missing

    def __str__(self) -> str:
        if self.kind == "missing":
            return f"missing {self.key}: expected {self.expected}"
        if self.kind == "extra":
            return f"extra {self.key}: stored {self.stored}"
        return f"different {self.key}: expected {self.expected}, stored {self.stored}"


@dataclass(frozen=True, slots=True)
class TableVerdict:
    """One table: how many rows matched, how many did not (by kind), and the first few of each kind."""

    table: str
    expected: int
    stored: int
    matched: int
    missing: int
    extra: int
    different: int
    examples: tuple[Mismatch, ...]

    @property
    def exact(self) -> bool:
        return self.missing == self.extra == self.different == 0

    def __str__(self) -> str:
        head = (
            f"{self.table}: {self.matched:,} of {self.expected:,} expected rows match"
            f" ({self.stored:,} stored; {self.missing:,} missing, {self.extra:,} extra, {self.different:,} different)"
        )
        return "\n".join([head, *(f"  {m}" for m in self.examples)])


@dataclass(frozen=True, slots=True)
class StoreVerdict:
    tables: tuple[TableVerdict, ...]

    @property
    def exact(self) -> bool:
        return all(t.exact for t in self.tables)

    def table(self, name: str) -> TableVerdict:
        return next(t for t in self.tables if t.table == name)

    def __str__(self) -> str:
        return "\n".join(map(str, self.tables))


def store_query(settings: ClickHouseSettings, *, open_store: bool = True) -> Query:
    """A `Query` on the pipeline's store (`open_store=False`: only through a loader that holds it)."""

    def query(sql: str) -> list[list[Any]]:
        return run_query(settings, sql, open_store=open_store).rows

    return query


def judge_store(expected: Expected, query: Query) -> StoreVerdict:
    """Reads the three tables under FINAL and holds them against `expected`."""
    minutes: dict[tuple[Any, ...], MinuteRow] = {
        (r[0], r[1], r[2], int(r[3])): MinuteRow(
            int(r[4]), int(r[5]), int(r[6]), int(r[7]), int(r[8]), float(r[9])
        )
        for r in query(_ENGAGEMENT_SQL)
    }
    sla: dict[tuple[Any, ...], SlaRow] = {
        (r[0], r[1], r[2]): SlaRow(
            r[3], int(r[4]), float(r[5]), _int(r[6]), _float(r[7]), bool(r[8]), bool(r[9]), int(r[10])
        )
        for r in query(_SLA_SQL)
    }
    kinds = ", ".join(f"'{k}'" for k in expected.alert_kinds)
    alerts: dict[tuple[Any, ...], AlertRow] = {
        (r[0],): AlertRow(
            r[1], r[2], r[3], r[4], int(r[5]), int(r[6]), float(r[7]), float(r[8]), _float(r[9])
        )
        for r in query(_ALERTS_SQL.format(kinds=kinds))
    }
    return StoreVerdict(
        (
            compare("engagement_minute", _keyed(expected.engagement), minutes),
            compare("comment_sla", _keyed(expected.sla), sla),
            compare("alerts", {(k,): v for k, v in expected.alerts.items()}, alerts),
        )
    )


def compare(
    table: str, expected: Mapping[tuple[Any, ...], Any], stored: Mapping[tuple[Any, ...], Any]
) -> TableVerdict:
    """Rows keyed alike, compared field by field (floats to a millionth)."""
    examples: dict[MismatchKind, list[Mismatch]] = {"missing": [], "extra": [], "different": []}
    counts = {"missing": 0, "extra": 0, "different": 0}
    matched = 0

    def note(kind: MismatchKind, key: tuple[Any, ...], want: Any, got: Any) -> None:
        counts[kind] += 1
        if len(examples[kind]) < EXAMPLES:
            examples[kind].append(Mismatch(kind, _show_key(key), _show(want), _show(got)))

    for key in sorted(expected, key=str):
        want, got = expected[key], stored.get(key)
        if got is None:
            note("missing", key, want, None)
        elif _equal(want, got):
            matched += 1
        else:
            note("different", key, want, got)
    for key in sorted(stored.keys() - expected.keys(), key=str):
        note("extra", key, None, stored[key])
    return TableVerdict(
        table, len(expected), len(stored), matched, counts["missing"], counts["extra"], counts["different"],
        tuple(examples["missing"] + examples["different"] + examples["extra"]),
    )  # fmt: skip


def _equal(want: Any, got: Any) -> bool:
    return len(astuple(want)) == len(astuple(got)) and all(
        _same(a, b) for a, b in zip(astuple(want), astuple(got), strict=True)
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


def _keyed(rows: Mapping[Any, Any]) -> dict[tuple[Any, ...], Any]:
    return {tuple(k): v for k, v in rows.items()}


def _show_key(key: tuple[Any, ...]) -> str:
    return "/".join(map(str, key))


def _show(row: Any) -> str | None:
    if row is None:
        return None
    return ", ".join(f"{f.name}={getattr(row, f.name)!r}" for f in fields(row))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
