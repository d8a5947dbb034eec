"""Every setting of every `pulse` command, typed, bounded and read once from the environment.

Environment variables are `PULSE_<NAME>`, nested groups joined with `__`, e.g.
`PULSE_KAFKA__BOOTSTRAP_SERVERS=broker-1:9092,broker-2:9092` or `PULSE_CLICKHOUSE__DSN=https://...`.
Command-line options override them. Nothing reads the environment at import time: `load()` does, once, in
the entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents import PublisherSettings
from agents.webhook_server import WebhookSettings
from pipeline.notify.settings import NotifySettings
from pipeline.stream.settings import ProcessorSettings
from pipeline.warehouse import ClickHouseSettings
from pipeline.warehouse.dashboard import DashboardSettings
from pipeline.warehouse.table_sink import SinkSettings
from pulse.local.local_kafka import LocalKafkaSettings
from pulse.topics import TopicSettings
from schemas import KafkaSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PULSE_", env_nested_delimiter="__", extra="forbid")

    state_dir: Path = Path(".pulse")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    local_kafka: LocalKafkaSettings = Field(default_factory=LocalKafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    publisher: PublisherSettings = Field(default_factory=PublisherSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
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
