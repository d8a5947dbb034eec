"""The contract between the ingest agents and the stream processors: the canonical event, its validator,
its wire format on Kafka, and the ClickHouse DDL. It imports neither `agents` nor `pipeline`."""

from schemas.connection import KafkaSettings
from schemas.ddl import Migration, migrations
from schemas.errors import InvalidEvent, SchemaError
from schemas.event import AGE_BANDS, GENDERS, CanonicalEvent, EventType
from schemas.validation import parse_line, parse_ts, validate
from schemas.wire import Rejected, Topics, decode_message, encode_event, encode_message

__all__ = [
    "AGE_BANDS",
    "GENDERS",
    "CanonicalEvent",
    "EventType",
    "InvalidEvent",
    "KafkaSettings",
    "Migration",
    "Rejected",
    "SchemaError",
    "Topics",
    "decode_message",
    "encode_event",
    "encode_message",
    "migrations",
    "parse_line",
    "parse_ts",
    "validate",
]
