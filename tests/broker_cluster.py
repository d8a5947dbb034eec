"""A local Kafka cluster of three brokers for one test, and what the failover tests do to it: find the
broker that leads the most partitions or the active controller, kill one with SIGKILL, bring it back.

The cluster is the test's own (three JVMs, 7-10 s to start, on free ports); `three_brokers` stops every
broker it started, the ones brought back included, whatever the test did."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient

from pulse.local.local_kafka import ClusterInfo, LocalKafka, LocalKafkaSettings, free_port_block


@dataclass
class Cluster:
    kafka: LocalKafka
    info: ClusterInfo  # as started: the addresses stay, the pids change when a broker comes back
    started_s: float

    @property
    def bootstrap(self) -> str:
        return self.info.bootstrap

    def kill(self, node_id: int) -> None:
        """SIGKILL to the broker `node_id` as it runs now."""
        running = self.kafka.info()
        assert running is not None, "no broker of the cluster runs"
        os.kill(next(b.pid for b in running.brokers if b.node_id == node_id), signal.SIGKILL)

    def bring_back(self) -> float:
        """Starts the brokers that were killed, until the cluster reports all three live; the seconds it
        took."""
        t0 = time.monotonic()
        _, started = self.kafka.up()
        assert started, "no broker of the cluster was down"
        return time.monotonic() - t0

    def running(self) -> list[int]:
        info = self.kafka.info()
        return [] if info is None else [b.node_id for b in info.brokers]

    def leaders(self, topics: list[str] | None = None) -> Counter[int]:
        """How many partitions of `topics` (default: every topic but Kafka's internal ones) each broker
        leads."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","))
        try:
            names = (
                topics if topics is not None else [t for t in admin.list_topics() if not t.startswith("__")]
            )
            led: Counter[int] = Counter()
            for topic in admin.describe_topics(names):
                for partition in topic["partitions"]:
                    led[partition["leader_id"]] += 1
            return led
        finally:
            admin.close()

    def active_controller(self) -> int:
        """The node that last became the KRaft quorum's leader (the highest epoch), as the nodes' logs say:
        kafka-python has no DescribeQuorum, and DescribeCluster names any broker as the controller."""
        elected = []
        for log in self.kafka.home.glob("node-*/logs/server.log*"):
            for line in log.read_text(errors="replace").splitlines():
                if "Completed transition to Leader(" in line:
                    node, epoch = (
                        re.search(r"\[RaftManager id=(\d+)\]", line),
                        re.search(r"epoch=(\d+)", line),
                    )
                    if node and epoch:
                        elected.append((int(epoch.group(1)), int(node.group(1))))
        return max(elected)[1]


@contextlib.contextmanager
def three_brokers(state_dir: Path) -> Iterator[Cluster]:
    port = free_port_block(6)
    kafka = LocalKafka(LocalKafkaSettings(port=port, controller_port=port + 1, brokers=3), state_dir)
    t0 = time.monotonic()
    info, _ = kafka.up()
    started_s = time.monotonic() - t0
    print(f"\n3-broker cluster at {info.bootstrap} started in {started_s:.1f} s (pids {info.pids})")
    try:
        yield Cluster(kafka, info, started_s)
    finally:
        kafka.down()
