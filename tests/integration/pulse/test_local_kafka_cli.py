"""`pulse kafka up | status | down` on a broker of its own: the launcher's whole lifecycle, as a user runs it.

This is the one test that starts a second broker, because stopping the broker is what it checks.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from pulse.local.local_kafka import free_port, new_cluster_id


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
