"""Every setting of every `pulse` command, typed, bounded and read once from the environment.

Environment variables are `PULSE_<NAME>`, nested groups joined with `__`, e.g.
`PULSE_KAFKA__BOOTSTRAP_SERVERS=broker-1:9092,broker-2:9092` or `PULSE_CLICKHOUSE__DSN=https://...`.
Command-line options override them. Nothing reads the environment at import time: `load()` does, once, in
the entry point.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents import PublisherSettings
from agents.webhook_settings import WebhookSettings
from pipeline.notify.settings import NotifySettings
from pipeline.stream.settings import ProcessorSettings
from pipeline.warehouse import ClickHouseSettings
from pipeline.warehouse.dashboard import DashboardSettings
from pipeline.warehouse.source_watch import SourceWatchSettings
from pipeline.warehouse.table_sink import SinkSettings
from pulse.local.local_kafka import LocalKafkaSettings
from pulse.topics import TopicSettings
from schemas import MAX_CLOCK_SKEW_S, KafkaSettings


class Settings(BaseSettings):
    # `null` in a variable is None: how a setting whose default is a value (`at_risk_fraction`) is unset.
    model_config = SettingsConfigDict(
        env_prefix="PULSE_", env_nested_delimiter="__", extra="forbid", env_parse_none_str="null"
    )

    state_dir: Path = Path(".pulse")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Every entry point (webhooks, replay, simulator) and the stream processors dead-letter an event stamped
    # further ahead of their wall clock than this; `pulse validate` reports it (schemas.ClockLimit).
    max_clock_skew_s: float = Field(default=MAX_CLOCK_SKEW_S, ge=0, le=365 * 86_400)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    local_kafka: LocalKafkaSettings = Field(default_factory=LocalKafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    publisher: PublisherSettings = Field(default_factory=PublisherSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    sources: SourceWatchSettings = Field(default_factory=SourceWatchSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    @model_validator(mode="after")
    def _embedded_store_under_state_dir(self) -> Settings:
        if not self.clickhouse.dsn:
            self.clickhouse = self.clickhouse.model_copy(
                update={"dsn": f"chdb://{(self.state_dir / 'clickhouse').resolve()}"}
            )
        return self


def load(**overrides: Any) -> Settings:
    """Reads the environment once; `overrides` (from command-line options) win over it."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def on_cluster(settings: Settings) -> Settings:
    """`settings` with what depends on the Kafka cluster they name resolved against it, asking it once:
    the topics' replication factor ("auto" becomes min(3, its brokers)). For the entry points that create
    topics, once their bootstrap servers are final; `as_environment` then hands the number on."""
    return settings.model_copy(update={"topics": settings.topics.resolved(settings.kafka)})


def as_environment(settings: Settings) -> dict[str, str]:
    """Every setting as the `PULSE_*` variables that `load()` reads back into equal settings: how `pulse run`
    hands its resolved settings (environment, options and what it decided) to the commands it starts, so no
    setting can be left behind. Secrets are written out: only for our own child processes."""
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            for field in type(value).model_fields:
                env[f"PULSE_{name.upper()}__{field.upper()}"] = _env_text(getattr(value, field))
        elif isinstance(value, Path):
            env[f"PULSE_{name.upper()}"] = str(value.resolve())
        else:
            env[f"PULSE_{name.upper()}"] = _env_text(value)
    return env


def shown(settings: Settings) -> dict[str, Any]:
    """The settings as plain data for people: each secret as `set (sha256 <8 hex>)`, enough to tell whether
    two processes hold the same one without showing it."""
    return _plain(settings, _fingerprint)  # type: ignore[no-any-return]


def _env_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, str | int | float | Path):
        return str(value)
    return orjson.dumps(_plain(value, SecretStr.get_secret_value)).decode()


def _plain(value: Any, secret: Any) -> Any:
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name), secret) for name in type(value).model_fields}
    if isinstance(value, SecretStr):
        return secret(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, secret) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, secret) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _fingerprint(value: SecretStr) -> str:
    return f"set (sha256 {hashlib.sha256(value.get_secret_value().encode()).hexdigest()[:8]})"
