"""The canonical event: the one shape every ingest path produces and every processor consumes.

It is a msgspec Struct so that decoding a JSON line and checking every field's type and bounds happen in
one pass of compiled code (about 2 us an event on our machines, against 10 us for orjson plus checks in
Python); that is what lets one process replay hundreds of thousands of events a second. Rules that span
fields (comment fields only on comments, the event time's form and range) run in `__post_init__`.

Event time `ts` arrives as RFC 3339 with an offset or as integer epoch milliseconds and is held as UTC
epoch milliseconds (`ts_ms`): what Kafka record timestamps, window arithmetic and ClickHouse DateTime64
all speak. `event_time` gives the timezone-aware datetime for people and logs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from string import ascii_uppercase
from typing import Annotated, Literal, get_args

import msgspec

from schemas.errors import InvalidEvent


class EventType(StrEnum):
    """What happened. Likes, comments and reposts are the core; the rest carry their corrections. Follows
    and unfollows are about the community, not one of its posts (their `post_id` is `COMMUNITY_POST_ID`)."""

    LIKE = "like"
    UNLIKE = "unlike"
    COMMENT = "comment"
    COMMENT_EDIT = "comment_edit"
    COMMENT_DELETE = "comment_delete"
    REPOST = "repost"
    POST = "post"
    FOLLOW = "follow"
    UNFOLLOW = "unfollow"

    @property
    def is_comment(self) -> bool:
        return self in COMMENT_TYPES


COMMENT_TYPES = frozenset({EventType.COMMENT, EventType.COMMENT_EDIT, EventType.COMMENT_DELETE})
FOLLOW_TYPES = frozenset({EventType.FOLLOW, EventType.UNFOLLOW})
# The `post_id` of the events that are about the community as a whole (follows, unfollows): the contract
# wants a post id on every event (it is the partitioning key), and no platform has a post called "-". So
# all of a community's follows share one key and stay in order, and no post query mistakes them for a post.
COMMUNITY_POST_ID = "-"

AgeBand = Literal["13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
Gender = Literal["female", "male", "other"]
AGE_BANDS: tuple[str, ...] = get_args(AgeBand)
GENDERS: tuple[str, ...] = get_args(Gender)

MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 65_536
# Event times outside these bounds are almost always seconds sent as milliseconds, or garbage.
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
# RFC 3339 date-time: full date, full time, optional fraction, and a mandatory offset.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
PLATFORM = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Platform names that passed PLATFORM. There are a handful, so a set lookup replaces a regex match per
# event (a third of the cost of decoding one); bounded, so a flood of made-up names cannot grow it.
_PLATFORMS_SEEN: set[str] = set()
_PLATFORMS_SEEN_MAX = 1024
# Checked in `__post_init__` against every code the contract allows (two capital letters), a set lookup:
# as a msgspec `pattern`, Python's regex engine ran for every event, a quarter of the cost of decoding one.
# (It also let "DE\n" through, as `$` matches before a final newline; the published JSON Schema does not.)
Country = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": "^[A-Z]{2}$"})]
COUNTRY_CODES = frozenset(a + b for a in ascii_uppercase for b in ascii_uppercase)
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]


class CanonicalEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """One interaction with a community's post, normalised from any platform.

    `event_id` is the deduplication key: the platform's own id where it has one, so a redelivered webhook
    or a replayed file produces the same id. Comment fields are set only on comment events.

    Not tracked by Python's cycle collector (`gc=False`): its fields are strings, numbers and flags, so
    it can never be part of a cycle, and a worker holds tens of thousands of them (in its SLA clocks)
    that every full collection would otherwise walk. Decoding 500 of them also no longer counts towards
    the next collection.
    """

    event_id: Id
    type: EventType
    platform: str
    community_id: Id
    post_id: Id
    user_id: Id
    ts: int | str
    comment_id: Id | None = None
    parent_id: Id | None = None
    by_community: bool = False
    text: Text | None = None
    age_band: AgeBand | None = None
    gender: Gender | None = None
    country: Country | None = None

    def __post_init__(self) -> None:
        # Runs for every event decoded, so it reads each field once and keeps the common case short.
        country = self.country
        if country is not None and country not in COUNTRY_CODES:
            raise InvalidEvent("country", "must be an ISO 3166 alpha-2 code like 'DE'")
        if self.platform not in _PLATFORMS_SEEN:
            _check_platform(self.platform)
        ts = self.ts
        if type(ts) is not int:
            msgspec.structs.force_setattr(self, "ts", parse_ts(ts))
        elif not MIN_TS_MS <= ts < MAX_TS_MS:
            parse_ts(ts)  # raises with the reason
        event_type = self.type
        if event_type in COMMENT_TYPES:
            if self.comment_id is None:
                raise InvalidEvent("comment_id", f"is required on {event_type.value} events")
        elif (
            self.comment_id is not None
            or self.parent_id is not None
            or self.by_community
            or self.text is not None
        ):
            stray = next(
                name
                for name, value in (("comment_id", self.comment_id), ("parent_id", self.parent_id),
                                    ("by_community", self.by_community), ("text", self.text))
                if value not in (None, False)
            )  # fmt: skip
            raise InvalidEvent(stray, f"belongs to comment events only, not {event_type.value}")
        if (event_type in FOLLOW_TYPES) is not (self.post_id == COMMUNITY_POST_ID):
            if self.post_id == COMMUNITY_POST_ID:
                raise InvalidEvent(
                    "post_id", f"'{COMMUNITY_POST_ID}' names the community itself: follow and unfollow only"
                )
            raise InvalidEvent(
                "post_id",
                f"must be '{COMMUNITY_POST_ID}' on {event_type.value} events (they are about the community)",
            )

    @property
    def ts_ms(self) -> int:
        """Event time as UTC epoch milliseconds (always an int once the event exists)."""
        return self.ts  # type: ignore[return-value]  # no cast(): this runs several times per event

    @property
    def event_time(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000, tz=UTC)

    @property
    def post_key(self) -> str:
        """The partitioning key: all of a post's events share one partition, so they stay in order."""
        return f"{self.platform}:{self.community_id}:{self.post_id}"


def _check_platform(name: str) -> None:
    if not PLATFORM.fullmatch(name):
        raise InvalidEvent("platform", "must be a lowercase name like 'vk' or 'telegram'")
    if len(_PLATFORMS_SEEN) < _PLATFORMS_SEEN_MAX:
        _PLATFORMS_SEEN.add(name)


def parse_ts(value: object) -> int:
    """Event time as UTC epoch milliseconds, from RFC 3339 with an offset or integer epoch milliseconds."""
    if type(value) is int:
        if not MIN_TS_MS <= value < MAX_TS_MS:
            hint = " (looks like seconds; the contract wants milliseconds)" if 0 < value < 10**11 else ""
            raise InvalidEvent("ts", f"epoch milliseconds {value} is outside 2000..2100{hint}")
        return value
    if isinstance(value, str):
        if not RFC3339.fullmatch(value):
            raise InvalidEvent(
                "ts",
                f"is not an RFC 3339 time with a UTC offset (e.g. '2026-11-23T18:04:05+03:00'): {value[:60]!r}",
            )
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidEvent("ts", f"is not a real time ({exc}): {value!r}") from None
        ts_ms = round(parsed.timestamp() * 1000)
        if not MIN_TS_MS <= ts_ms < MAX_TS_MS:
            raise InvalidEvent("ts", f"{value!r} is outside 2000..2100")
        return ts_ms
    raise InvalidEvent("ts", "must be an RFC 3339 string or integer epoch milliseconds")
