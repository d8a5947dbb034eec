"""Every setting reaches every child of `pulse run`: each field of every settings model is given a value
unlike its default, and each child command, started as a real process with the environment `pulse run`
gives it, reads all of them back. A new setting without a distinctive value here fails the first test, so
none can be forgotten again."""

from __future__ import annotations

import os
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
import orjson
import pytest
from pydantic import BaseModel, SecretStr

from pulse.local.local_pipeline import LocalPipeline, RunOptions
from pulse.settings import Settings, as_environment, load, shown

ROOT = Path(__file__).resolve().parents[3]

# Values that cannot be made from a field's type and bounds alone (patterns, formats, related fields).
CHOSEN: dict[str, Any] = {
    "kafka.bootstrap_servers": "broker-a:19092,broker-b:19092",
    "kafka.security_protocol": "SASL_SSL",
    "kafka.sasl_mechanism": "SCRAM-SHA-512",
    "topics.prefix": "passthrough-",
    "topics.replication_factor": 2,  # a number, where the default is "auto"
    "processor.app_id": "passthrough-app",
    "sink.group": "passthrough-sink",
    "notify.group": "passthrough-notify",
    "notify.ledger_topic": "passthrough-ledger",
    "notify.telegram_api_url": "http://127.0.0.1:1/bot-api",
    "notify.slack_webhook_url": "https://hooks.example/slack/passthrough",
    "notify.mattermost_webhook_url": "https://hooks.example/mattermost/passthrough",
    "notify.webhook_url": "https://hooks.example/webhook/passthrough",
    "notify.config_file": Path("/etc/pulse/destinations-passthrough.toml"),
    "clickhouse.dsn": "https://ch.example:8443/?passthrough=1",
    "clickhouse.database": "passthrough_db",
    "webhooks.host": "0.0.0.0",
    "webhooks.vk": {
        "secret": "vk-secret-passthrough-0123456789",
        "confirmations": {"42": "c0nf1rm"},
        "admin_ids": ["7", "8"],
    },
    "webhooks.telegram": {"secret_token": "tg-secret-passthrough-0123456789"},
    "webhooks.meta": {
        "app_secret": "meta-secret-passthrough-0123456789",
        "verify_token": "verify-passthrough-01",
    },
    "local_kafka.jit": "tiered",
    "log_level": "DEBUG",
}


def leaves(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """`group.field` -> the field's info, for every field of the settings (a nested model's fields are
    one level: models inside a group, like a platform's webhook settings, count as one value)."""
    found: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if not prefix and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= leaves(annotation, f"{name}.")
        else:
            found[prefix + name] = info
    return found


def distinctive(path: str, info: Any) -> Any:
    """A valid value unlike the field's default."""
    if path in CHOSEN:
        return CHOSEN[path]
    default = info.get_default(call_default_factory=True)
    kinds = _kinds(info.annotation)
    bounds = {type(m).__name__: m for m in info.metadata}
    low = next((getattr(bounds[k], a) for k, a in (("Ge", "ge"), ("Gt", "gt")) if k in bounds), None)
    high = next((getattr(bounds[k], a) for k, a in (("Le", "le"), ("Lt", "lt")) if k in bounds), None)
    if bool in kinds:
        return not default
    if Literal in kinds:
        return next(choice for choice in _choices(info.annotation) if choice != default)
    if int in kinds:
        return _between(int(low if low is not None else 0) + 1, high, default, step=1)
    if float in kinds:
        return _between(float(low if low is not None else 0) + 0.25, high, default, step=0.25)
    if SecretStr in kinds:
        return f"secret-{path}-0123456789abcdef"
    if dict in kinds:
        return {"passthrough": 123.5}
    if str in kinds and not any(isinstance(m, annotated_types.MaxLen) for m in info.metadata):
        return f"passthrough-{path.replace('.', '-')}"
    if str in kinds:
        return "passthrough"
    if Path in kinds:
        return Path(f"/tmp/passthrough-{path.replace('.', '-')}")
    raise AssertionError(f"add a distinctive value for the setting {path} ({info.annotation}) to CHOSEN")


def _between(start: float, high: float | None, default: Any, step: float) -> Any:
    value = start
    while value == default or (high is not None and value >= high):
        value = value + step if high is None or value + step < high else start - step
    return value


def _kinds(annotation: Any) -> set[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(annotation)))
    if typing.get_origin(annotation) is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is Literal:
        return {Literal}
    origin = typing.get_origin(annotation)
    return {origin or annotation}


def _choices(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    return [c for a in typing.get_args(annotation) for c in _choices(a)]


def distinctive_settings(tmp_path: Path) -> Settings:
    groups: dict[str, Any] = {}
    for path, info in leaves(Settings).items():
        value = distinctive(path, info)
        if "." in path:
            group, name = path.split(".", 1)
            groups.setdefault(group, {})[name] = value
        else:
            groups[path] = value
    groups["state_dir"] = tmp_path / "state"
    groups["kafka"]["ssl_cafile"] = str(tmp_path / "ca.pem")
    return Settings(**groups)


def test_every_setting_gets_a_value_unlike_its_default(tmp_path: Path) -> None:
    settings = distinctive_settings(tmp_path)
    defaults = shown(load(state_dir=tmp_path / "elsewhere"))
    same = [
        path for path in leaves(Settings)
        if "." in path and shown(settings)[path.split(".")[0]][path.split(".")[1]]
        == defaults[path.split(".")[0]][path.split(".")[1]]
    ]  # fmt: skip
    assert not same, f"these settings kept their defaults, so the test would not see them dropped: {same}"


def test_the_environment_of_a_child_loads_back_into_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = distinctive_settings(tmp_path)
    for key in [k for k in os.environ if k.startswith("PULSE_")]:
        monkeypatch.delenv(key)
    for key, value in as_environment(settings).items():
        monkeypatch.setenv(key, value)
    assert shown(load()) == shown(settings)
    assert load().webhooks.vk is not None and settings.webhooks.vk is not None
    assert load().webhooks.vk.secret.get_secret_value() == settings.webhooks.vk.secret.get_secret_value()


def test_an_unset_setting_whose_default_is_a_value_stays_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(state_dir=tmp_path, processor={"at_risk_fraction": None})
    for key, value in as_environment(settings).items():
        monkeypatch.setenv(key, value)
    assert load().processor.at_risk_fraction is None


def test_every_child_of_pulse_run_reads_every_setting(tmp_path: Path) -> None:
    """The real children: each is started as `python -m pulse settings --json` with the environment and
    arguments' environment `pulse run` gives it, and must show the parent's settings."""
    settings = distinctive_settings(tmp_path)
    options = RunOptions(workers=2, notify=True, webhooks=True, dashboard=True)
    pipeline = LocalPipeline(settings, options, tmp_path / "logs")
    children = pipeline.plan()
    assert {c.name for c in children} == {
        "the stream worker",
        "the loader",
        "the notifier",
        "the webhook receiver",
        "the dashboard",
    }
    expected = shown(settings)
    expected["notify"]["start_from"] = "earliest"  # the one deliberate difference (see child_env)
    for child in children:
        env = {**child.env, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "pulse", "settings", "--json"],
            env=env, capture_output=True, timeout=60, check=False, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        seen = orjson.loads(done.stdout)
        wanted = {
            group: dict(values) if isinstance(values, dict) else values for group, values in expected.items()
        }
        if child in pipeline.workers:  # a static member id of its own, kept across its restarts
            worker_id = f"passthrough-app-worker-{pipeline.workers.index(child) + 1}"  # type: ignore[arg-type]
            wanted["processor"]["group_instance_id"] = worker_id
        if child is pipeline.loader:  # static members too
            wanted["sink"]["instance_id"] = pipeline.member_id(settings.sink.group)
        if child is pipeline.notifier:
            wanted["notify"]["instance_id"] = pipeline.member_id(settings.notify.group)
        differing = sorted(
            f"{group}.{name}" for group, values in wanted.items() if isinstance(values, dict)
            for name, value in values.items() if seen[group][name] != value
        )  # fmt: skip
        assert not differing, f"{child.name} ({child.args}) does not get: {differing}"
        assert seen["state_dir"] == str(settings.state_dir.resolve())
