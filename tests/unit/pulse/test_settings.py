"""Settings come from PULSE_* variables once, typed and bounded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from pulse.settings import load


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.clickhouse.dsn == f"chdb://{tmp_path / '.pulse' / 'clickhouse'}"
    assert settings.local_kafka.heap_mb <= 512


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("PULSE_TOPICS__EVENT_PARTITIONS", "12")
    monkeypatch.setenv("PULSE_CLICKHOUSE__DSN", "https://ch.example:8443")
    monkeypatch.setenv("PULSE_CLICKHOUSE__PASSWORD", "s3cret")
    settings = load()
    assert settings.kafka.client_config()["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert settings.topics.event_partitions == 12
    assert not settings.clickhouse.is_embedded
    assert "s3cret" not in repr(settings)


def test_command_line_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_KAFKA__BOOTSTRAP_SERVERS", "k1:9092")
    assert load(kafka={"bootstrap_servers": "cli:9092"}).kafka.bootstrap_servers == "cli:9092"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PULSE_LOCAL_KAFKA__HEAP_MB", "1024"),
        ("PULSE_TOPICS__EVENT_PARTITIONS", "0"),
        ("PULSE_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512"),
        ("PULSE_LOG_LEVEL", "LOUD"),
        ("PULSE_CLICKHOUSE__DATABASE", "drop table"),
    ],
)
def test_out_of_bounds_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        load()


def test_settings_doc_lists_every_variable() -> None:
    """docs/settings.md is the operator's reference: it must name exactly what the code reads."""
    from pydantic import BaseModel

    from pulse.settings import Settings

    def variables(model: type[BaseModel], prefix: str) -> set[str]:
        names = set()
        for name, field in model.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                names |= variables(kind, f"{prefix}{name.upper()}__")
            else:
                names.add(f"{prefix}{name.upper()}")
        return names

    doc = (Path(__file__).parents[3] / "docs" / "settings.md").read_text()
    documented = set(re.findall(r"`(PULSE_[A-Z0-9_]+)`", doc))
    assert documented == variables(Settings, "PULSE_")
