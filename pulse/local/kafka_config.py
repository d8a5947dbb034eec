"""What each node of the local Kafka is: its files, its ports, its place in the KRaft quorum, and the
`server.properties` that tells it so.

One broker (the default) lives directly in `<state_dir>/kafka` as it always has: one voter that formats
itself (`--standalone`, found through `controller.quorum.bootstrap.servers`), every replication factor 1.
A cluster of n brokers lives in `<state_dir>/kafka/node-<id>` (ids 1..n), each node a broker and a
controller, with a static quorum (`controller.quorum.voters` names all n, every node formatted with the
same cluster id and without `--standalone`: the two ways of naming voters cannot be mixed).

Ports: node i (from 0) listens for clients on `port + 2i` and for the quorum on `controller_port + 2i`, so
the defaults 9092/9093 give 9092/9093, 9094/9095, 9096/9097 and a cluster's ports are one block.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pulse.errors import LocalKafkaError
from schemas import min_insync_replicas

PORT_STEP = 2  # node i's ports are the first node's plus PORT_STEP * i


def replication_for(brokers: int) -> int:
    """Replicas of each partition on a cluster of `brokers`: three where there are three, else all."""
    return min(3, brokers)


@dataclass(frozen=True, slots=True)
class KafkaNode:
    node_id: int
    home: Path  # server.properties, data/, logs/, broker.json
    host: str
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def controller(self) -> str:
        return f"{self.host}:{self.controller_port}"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"


def plan_nodes(root: Path, host: str, port: int, controller_port: int, brokers: int) -> list[KafkaNode]:
    """The nodes of a local Kafka of `brokers` brokers under `root` (`<state_dir>/kafka`), their ports
    checked to be distinct and in range."""
    if brokers == 1:
        nodes = [KafkaNode(1, root, host, port, controller_port)]
    else:
        nodes = [
            KafkaNode(
                i + 1, root / f"node-{i + 1}", host, port + PORT_STEP * i, controller_port + PORT_STEP * i
            )
            for i in range(brokers)
        ]
    ports = [p for node in nodes for p in (node.port, node.controller_port)]
    if len(set(ports)) != len(ports) or max(ports) > 65535:
        raise LocalKafkaError(
            f"{brokers} brokers from client port {port} and controller port {controller_port} need ports "
            f"{sorted(ports)} (broker i uses port+{PORT_STEP}i and controller-port+{PORT_STEP}i): they must be "
            "distinct and at most 65535; e.g. --port 9092 --controller-port 9093"
        )
    return nodes


def node_properties(node: KafkaNode, nodes: list[KafkaNode]) -> dict[str, str]:
    """`server.properties` of `node` in a local Kafka made of `nodes`."""
    replicas = replication_for(len(nodes))
    min_insync = min_insync_replicas(replicas)
    quorum = (
        {"controller.quorum.bootstrap.servers": node.controller}
        if len(nodes) == 1
        else {"controller.quorum.voters": ",".join(f"{n.node_id}@{n.controller}" for n in nodes)}
    )
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "listeners": f"PLAINTEXT://{node.bootstrap},CONTROLLER://{node.controller}",
        "advertised.listeners": f"PLAINTEXT://{node.bootstrap}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        **quorum,
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(node.home / "data"),
        "num.partitions": "4",
        # Topics created without a replication factor (faust's own, a user's tools) get the cluster's.
        **({} if replicas == 1 else {"default.replication.factor": str(replicas)}),
        **({} if min_insync == 1 else {"min.insync.replicas": str(min_insync)}),
        "offsets.topic.replication.factor": str(replicas),
        # 50 offsets partitions make the first consumer-group join slow on a small machine.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_insync),
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_insync),
        "group.initial.rebalance.delay.ms": "0",
        # The default 128 MiB dedupe buffer does not fit a 512 MB heap; faust changelogs need the cleaner.
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        "auto.create.topics.enable": "false",
        # Record timestamps are event times: time-based retention would delete replayed history.
        "log.retention.ms": "-1",
        "log.retention.bytes": str(1 << 30),
    }
