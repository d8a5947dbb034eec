"""A real single-node Apache Kafka (KRaft, broker and controller in one JVM) started from Maven jars.

No Docker engine and no Kafka tarball are available on our machines, so `deploy/kafka/pom.xml` collects the
broker's jars from Maven Central and this module formats storage, starts the JVM in its own process group,
waits until it answers a metadata request, and stops it. Everything lives under `<state_dir>/kafka`:
`server.properties`, `data/`, `logs/` and `broker.json` (pid, addresses, start time).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
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

log = logging.getLogger(__name__)

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"


class LocalKafkaSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=9092, ge=1, le=65535)
    controller_port: int = Field(default=9093, ge=1, le=65535)
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
    pid: int
    bootstrap: str
    started_at: datetime

    @property
    def uptime_s(self) -> float:
        return (datetime.now(UTC) - self.started_at).total_seconds()


class LocalKafka:
    """Owns one local broker's files and process. Nothing happens until `up()`, `down()` or `info()`."""

    def __init__(
        self, settings: LocalKafkaSettings, state_dir: Path, *, deploy_dir: Path = DEPLOY_DIR
    ) -> None:
        self.settings = settings
        self.deploy_dir = deploy_dir
        self.home = state_dir.resolve() / "kafka"
        self.libs_dir = deploy_dir / "target" / "libs"

    @property
    def bootstrap(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def _state_file(self) -> Path:
        return self.home / "broker.json"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "server.log"

    def info(self) -> BrokerInfo | None:
        """The running broker this state directory started, or None. Clears a stale state file."""
        try:
            raw = json.loads(self._state_file.read_text())
            info = BrokerInfo(raw["pid"], raw["bootstrap"], datetime.fromisoformat(raw["started_at"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable broker state file, removing it", extra={"path": str(self._state_file)})
            self._state_file.unlink(missing_ok=True)
            return None
        if not self._is_our_broker(info.pid):
            log.warning("removing stale broker state file", extra={"pid": info.pid})
            self._state_file.unlink(missing_ok=True)
            return None
        return info

    def up(self) -> tuple[BrokerInfo, bool]:
        """Starts the broker unless it already runs; returns its info and whether it was started now."""
        running = self.info()
        if running is not None:
            return running, False
        for port in (self.settings.port, self.settings.controller_port):
            if not _port_free(self.settings.host, port):
                raise LocalKafkaError(
                    f"port {self.settings.host}:{port} is in use by another process (not a broker started from "
                    f"{self.home}); stop it or choose other ports with --port/--controller-port"
                )
        self.ensure_jars()
        self._write_config()
        self._format_storage()
        started_at = datetime.now(UTC)
        process = self._launch()
        info = BrokerInfo(process.pid, self.bootstrap, started_at)
        self._state_file.write_text(
            json.dumps({"pid": info.pid, "bootstrap": info.bootstrap, "started_at": started_at.isoformat()})
        )
        try:
            self._wait_ready(process)
        except BaseException:
            self._stop_pid(process.pid)
            self._state_file.unlink(missing_ok=True)
            raise
        return info, True

    def down(self) -> bool:
        """Stops the broker (SIGTERM to its process group, then SIGKILL); False if none was running."""
        info = self.info()
        if info is None:
            return False
        self._stop_pid(info.pid)
        self._state_file.unlink(missing_ok=True)
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

    def _write_config(self) -> None:
        s = self.settings
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{s.host}:{s.port},CONTROLLER://{s.host}:{s.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{s.host}:{s.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": f"{s.host}:{s.controller_port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            "num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            # 50 offsets partitions make the first consumer-group join slow on a small machine.
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # The default 128 MiB dedupe buffer does not fit a 512 MB heap; faust changelogs need the cleaner.
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            "auto.create.topics.enable": "false",
            # Record timestamps are event times: time-based retention would delete replayed history.
            "log.retention.ms": "-1",
            "log.retention.bytes": str(1 << 30),
        }
        text = "".join(f"{key}={value}\n" for key, value in properties.items())
        (self.home / "server.properties").write_text(text)

    def _java(self, main: str, *args: str, heap: bool = False) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise LocalKafkaError(
                "Java 17+ ('java') is needed to run the local broker; install it (apt-get install openjdk-17-jre-headless)"
            )
        opts = [
            f"-Dlog4j2.configurationFile={self.deploy_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
        ]
        if heap:
            mb = self.settings.heap_mb
            opts += [f"-Xms{min(256, mb)}m", f"-Xmx{mb}m", "-XX:+UseSerialGC", "-Djava.awt.headless=true"]
        if self.settings.jit == "c1":
            opts.append("-XX:TieredStopAtLevel=1")
        return [java, *opts, "-cp", str(self.libs_dir / "*"), main, *args]

    def _format_storage(self) -> None:
        id_file = self.home / "cluster-id"
        if not id_file.exists():
            id_file.write_text(new_cluster_id())
        command = self._java(
            "kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
            # `=`: an id starting with "-" (older state dirs may hold one) is not read as an option.
            f"--cluster-id={id_file.read_text().strip()}", "-c", str(self.home / "server.properties"),
        )  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting Kafka storage failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )

    def _launch(self) -> subprocess.Popen[bytes]:
        out = (self.home / "logs" / "stdout.log").open("ab")
        with out:
            return subprocess.Popen(
                self._java("kafka.Kafka", str(self.home / "server.properties"), heap=True),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LocalKafkaError(
                    f"the broker exited with code {process.returncode} while starting; see {self.log_file} "
                    f"and {self.home / 'logs' / 'stdout.log'}"
                )
            if not _port_free(self.settings.host, self.settings.port) and _answers_metadata(self.bootstrap):
                return
            time.sleep(0.25)
        raise LocalKafkaError(
            f"the broker did not answer on {self.bootstrap} within {self.settings.start_timeout_s:.0f} s; see {self.log_file}"
        )

    def _stop_pid(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.stop_timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            log.warning("broker did not stop in time, killing it", extra={"pid": pid})
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)

    def _is_our_broker(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return b"kafka.Kafka" in cmdline and str(self.home / "server.properties").encode() in cmdline


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


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now; for tests and for brokers beside another one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (22 URL-safe base64 characters), never starting with "-":
    Kafka's own generator avoids those too, since command-line tools would read one as an option (seen: one
    fresh broker in 64 failed to format with "argument --cluster-id/-t: expected one argument")."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22]
        if not candidate.startswith("-"):
            return candidate
