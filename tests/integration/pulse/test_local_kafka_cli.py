"""`pulse kafka up | status | down` on a broker of its own, and on a cluster of three: the launcher's whole
lifecycle, as a user runs it.

These tests start brokers beside the session's, because stopping them is what they check.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from pulse.local.local_kafka import free_port, free_port_block, new_cluster_id


def pulse(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "pulse", "--state-dir", str(state), *args],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip


def java_brokers(state: Path) -> list[int]:
    """Pids of live broker JVMs whose command line names this state directory."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka" in cmdline and str(state).encode() in cmdline:
            found.append(int(proc.name))
    return found


def test_up_status_down_lifecycle(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port, controller = str(free_port()), str(free_port())
    ports = ("--port", port, "--controller-port", controller)
    # One fresh id in 64 starts with "-" (state dirs made before ids avoided it may hold one): it must not
    # be read as an option by the storage tool.
    (state / "kafka").mkdir(parents=True)
    (state / "kafka" / "cluster-id").write_text("-" + new_cluster_id()[1:])

    first = pulse(state, "kafka", "up", *ports, "--partitions", "3")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Kafka started at 127.0.0.1:{port}" in first.stdout
    try:
        again = pulse(state, "kafka", "up", *ports)
        assert again.returncode == 0 and "already running" in again.stdout
        assert len(java_brokers(state)) == 1

        status = pulse(state, "kafka", "status", "--port", port)
        assert status.returncode == 0, status.stderr
        assert f"bootstrap: 127.0.0.1:{port}" in status.stdout and "uptime:" in status.stdout
        for topic in ("likes", "comments", "reposts", "alerts", "dead-letters"):
            assert topic in status.stdout
        assert re.search(r"likes\s*│\s*3\s*│", status.stdout), status.stdout
    finally:
        down = pulse(state, "kafka", "down", "--port", port)
    assert down.returncode == 0 and "Kafka stopped" in down.stdout
    assert java_brokers(state) == []
    after = pulse(state, "kafka", "status", "--port", port)
    assert after.returncode == 1 and "not running" in after.stdout


def test_stale_state_file_is_cleared(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "kafka").mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (state / "kafka" / "broker.json").write_text(
        json.dumps({"pid": dead.pid, "bootstrap": "127.0.0.1:1", "started_at": "2026-01-01T00:00:00+00:00"})
    )
    status = pulse(state, "kafka", "status")
    assert status.returncode == 1 and "not running" in status.stdout
    assert not (state / "kafka" / "broker.json").exists()


def test_port_in_use_is_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = str(squatter.getsockname()[1])
        result = pulse(
            tmp_path / "state", "kafka", "up", "--port", port, "--controller-port", str(free_port())
        )
    assert result.returncode == 1
    assert f"port 127.0.0.1:{port} is in use by another process" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stdout + result.stderr


def test_a_cluster_of_three_up_status_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port_block(6)  # broker i: port+2i, controller port+1+2i
    bootstrap = ",".join(f"127.0.0.1:{port + 2 * i}" for i in range(3))
    up = pulse(
        state, "kafka", "up", "--brokers", "3", "--port", str(port), "--controller-port", str(port + 1)
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"Kafka cluster of 3 brokers started at {bootstrap}" in "".join(up.stdout.split("\n")), up.stdout
    try:
        assert len(java_brokers(state)) == 3
        admin = KafkaAdminClient(
            bootstrap_servers=f"127.0.0.1:{port + 4}"
        )  # a foreign client, one broker named
        try:
            brokers = admin.describe_cluster()["brokers"]
            topic = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "likes")])["topic"][
                "likes"
            ]
        finally:
            admin.close()
        assert sorted((b["broker_id"], b["port"], b.get("is_fenced")) for b in brokers) == [
            (1, port, False), (2, port + 2, False), (3, port + 4, False),
        ]  # fmt: skip
        assert topic["min.insync.replicas"]["value"] == "2"
        # librdkafka's kcat, told of one broker, learns of all three
        listed = subprocess.run(
            ["kcat", "-b", f"127.0.0.1:{port + 2}", "-L", "-J", "-m", "30"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert sorted(b["id"] for b in json.loads(listed.stdout)["brokers"]) == [1, 2, 3]

        status = pulse(state, "kafka", "status")
        assert status.returncode == 0, status.stderr
        assert f"bootstrap: {bootstrap}" in status.stdout
        for pid in java_brokers(state):
            assert re.search(rf"│\s*{pid}\s*│", status.stdout), status.stdout
        for i in range(3):
            assert re.search(
                rf"│ {i + 1}\s*│ 127.0.0.1:{port + 2 * i}\s*│ 127.0.0.1:{port + 1 + 2 * i}", status.stdout
            )
        assert re.search(r"likes\s*│\s*4\s*│\s*3\s*│", status.stdout), (
            status.stdout
        )  # 4 partitions, 3 replicas
    finally:
        down = pulse(state, "kafka", "down")
    assert down.returncode == 0 and "Kafka stopped (3 brokers)" in down.stdout, down.stdout + down.stderr
    assert java_brokers(state) == []


def test_a_cluster_port_in_use_is_named_before_anything_starts(tmp_path: Path) -> None:
    port = free_port_block(6)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port + 4))  # broker 2's client port
        squatter.listen()
        result = pulse(
            tmp_path / "state", "kafka", "up", "--brokers", "3", "--port", str(port),
            "--controller-port", str(port + 1),
        )  # fmt: skip
    said = " ".join(result.stderr.split())
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port 127.0.0.1:{port + 4} is in use by another process" in said, said
    assert "port+2i" in said and "Traceback" not in result.stdout + result.stderr
    assert java_brokers(tmp_path / "state") == []
