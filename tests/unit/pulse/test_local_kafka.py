"""The local broker's launcher, the parts that need no broker."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from pulse.errors import LocalKafkaError
from pulse.local.kafka_config import node_properties, plan_nodes
from pulse.local.local_kafka import LocalKafka, LocalKafkaSettings, free_port_block, new_cluster_id


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


def test_one_broker_keeps_its_files_ports_and_properties(tmp_path: Path) -> None:
    (node,) = plan_nodes(tmp_path / "kafka", "127.0.0.1", 9092, 9093, 1)
    assert (node.node_id, node.home, node.bootstrap, node.controller) == (
        1, tmp_path / "kafka", "127.0.0.1:9092", "127.0.0.1:9093",
    )  # fmt: skip
    props = node_properties(node, [node])
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props
    assert "default.replication.factor" not in props and "min.insync.replicas" not in props
    assert props["offsets.topic.replication.factor"] == props["transaction.state.log.min.isr"] == "1"


def test_a_cluster_takes_one_block_of_ports_and_a_static_quorum(tmp_path: Path) -> None:
    nodes = plan_nodes(tmp_path / "kafka", "127.0.0.1", 9092, 9093, 3)
    assert [(n.node_id, n.home.name, n.port, n.controller_port) for n in nodes] == [
        (1, "node-1", 9092, 9093), (2, "node-2", 9094, 9095), (3, "node-3", 9096, 9097),
    ]  # fmt: skip
    props = node_properties(nodes[1], nodes)
    assert props["node.id"] == "2"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    assert "controller.quorum.bootstrap.servers" not in props
    assert props["log.dirs"] == str(tmp_path / "kafka" / "node-2" / "data")
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor", "share.coordinator.state.topic.replication.factor"):  # fmt: skip
        assert props[key] == "3", key
    for key in (
        "min.insync.replicas",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "2", key


def test_ports_that_collide_in_the_scheme_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match="port\\+2i"):
        plan_nodes(tmp_path, "127.0.0.1", 9092, 9094, 3)  # broker 1's client port is broker 0's controller
    with pytest.raises(LocalKafkaError, match="at most 65535"):
        plan_nodes(tmp_path, "127.0.0.1", 65532, 65533, 3)
    assert len(plan_nodes(tmp_path, "127.0.0.1", 9092, 9192, 5)) == 5


def test_a_state_file_written_before_clusters_is_still_read(tmp_path: Path) -> None:
    """`broker.json` of a broker started by an older `pulse` (no node id, no controller) is that broker."""
    home = tmp_path / "kafka"
    home.mkdir()
    stand_in = subprocess.Popen(  # a process whose command line names the broker's class and properties
        [sys.executable, "-c", "import time; time.sleep(60)", "kafka.Kafka", str(home / "server.properties")]
    )
    try:
        while b"kafka.Kafka" not in Path(f"/proc/{stand_in.pid}/cmdline").read_bytes():
            time.sleep(0.01)  # between fork and exec the command line is still this test's
        (home / "broker.json").write_text(json.dumps(
            {"pid": stand_in.pid, "bootstrap": "127.0.0.1:9092", "started_at": "2026-01-01T00:00:00+00:00"}
        ))  # fmt: skip
        info = LocalKafka(LocalKafkaSettings(), tmp_path).info()
        assert info is not None
        assert [(b.node_id, b.pid, b.bootstrap, b.controller) for b in info.brokers] == [
            (1, stand_in.pid, "127.0.0.1:9092", None)
        ]
        assert info.bootstrap == "127.0.0.1:9092"
    finally:
        stand_in.kill()
        stand_in.wait()
    assert LocalKafka(LocalKafkaSettings(), tmp_path).info() is None
    assert not (home / "broker.json").exists()


def test_data_of_a_cluster_of_another_size_is_refused(tmp_path: Path) -> None:
    kafka = LocalKafka(LocalKafkaSettings(brokers=3), tmp_path)
    kafka._check_cluster_size(3)
    kafka._check_cluster_size(3)
    with pytest.raises(LocalKafkaError, match="3-broker cluster"):
        LocalKafka(LocalKafkaSettings(brokers=5), tmp_path)._check_cluster_size(5)
    LocalKafka(LocalKafkaSettings(), tmp_path)._check_cluster_size(1)  # one broker's data is elsewhere


def test_a_block_of_free_ports_lies_below_the_ports_outgoing_connections_are_given() -> None:
    ephemeral_from = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(20):
        first = free_port_block(6)
        assert 20_000 <= first <= ephemeral_from - 6
        with contextlib.ExitStack() as held:  # all six can be bound
            for port in range(first, first + 6):
                held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)).bind(
                    ("127.0.0.1", port)
                )
