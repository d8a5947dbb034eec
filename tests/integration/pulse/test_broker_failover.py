"""The loss of a broker: `pulse run --replay FILE --exit-when-done` on a local cluster of three brokers, one
of them killed with SIGKILL a few seconds into the run (once the file is in Kafka, while the workers start
and process it), exits 0 with exactly the tables the scenario calls for (the same scenario and answers as
test_run_end_to_end). Once the broker that leads the most partitions of the run's topics, once the active
KRaft controller. With three replicas and two in sync, nothing acknowledged may be lost when one broker
goes, and nothing may be counted twice when its partitions move to new leaders.

The cluster is each test's own (three JVMs, about 7-10 s to start): the session's broker has one node. A
run takes about 12 s here without a kill and 20-26 s with one (the lost broker is fenced after 9 s;
pieces that were starting just then fail and are started again by `pulse run`)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from pulse.local.local_kafka import ClusterInfo, LocalKafka, LocalKafkaSettings, free_port_block
from tests.integration.pulse.test_run_end_to_end import assert_tables_match, build


@dataclass
class Cluster:
    kafka: LocalKafka
    info: ClusterInfo
    started_s: float


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    port = free_port_block(6)
    kafka = LocalKafka(
        LocalKafkaSettings(port=port, controller_port=port + 1, brokers=3), tmp_path / "kafka-state"
    )
    t0 = time.monotonic()
    info, _ = kafka.up()
    started_s = time.monotonic() - t0
    print(f"\n3-broker cluster at {info.bootstrap} started in {started_s:.1f} s (pids {info.pids})")
    try:
        yield Cluster(kafka, info, started_s)
    finally:
        kafka.down()


@dataclass
class Kill:
    node_id: int | None = None
    after_s: float | None = None  # from the run's start
    led: dict[int, int] = field(default_factory=dict)  # partitions of the run's topics each broker led
    error: str | None = None


def _run_topics(admin: KafkaAdminClient) -> list[str]:
    return [t for t in admin.list_topics() if t.startswith("run-")]


def _active_controller(cluster: Cluster) -> int:
    """The node that last became the KRaft quorum's leader (the highest epoch), as the nodes' logs say:
    kafka-python has no DescribeQuorum, and DescribeCluster names any broker as the controller."""
    elected = []
    for log in cluster.kafka.home.glob("node-*/logs/server.log*"):
        for line in log.read_text(errors="replace").splitlines():
            if "Completed transition to Leader(" in line:
                node, epoch = re.search(r"\[RaftManager id=(\d+)\]", line), re.search(r"epoch=(\d+)", line)
                if node and epoch:
                    elected.append((int(epoch.group(1)), int(node.group(1))))
    return max(elected)[1]


def _kill_a_broker(
    run: subprocess.Popen[str], cluster: Cluster, victim: str, delay_s: float, kill: Kill, t0: float
) -> None:
    """Once the run's input topics hold records (the file is replayed), waits `delay_s` and SIGKILLs the
    broker that leads the most partitions of the run's topics, or the active controller."""
    admin = KafkaAdminClient(bootstrap_servers=cluster.info.bootstrap.split(","))
    try:
        deadline = time.monotonic() + 120
        while run.poll() is None and time.monotonic() < deadline:
            topics = _run_topics(admin)
            likes = [t for t in topics if t.endswith("likes")]
            if likes and _records(admin, likes[0]) > 0:
                break
            time.sleep(0.1)
        else:
            kill.error = "the run's input never arrived"
            return
        time.sleep(delay_s)
        leaders: Counter[int] = Counter()
        for topic in admin.describe_topics(_run_topics(admin)):
            for partition in topic["partitions"]:
                leaders[partition["leader_id"]] += 1
        kill.led = dict(leaders)
        node_id = leaders.most_common(1)[0][0] if victim == "leader" else _active_controller(cluster)
        pid = next(b.pid for b in cluster.info.brokers if b.node_id == node_id)
        os.kill(pid, signal.SIGKILL)
        kill.node_id, kill.after_s = node_id, time.monotonic() - t0
    except KafkaError as exc:
        kill.error = repr(exc)
    finally:
        admin.close()


def _records(admin: KafkaAdminClient, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=admin.config["bootstrap_servers"])
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values()) if partitions else 0
    finally:
        consumer.close()


@pytest.mark.parametrize("victim", ["leader", "controller"])
def test_a_broker_killed_during_a_replay_loses_and_doubles_nothing(
    victim: str, cluster: Cluster, tmp_path: Path
) -> None:
    scenario = build()
    file = tmp_path / "scenario.ndjson"
    file.write_bytes(b"\n".join(scenario.lines) + b"\n")
    store = f"chdb://{tmp_path / 'store'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")} | {"COLUMNS": "200"}
    args = ["--state-dir", str(tmp_path / "state"), "run", "--replay", str(file), "--exit-when-done",
            "--kafka", cluster.info.bootstrap, "--clickhouse", store, "--comment-sla", "30m",
            "--lateness", "10m", "--partitions", "2"]  # fmt: skip
    t0 = time.monotonic()
    run = subprocess.Popen(
        [sys.executable, "-m", "pulse", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kill = Kill()
    killer = threading.Thread(target=_kill_a_broker, args=(run, cluster, victim, 2.0, kill, t0), daemon=True)
    killer.start()
    try:
        out, err = run.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGTERM)
        time.sleep(1)
        run.send_signal(signal.SIGTERM)  # the second stops the run and its pieces at once
        out, err = run.communicate(timeout=120)
        pytest.fail(f"the run did not end within 300 s (broker {kill.node_id} killed): {err[-4000:]}")
    took_s = time.monotonic() - t0
    killer.join(5)
    print(
        f"\n{victim}: broker {kill.node_id} killed {kill.after_s or 0:.1f} s into the run (partitions led: "
        f"{kill.led}); the run took {took_s:.1f} s"
    )
    assert kill.node_id is not None, kill.error
    assert run.returncode == 0, err[-4000:] + out[-2000:]
    assert "3 rejected" in out, out
    assert len(assert_tables_match(env, store, scenario)) > 10
    survivors = cluster.kafka.info()
    assert survivors is not None and kill.node_id not in [b.node_id for b in survivors.brokers]
