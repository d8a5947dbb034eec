"""A real Apache Kafka (KRaft, each node a broker and a controller in one JVM) started from Maven jars: one
broker by default, or a local cluster of several (`pulse kafka up --brokers 3`) to try what the loss of a
broker does to the pipeline.

No Docker engine and no Kafka tarball are available on our machines, so `deploy/kafka/pom.xml` collects the
broker's jars from Maven Central and this module formats storage, starts each node's JVM in its own process
group, waits until the cluster answers with every broker registered, and stops them. Everything lives under
`<state_dir>/kafka`: one broker's `server.properties`, `data/`, `logs/` and `broker.json` (pid, addresses,
start time) right there, a cluster's in `node-<id>/` each (`pulse.local.kafka_config` has the layout and
the port scheme).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from pulse.errors import LocalKafkaError
from pulse.local.kafka_config import KafkaNode, node_properties, plan_nodes

log = logging.getLogger(__name__)

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
MAX_BROKERS = 9


class LocalKafkaSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=9092, ge=1, le=65535)
    controller_port: int = Field(default=9093, ge=1, le=65535)
    # Brokers of the local Kafka; broker i (from 0) uses port + 2i and controller_port + 2i.
    brokers: int = Field(default=1, ge=1, le=MAX_BROKERS)
    heap_mb: int = Field(default=512, ge=128, le=512)
    # How the JVMs started here (the broker, the storage formatter) compile: "c1" compiles hot code once,
    # quickly, and stops there (-XX:TieredStopAtLevel=1); "tiered", the JVM's own default, compiles it again
    # with C2 later. Broker CPU per 1M-event `pulse bench` run, five runs after a start, 2 cores: tiered
    # 4.4, 3.7, 2.8, 2.6, 2.2 s while C2 compiled; c1 2.9, 2.3, 2.6, 2.3, 2.4 s, then 1.9-2.2 s. The
    # broker's work is mostly I/O, which C2 does not speed up, and a local broker lives for a session.
    jit: Literal["c1", "tiered"] = "c1"
    start_timeout_s: float = Field(default=120.0, gt=0, le=600)
    stop_timeout_s: float = Field(default=30.0, gt=0, le=300)


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    node_id: int
    pid: int
    bootstrap: str
    controller: str | None  # None in a state file written before clusters existed
    started_at: datetime

    @property
    def uptime_s(self) -> float:
        return (datetime.now(UTC) - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """The running brokers of one state directory, by node id."""

    brokers: tuple[BrokerInfo, ...]

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(b.pid for b in self.brokers)


class LocalKafka:
    """Owns the files and processes of one state directory's local Kafka (one broker, or the cluster
    `settings.brokers` asks for). Nothing happens until `up()`, `down()` or `info()`."""

    def __init__(
        self, settings: LocalKafkaSettings, state_dir: Path, *, deploy_dir: Path = DEPLOY_DIR
    ) -> None:
        self.settings = settings
        self.deploy_dir = deploy_dir
        self.home = state_dir.resolve() / "kafka"
        self.libs_dir = deploy_dir / "target" / "libs"

    def nodes(self) -> list[KafkaNode]:
        """The nodes `settings` asks for (raises `LocalKafkaError` if their ports collide)."""
        s = self.settings
        return plan_nodes(self.home, s.host, s.port, s.controller_port, s.brokers)

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes())

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "server.log"

    def info(self) -> ClusterInfo | None:
        """The running brokers this state directory started, whatever their number, or None. Clears stale
        state files."""
        files = [self.home / "broker.json", *sorted(self.home.glob("node-*/broker.json"))]
        running = [info for file in files if (info := self._read_state(file)) is not None]
        if not running:
            return None
        return ClusterInfo(tuple(sorted(running, key=lambda b: b.node_id)))

    def up(self) -> tuple[ClusterInfo, bool]:
        """Starts the brokers that do not run yet (all of them, or those of a cluster that stopped or were
        killed); returns the running brokers and whether any was started now."""
        nodes = self.nodes()
        running = self.info()
        if running is not None:
            single = (self.home / "broker.json").exists()
            if single != (len(nodes) == 1) or len(running.brokers) > len(nodes):
                what = "one broker" if single else f"a cluster of {len(running.brokers)} running broker(s)"
                raise LocalKafkaError(
                    f"{what} runs from {self.home} at {running.bootstrap}, not the {len(nodes)} broker(s) asked "
                    "for; stop it with `pulse kafka down` first, or ask for as many --brokers"
                )
            if len(running.brokers) == len(nodes):
                return running, False  # wherever it listens: as started, it is this state's Kafka
            planned = {node.node_id: node.bootstrap for node in nodes}
            moved = [b for b in running.brokers if planned.get(b.node_id) != b.bootstrap]
            if moved:
                raise LocalKafkaError(
                    f"the cluster's running brokers listen at {running.bootstrap}, not where the ports asked "
                    f"for put them ({self.bootstrap}): ask for the ports it was started with"
                )
        up = {b.node_id for b in running.brokers} if running is not None else set()
        missing = [node for node in nodes if node.node_id not in up]
        self._check_ports(missing)
        self.ensure_jars()
        self._check_cluster_size(len(nodes))
        for node in missing:
            self._write_config(node, nodes)
        self._format_storage(missing, standalone=len(nodes) == 1)
        started: list[tuple[KafkaNode, subprocess.Popen[bytes]]] = []
        try:
            for node in missing:
                process = self._launch(node)
                started.append((node, process))
                _state_file(node).write_text(json.dumps({
                    "node_id": node.node_id, "pid": process.pid, "bootstrap": node.bootstrap,
                    "controller": node.controller, "started_at": datetime.now(UTC).isoformat(),
                }))  # fmt: skip
            for node, process in started:
                self._wait_answering(node, process)
            self._wait_registered(nodes, started)
        except BaseException:
            self._stop_pids([process.pid for _, process in started])
            for node, _ in started:
                _state_file(node).unlink(missing_ok=True)
            raise
        info = self.info()
        if info is None:
            raise LocalKafkaError(f"the brokers started from {self.home} exited right after starting")
        return info, True

    def down(self) -> bool:
        """Stops every broker of this state directory at once (SIGTERM to their process groups, then
        SIGKILL to those still there after `stop_timeout_s`); False if none was running."""
        info = self.info()
        if info is None:
            return False
        self._stop_pids(list(info.pids))
        for file in [self.home / "broker.json", *self.home.glob("node-*/broker.json")]:
            file.unlink(missing_ok=True)
        return True

    def ensure_jars(self) -> None:
        """Collects the broker's jars with Maven unless they are already there."""
        if any(self.libs_dir.glob("kafka_2.13-*.jar")):
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalKafkaError(
                "Maven ('mvn') is needed once to collect the Kafka jars; install it (apt-get install maven)"
            )
        log.info("collecting Kafka jars with Maven (first run downloads tens of MB)")
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(self.deploy_dir / "pom.xml"), "package"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not any(self.libs_dir.glob("kafka_2.13-*.jar")):
            raise LocalKafkaError(
                f"Maven could not collect the Kafka jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )

    def _read_state(self, file: Path) -> BrokerInfo | None:
        try:
            raw = json.loads(file.read_text())
            info = BrokerInfo(
                int(raw.get("node_id", 1)), raw["pid"], raw["bootstrap"], raw.get("controller"),
                datetime.fromisoformat(raw["started_at"]),
            )  # fmt: skip
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable broker state file, removing it", extra={"path": str(file)})
            file.unlink(missing_ok=True)
            return None
        if not _is_broker_of(info.pid, file.parent / "server.properties"):
            log.warning("removing stale broker state file", extra={"pid": info.pid, "path": str(file)})
            file.unlink(missing_ok=True)
            return None
        return info

    def _check_ports(self, nodes: list[KafkaNode]) -> None:
        """Every port of `nodes` free, checked before anything starts: a cluster half started on taken
        ports would fail later with a less clear message."""
        for node in nodes:
            for port in (node.port, node.controller_port):
                if not _port_free(node.host, port):
                    raise LocalKafkaError(
                        f"port {node.host}:{port} is in use by another process (not a broker started from "
                        f"{self.home}); stop it or choose other ports with --port/--controller-port"
                        + (
                            f" (broker i of a cluster uses port+2i and controller-port+2i: "
                            f"{', '.join(f'{n.port}/{n.controller_port}' for n in self.nodes())})"
                            if self.settings.brokers > 1
                            else ""
                        )
                    )

    def _check_cluster_size(self, brokers: int) -> None:
        """A cluster's quorum is its static voter list: data formatted for another number of nodes cannot
        join it. One broker's data (directly under `kafka/`) is separate and never in the way."""
        if brokers == 1:
            return
        size_file = self.home / "cluster-size"
        if size_file.exists() and int(size_file.read_text().strip()) != brokers:
            raise LocalKafkaError(
                f"{self.home} holds the data of a {size_file.read_text().strip()}-broker cluster (node-*/): "
                f"start it with --brokers {size_file.read_text().strip()}, or delete {self.home}/node-* and "
                f"{size_file} for a new cluster of {brokers}"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        size_file.write_text(f"{brokers}\n")

    def _write_config(self, node: KafkaNode, nodes: list[KafkaNode]) -> None:
        (node.home / "logs").mkdir(parents=True, exist_ok=True)
        text = "".join(f"{key}={value}\n" for key, value in node_properties(node, nodes).items())
        node.properties_file.write_text(text)

    def _java(self, main: str, *args: str, heap: bool = False, logs: Path | None = None) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise LocalKafkaError(
                "Java 17+ ('java') is needed to run the local broker; install it (apt-get install openjdk-17-jre-headless)"
            )
        opts = [
            f"-Dlog4j2.configurationFile={self.deploy_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={logs or self.home / 'logs'}",
        ]
        if heap:
            mb = self.settings.heap_mb
            opts += [f"-Xms{min(256, mb)}m", f"-Xmx{mb}m", "-XX:+UseSerialGC", "-Djava.awt.headless=true"]
        if self.settings.jit == "c1":
            opts.append("-XX:TieredStopAtLevel=1")
        return [java, *opts, "-cp", str(self.libs_dir / "*"), main, *args]

    def _format_storage(self, nodes: list[KafkaNode], *, standalone: bool) -> None:
        """Formats each node's data directory (unless it is already) with the state directory's cluster
        id, the nodes side by side: one JVM start of the formatter costs seconds."""
        id_file = self.home / "cluster-id"
        self.home.mkdir(parents=True, exist_ok=True)
        if not id_file.exists():
            id_file.write_text(new_cluster_id())
        formatting = [
            (node, subprocess.Popen(
                self._java(
                    "kafka.tools.StorageTool", "format", *(["--standalone"] if standalone else []),
                    "--ignore-formatted",
                    # `=`: an id starting with "-" (older state dirs may hold one) is not read as an option.
                    f"--cluster-id={id_file.read_text().strip()}", "-c", str(node.properties_file),
                    logs=node.home / "logs",
                ),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            ))
            for node in nodes
        ]  # fmt: skip
        failed = []
        for node, process in formatting:
            output, _ = process.communicate()
            if process.returncode != 0:
                failed.append(f"node {node.node_id}: {output.decode(errors='replace')[-2000:]}")
        if failed:
            raise LocalKafkaError("formatting Kafka storage failed:\n" + "\n".join(failed))

    def _launch(self, node: KafkaNode) -> subprocess.Popen[bytes]:
        logs = node.home / "logs"
        out = (logs / "stdout.log").open("ab")
        with out:
            return subprocess.Popen(
                self._java("kafka.Kafka", str(node.properties_file), heap=True, logs=logs),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _wait_answering(self, node: KafkaNode, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        logs = node.home / "logs"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LocalKafkaError(
                    f"broker {node.node_id} exited with code {process.returncode} while starting; see "
                    f"{logs / 'server.log'} and {logs / 'stdout.log'}"
                )
            if not _port_free(node.host, node.port) and _answers_metadata(node.bootstrap):
                return
            time.sleep(0.25)
        raise LocalKafkaError(
            f"broker {node.node_id} did not answer on {node.bootstrap} within "
            f"{self.settings.start_timeout_s:.0f} s; see {logs / 'server.log'}"
        )

    def _wait_registered(
        self, nodes: list[KafkaNode], started: list[tuple[KafkaNode, subprocess.Popen[bytes]]]
    ) -> None:
        """Until the cluster reports every node as a live (unfenced) broker: before that, a topic with as
        many replicas as brokers cannot be created."""
        if len(nodes) == 1:
            return
        bootstrap = ",".join(node.bootstrap for node in nodes)
        deadline = time.monotonic() + self.settings.start_timeout_s
        live: list[int] = []
        while time.monotonic() < deadline:
            for node, process in started:
                if process.poll() is not None:
                    raise LocalKafkaError(
                        f"broker {node.node_id} exited with code {process.returncode} while the cluster "
                        f"formed; see {node.home / 'logs' / 'server.log'}"
                    )
            live = live_brokers(bootstrap)
            if len(live) == len(nodes):
                return
            time.sleep(0.25)
        raise LocalKafkaError(
            f"the cluster at {bootstrap} reported live brokers {live} within "
            f"{self.settings.start_timeout_s:.0f} s, not all {len(nodes)}; see each node's logs/server.log "
            f"under {self.home}"
        )

    def _stop_pids(self, pids: list[int]) -> None:
        """SIGTERM to every pid's process group at once, then waits; SIGKILL to what is left after
        `stop_timeout_s`. At once: a broker stopping cleanly asks the quorum's leader to let it go, and
        the last nodes of a cluster stopped one by one wait for a quorum that no longer exists."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.stop_timeout_s
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)
        for pid in pids:
            if _alive(pid):
                log.warning("broker did not stop in time, killing it", extra={"pid": pid})
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                while _alive(pid):
                    time.sleep(0.05)


def _state_file(node: KafkaNode) -> Path:
    return node.home / "broker.json"


def _is_broker_of(pid: int, properties: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and str(properties).encode() in cmdline


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a child we started but did not reap yet)."""
    try:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != 0


def _answers_metadata(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient  # imported late: kafka-python is slow to import and only needed here
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    except (KafkaError, OSError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def live_brokers(bootstrap: str) -> list[int]:
    """The node ids of the brokers the cluster at `bootstrap` reports live (registered, not fenced); []
    while it cannot say."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=5_000)
    except (KafkaError, OSError):
        return []
    try:
        brokers = admin.describe_cluster()["brokers"]
        return sorted(int(b["broker_id"]) for b in brokers if not b.get("is_fenced", False))
    except (KafkaError, OSError, KeyError):
        return []
    finally:
        admin.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now; for tests and for brokers beside another one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


PRIVATE_PORTS_FROM = 20_000  # where `free_port_block` looks from (well-known services sit lower)


def _ephemeral_ports_start() -> int:
    """The first port of the range the OS picks outgoing connections' ports from (Linux's own default
    when it cannot tell)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (22 URL-safe base64 characters), never starting with "-":
    Kafka's own generator avoids those too, since command-line tools would read one as an option (seen: one
    fresh broker in 64 failed to format with "argument --cluster-id/-t: expected one argument")."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22]
        if not candidate.startswith("-"):
            return candidate


def free_port_block(count: int, host: str = "127.0.0.1", attempts: int = 100) -> int:
    """The first of `count` consecutive ports that are all free right now (a cluster's ports are one
    block: `kafka_config.PORT_STEP`); for tests. Taken below the range the OS hands out to outgoing
    connections: a cluster's brokers bind their ports seconds after this check (a JVM each), and a port of
    that range was once taken meanwhile by a client's connection ("Address already in use" at a broker's
    start, in `make test`)."""
    below = _ephemeral_ports_start() - count
    if below <= PRIVATE_PORTS_FROM:  # an OS handing out nearly every port: anywhere, then
        below = 65_536 - count
    for _ in range(attempts):
        first = random.randrange(PRIVATE_PORTS_FROM, below)
        with contextlib.ExitStack() as held:
            try:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.bind((host, port))
            except OSError:
                continue
            return first
    raise LocalKafkaError(f"found no {count} consecutive free ports on {host}")
