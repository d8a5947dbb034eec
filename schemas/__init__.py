"""The contract between the ingest agents and the stream processors: the canonical event, its validator,
its wire format on Kafka, the ClickHouse DDL, and how a post's ids make its public address. It imports
neither `agents` nor `pipeline`."""

from schemas.connection import (
    MIN_SECRET_CHARS,
    KafkaSettings,
    Secret,
    durability_configs,
    min_insync_replicas,
)
from schemas.ddl import Migration, migrations
from schemas.errors import EventAhead, InvalidEvent, InvalidSnapshot, SchemaError
from schemas.event import (
    AGE_BANDS,
    COMMENT_TYPES,
    COMMUNITY_POST_ID,
    FOLLOW_TYPES,
    GENDERS,
    CanonicalEvent,
    EventType,
    parse_ts,
)
from schemas.post_links import post_url
from schemas.validation import (
    MAX_CLOCK_SKEW_S,
    ClockLimit,
    encode_event,
    encode_events,
    parse_line,
    validate,
)
from schemas.wire import (
    CANONICAL_HEADER,
    CANONICAL_HEADERS,
    DLQ_CODE,
    DLQ_REASON,
    DLQ_SOURCE,
    DLQ_STAGE,
    Rejected,
    Topics,
    dead_letter_headers,
    decode_events,
    decode_message,
    encode_message,
    is_canonical,
)

__all__ = [
    "AGE_BANDS",
    "CANONICAL_HEADER",
    "CANONICAL_HEADERS",
    "COMMENT_TYPES",
    "COMMUNITY_POST_ID",
    "DLQ_CODE",
    "DLQ_REASON",
    "DLQ_SOURCE",
    "DLQ_STAGE",
    "FOLLOW_TYPES",
    "GENDERS",
    "MAX_CLOCK_SKEW_S",
    "MIN_SECRET_CHARS",
    "CanonicalEvent",
    "ClockLimit",
    "EventAhead",
    "EventType",
    "InvalidEvent",
    "InvalidSnapshot",
    "KafkaSettings",
    "Migration",
    "Rejected",
    "SchemaError",
    "Secret",
    "Topics",
    "dead_letter_headers",
    "decode_events",
    "decode_message",
    "durability_configs",
    "encode_event",
    "encode_events",
    "encode_message",
    "is_canonical",
    "migrations",
    "min_insync_replicas",
    "parse_line",
    "parse_ts",
    "post_url",
    "validate",
]
