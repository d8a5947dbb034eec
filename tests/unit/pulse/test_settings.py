"""Settings come from PULSE_* variables once, typed and bounded."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from pulse.settings import Settings, load


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
    monkeypatch.setenv("PULSE_CLICKHOUSE__PASSWORD", "s3cret-writer-password")
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


def secret_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[type[BaseModel], str, str]]:
    """(model, field, dotted path) of every secret in the settings, models inside models included."""
    found = []
    for name, info in model.model_fields.items():
        union = typing.get_origin(info.annotation) in (typing.Union, types.UnionType)
        for kind in typing.get_args(info.annotation) if union else (info.annotation,):
            inner = typing.get_args(kind)[0] if typing.get_origin(kind) is typing.Annotated else kind
            if inner is SecretStr:
                found.append((model, name, prefix + name))
            elif isinstance(inner, type) and issubclass(inner, BaseModel):
                found += secret_fields(inner, f"{prefix}{name}.")
    return found


def test_every_secret_refuses_to_be_empty_or_short() -> None:
    from pipeline.notify.settings import SlackDestination, TelegramDestination, WebhookDestination

    secrets = [s for m in (Settings, SlackDestination, TelegramDestination, WebhookDestination)
               for s in secret_fields(m)]  # fmt: skip
    paths = {path for _, _, path in secrets}
    assert {"webhooks.bearer_token", "webhooks.vk.secret", "webhooks.telegram.secret_token",
            "webhooks.meta.app_secret", "webhooks.meta.verify_token", "kafka.sasl_password",
            "clickhouse.password", "notify.webhook_secret", "notify.telegram_bot_token", "bot_token",
            "secret"} <= paths, paths  # fmt: skip
    for model, name, _ in secrets:
        for refused in ("", " " * 20, "x" * 15):
            with pytest.raises(ValidationError, match="at least 16"):
                model.__pydantic_validator__.validate_assignment(model.model_construct(), name, refused)
        long_enough = "https://hooks.example/0123456789" if "url" in name else "0123456789abcdef"
        model.__pydantic_validator__.validate_assignment(model.model_construct(), name, long_enough)


def test_a_command_with_an_empty_or_short_secret_stops_at_once_naming_it() -> None:
    from click.testing import CliRunner

    from pulse.cli import main

    empty = CliRunner(env={"PULSE_WEBHOOKS__BEARER_TOKEN": ""}).invoke(main, ["webhooks"])
    assert empty.exit_code != 0
    assert "webhooks.bearer_token (PULSE_WEBHOOKS__BEARER_TOKEN): this secret is empty" in empty.output
    short = CliRunner(env={"PULSE_WEBHOOKS__VK": '{"secret": "hunter2"}'}).invoke(main, ["webhooks"])
    assert short.exit_code != 0
    assert (
        "webhooks.vk.secret (PULSE_WEBHOOKS__VK, field secret): this secret has 7 characters" in short.output
    )
    assert "hunter2" not in short.output, "the value given is never shown"


def test_the_replication_factor_is_auto_unless_given_and_never_used_unresolved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pulse.errors import TopicError
    from schemas import KafkaSettings, durability_configs

    topics = load().topics
    assert topics.replication_factor == "auto"
    with pytest.raises(TopicError, match="not resolved"):
        _ = topics.replicas
    monkeypatch.setenv("PULSE_TOPICS__REPLICATION_FACTOR", "2")
    given = load().topics
    unreachable = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    assert given.resolved(unreachable) is given and given.replicas == 2  # a number is not asked about
    monkeypatch.setenv("PULSE_TOPICS__REPLICATION_FACTOR", "0")
    with pytest.raises(ValidationError):
        load()
    assert durability_configs(1) == durability_configs(2) == {}
    assert durability_configs(3) == durability_configs(5) == {"min.insync.replicas": "2"}
