"""The canonical event: the one shape every ingest path produces and every processor consumes.

Event time (`ts_ms`, when it happened on the platform) is kept as integer epoch milliseconds in UTC: it is
what Kafka record timestamps, window arithmetic and ClickHouse DateTime64 all speak, and it costs nothing
to compare. `event_time` gives the timezone-aware datetime for people and logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class EventType(StrEnum):
    """What happened. Likes, comments and reposts are the core; the rest carry their corrections."""

    LIKE = "like"
    UNLIKE = "unlike"
    COMMENT = "comment"
    COMMENT_EDIT = "comment_edit"
    COMMENT_DELETE = "comment_delete"
    REPOST = "repost"
    POST = "post"

    @property
    def is_comment(self) -> bool:
        return self in _COMMENT_TYPES


_COMMENT_TYPES = frozenset({EventType.COMMENT, EventType.COMMENT_EDIT, EventType.COMMENT_DELETE})

AGE_BANDS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("female", "male", "other")


@dataclass(frozen=True, slots=True)
class CanonicalEvent:
    """One interaction with a community's post, normalised from any platform.

    `event_id` is the deduplication key: the platform's own id where it has one, so a redelivered webhook
    or a replayed file produces the same id. Comment fields are set only on comment events.
    """

    event_id: str
    type: EventType
    platform: str
    community_id: str
    post_id: str
    user_id: str
    ts_ms: int
    comment_id: str | None = None
    parent_id: str | None = None
    by_community: bool = False
    text: str | None = None
    age_band: str | None = None
    gender: str | None = None
    country: str | None = None

    @property
    def event_time(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000, tz=UTC)

    @property
    def post_key(self) -> str:
        """The partitioning key: all of a post's events share one partition, so they stay in order."""
        return f"{self.platform}:{self.community_id}:{self.post_id}"

    def to_wire(self) -> dict[str, object]:
        """The JSON object for this event on the wire, with `ts` as epoch milliseconds and no empty fields."""
        wire: dict[str, object] = {
            "event_id": self.event_id,
            "type": self.type.value,
            "platform": self.platform,
            "community_id": self.community_id,
            "post_id": self.post_id,
            "user_id": self.user_id,
            "ts": self.ts_ms,
        }
        if self.type.is_comment:
            wire["comment_id"] = self.comment_id
            wire["parent_id"] = self.parent_id
            wire["by_community"] = self.by_community
            if self.text is not None:
                wire["text"] = self.text
        for name in ("age_band", "gender", "country"):
            value = getattr(self, name)
            if value is not None:
                wire[name] = value
        return wire
