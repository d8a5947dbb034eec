"""The local broker's launcher, the parts that need no broker."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import ValidationError

from pulse.local.local_kafka import LocalKafka, LocalKafkaSettings, new_cluster_id


def test_new_cluster_ids_never_start_with_a_dash_and_are_kafka_uuids() -> None:
    ids = [new_cluster_id() for _ in range(2_000)]  # unchecked, about 31 of them would start with "-"
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(("jit", "stops_at_c1"), [("c1", True), ("tiered", False)])
def test_the_jit_setting_reaches_every_jvm_started_as_a_jvm_option(
    jit: str, stops_at_c1: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pulse.local.local_kafka.shutil.which", lambda name: f"/usr/bin/{name}")
    kafka = LocalKafka(LocalKafkaSettings.model_validate({"jit": jit}), tmp_path)
    broker = kafka._java("kafka.Kafka", "server.properties", heap=True)
    formatter = kafka._java("kafka.tools.StorageTool", "format")
    for command in (broker, formatter):
        jvm_options = command[: command.index("-cp")]  # what follows the main class is the program's
        assert ("-XX:TieredStopAtLevel=1" in jvm_options) is stops_at_c1
        assert ("-XX:TieredStopAtLevel=1" in command) is stops_at_c1


def test_an_unknown_jit_is_refused() -> None:
    with pytest.raises(ValidationError, match="jit"):
        LocalKafkaSettings.model_validate({"jit": "c2"})
