"""Audience snapshots: followers per community and views per post, as the platforms' exports count them.

The platforms push likes, comments and follows, but not how many follow a community or saw a post: those
come from exports and API polls, as absolute counts at a moment (`as_of`). `pulse audience import` reads
them from a file (docs/analytics.md, "Audience snapshots") in one of two forms:

- NDJSON, one snapshot a line:
  `{"kind": "followers", "platform": "vk", "community_id": "1", "as_of": "2026-01-01T00:00:00Z", "followers": 12000}`
  `{"kind": "views", "platform": "vk", "community_id": "1", "post_id": "77", "as_of": "...", "views": 3400}`
- CSV with a header naming the same fields, in any order (`platform,community_id,as_of,followers`); an
  empty cell is a field left out. One record a line: a line break inside a quoted cell is refused.

`kind` may be left out: a line with `followers` is a followers snapshot, one with `views` a views
snapshot. `as_of` is RFC 3339 with an offset or epoch milliseconds, stored to the second. Every line is
judged on its own (`read_snapshots`), so one bad line names its problem and its neighbours still count.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from schemas.errors import InvalidEvent, InvalidSnapshot
from schemas.event import COMMUNITY_POST_ID, MAX_ID_CHARS, PLATFORM, parse_ts
from schemas.validation import _JSON_TYPES, _problem

SnapshotKind = Literal["followers", "views"]
KINDS: tuple[str, ...] = ("followers", "views")
MAX_COUNT = 10**15  # a count beyond a quadrillion is a broken export, not an audience
MAX_SNAPSHOT_LINE_BYTES = 64 * 1024  # a snapshot is a few dozen bytes; a longer line is not one

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]


class AudienceSnapshot(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True
):
    """One count at one moment: a community's followers (`kind` "followers", no `post_id`) or a post's
    views (`kind` "views", with `post_id`). After checking, `kind` is always set and `as_of` is UTC epoch
    milliseconds. The key of its table row is (platform, community, [post,] `as_of_s`): a snapshot of the
    same key imported again replaces the earlier one."""

    kind: SnapshotKind | None = None
    platform: str
    community_id: Id
    post_id: Id | None = None
    as_of: int | str
    followers: Count | None = None
    views: Count | None = None

    def __post_init__(self) -> None:
        if not PLATFORM.fullmatch(self.platform):
            raise InvalidSnapshot("platform", "must be a lowercase name like 'vk' or 'telegram'")
        try:
            msgspec.structs.force_setattr(self, "as_of", parse_ts(self.as_of))
        except InvalidEvent as exc:
            raise InvalidSnapshot("as_of", exc.problem) from None
        if self.followers is not None and self.views is not None:
            raise InvalidSnapshot(None, "give 'followers' or 'views', not both: one count a line")
        counted = "followers" if self.followers is not None else "views" if self.views is not None else None
        if counted is None:
            if self.kind is not None:
                raise InvalidSnapshot(self.kind, f"is required on a {self.kind} snapshot: it is the count")
            raise InvalidSnapshot(None, "no count: give 'followers' (a community's) or 'views' (a post's)")
        if self.kind is not None and self.kind != counted:
            raise InvalidSnapshot(
                counted, f"does not belong to a {self.kind} snapshot (it counts '{self.kind}')"
            )
        msgspec.structs.force_setattr(self, "kind", counted)
        if counted == "followers" and self.post_id is not None:
            raise InvalidSnapshot(
                "post_id", "belongs to views snapshots only: followers are counted per community"
            )
        if counted == "views":
            if self.post_id is None:
                raise InvalidSnapshot("post_id", "is required on views snapshots: views are counted per post")
            if self.post_id == COMMUNITY_POST_ID:
                raise InvalidSnapshot(
                    "post_id", f"'{COMMUNITY_POST_ID}' names the community itself, not a post"
                )

    @property
    def as_of_ms(self) -> int:
        return self.as_of  # type: ignore[return-value]  # an int once checked

    @property
    def as_of_s(self) -> int:
        """The moment as ClickHouse's DateTime holds it: whole seconds (a fraction is dropped)."""
        return self.as_of_ms // 1000

    @property
    def count(self) -> int:
        return self.followers if self.followers is not None else self.views  # type: ignore[return-value]


_DECODER = msgspec.json.Decoder(AudienceSnapshot)
_AT = re.compile(r"^(.*) - at `\$\.([A-Za-z0-9_]+)")
_NAMED = re.compile(r"(?:unknown|required) field `([^`]*)`")
_FIELDS = frozenset(AudienceSnapshot.__struct_fields__)
_COUNTS = ("followers", "views")
_DIGITS = re.compile(r"[0-9]+")
_GOT = re.compile(r", got `([^`]+)`")
_A_COUNT = f"must be a whole number from 0 to {MAX_COUNT:,}"
_TOO_LONG = f"longer than a snapshot may be (more than {MAX_SNAPSHOT_LINE_BYTES:,} bytes)"


def parse_snapshot(line: bytes) -> AudienceSnapshot:
    """One NDJSON line as a checked snapshot; raises `InvalidSnapshot` naming the field and the problem."""
    if len(line) > MAX_SNAPSHOT_LINE_BYTES:
        raise InvalidSnapshot(None, _TOO_LONG)
    try:
        return _DECODER.decode(line)
    except msgspec.ValidationError as exc:
        raise _translate(exc) from None
    except msgspec.DecodeError as exc:
        raise InvalidSnapshot(None, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidSnapshot(None, "not valid JSON: nested too deeply") from None


def snapshot_of(fields: dict[str, Any]) -> AudienceSnapshot:
    """A snapshot from already parsed fields (a CSV row's cells, a dict a program built)."""
    try:
        return msgspec.convert(fields, AudienceSnapshot)
    except msgspec.ValidationError as exc:
        raise _translate(exc) from None


class CsvHeader:
    """What a CSV file's header says: which field each column holds. Raises `InvalidSnapshot` (at line 1)
    for a header that cannot describe snapshots: every row after it would be refused for the same reason."""

    def __init__(self, line: str) -> None:
        cells = _cells(line.removeprefix("\ufeff"))
        self.columns = [cell.strip() for cell in cells]
        unknown = [c for c in self.columns if c not in _FIELDS]
        if unknown:
            raise InvalidSnapshot(
                None,
                f"the header names {unknown[0]!r}, which is not a snapshot field ({', '.join(sorted(_FIELDS))})",
                line=1,
            )
        repeated = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if repeated:
            raise InvalidSnapshot(None, f"the header names {repeated[0]!r} twice", line=1)
        missing = [f for f in ("platform", "community_id", "as_of") if f not in self.columns]
        if missing:
            raise InvalidSnapshot(None, f"the header has no {missing[0]!r} column", line=1)
        if not any(c in self.columns for c in _COUNTS):
            raise InvalidSnapshot(None, "the header has neither a 'followers' nor a 'views' column", line=1)

    def snapshot(self, line: str) -> AudienceSnapshot:
        """One data line as a checked snapshot."""
        cells = _cells(line)
        if len(cells) != len(self.columns):
            raise InvalidSnapshot(None, f"has {len(cells)} cells where the header names {len(self.columns)}")
        fields: dict[str, Any] = {}
        for column, cell in zip(self.columns, cells, strict=True):
            value = cell.strip()
            if not value:
                continue  # an empty cell is a field left out
            if column in _COUNTS:
                if not _DIGITS.fullmatch(value):
                    raise InvalidSnapshot(column, f"{_A_COUNT}; got {value[:40]!r}")
                fields[column] = int(value)
            elif column == "as_of" and _DIGITS.fullmatch(value):
                fields[column] = int(value)  # epoch milliseconds
            else:
                fields[column] = value
        return snapshot_of(fields)


def _cells(line: str) -> list[str]:
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error as exc:
        raise InvalidSnapshot(
            None, f"not a CSV record: {exc} (one record a line; no line break inside quotes)"
        ) from None


def read_snapshots(
    lines: Iterable[bytes], form: Literal["ndjson", "csv"], latest_ms: int | None = None
) -> Iterator[AudienceSnapshot | InvalidSnapshot]:
    """Each line of a snapshot file, in order, as a snapshot or as the reason it is not one (with its line
    number); never raises for bad content. Blank lines are skipped; in CSV the first non-blank line is the
    header, and a header that cannot describe snapshots is raised (nothing after it could be read).
    `latest_ms`: the latest `as_of` accepted (the wall clock plus the allowed skew); a snapshot from later
    is refused, as events from the future are."""
    header: CsvHeader | None = None
    for line_no, raw in enumerate(lines, start=1):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            if len(line) > MAX_SNAPSHOT_LINE_BYTES:
                raise InvalidSnapshot(None, _TOO_LONG)
            if form == "ndjson":
                snapshot = parse_snapshot(line)
            else:
                text = _text(line)
                if header is None:
                    header = CsvHeader(text)
                    continue
                snapshot = header.snapshot(text)
            if latest_ms is not None and snapshot.as_of_ms > latest_ms:
                raise InvalidSnapshot(
                    "as_of",
                    f"{_utc(snapshot.as_of_ms)} is ahead of the wall clock ({_utc(latest_ms)} at the latest)",
                )
        except InvalidSnapshot as exc:
            if header is None and form == "csv":
                raise exc.at_line(line_no) from None
            yield exc.at_line(line_no)
            continue
        yield snapshot


def encode_snapshot(snapshot: AudienceSnapshot) -> bytes:
    """The snapshot as an NDJSON line of the import format (newline included), `as_of` in RFC 3339."""
    fields: dict[str, Any] = {
        "kind": snapshot.kind,
        "platform": snapshot.platform,
        "community_id": snapshot.community_id,
    }
    if snapshot.post_id is not None:
        fields["post_id"] = snapshot.post_id
    fields["as_of"] = _utc(snapshot.as_of_ms)
    fields[snapshot.kind or "followers"] = snapshot.count
    return msgspec.json.encode(fields) + b"\n"


def _text(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSnapshot(None, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def _utc(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def _translate(exc: msgspec.ValidationError) -> InvalidSnapshot:
    message = str(exc)
    at = _AT.match(message)
    if at:
        field, text = at.group(2), at.group(1)
        if field in _COUNTS:
            got = _GOT.search(text)
            return InvalidSnapshot(
                field, _A_COUNT + (f"; got {_JSON_TYPES.get(got.group(1), got.group(1))}" if got else "")
            )
        if field == "kind" and text.startswith("Invalid enum value"):
            return InvalidSnapshot(
                "kind", f"must be {' or '.join(KINDS)}; got {text.removeprefix('Invalid enum value ')}"
            )
        return InvalidSnapshot(field, _problem(field, text))
    named = _NAMED.search(message)
    if named:
        problem = (
            "is not a field of an audience snapshot" if "unknown" in message else "is required but missing"
        )
        return InvalidSnapshot(named.group(1), problem)
    return InvalidSnapshot(None, _problem(None, message))
