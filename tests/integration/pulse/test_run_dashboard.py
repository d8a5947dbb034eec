"""`pulse run` on simulated publics starts the dashboard next to the pipeline and prints its address; the
dashboard reads the warehouse through the loader while the run goes on, and a browser renders it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

from pulse.local.local_kafka import free_port
from schemas import KafkaSettings
from tests.browser import rendered_dom


def test_pulse_run_serves_its_dashboard_through_the_loader(
    kafka: KafkaSettings, tmp_path: Path, unique: str
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")} | {
        "COLUMNS": "200",
        "PULSE_DASHBOARD__PORT": str(port),
        "PULSE_TOPICS__PREFIX": f"dash-{unique}-",
        "PULSE_PROCESSOR__APP_ID": f"dash-{unique}-processor",
        "PULSE_SINK__GROUP": f"dash-{unique}-sink",
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "pulse", "--state-dir", str(tmp_path / "state"), "run", "--kafka",
         kafka.bootstrap_servers, "--duration", "30s", "--rate", "100", "--accelerate", "120", "--comment-sla",
         "10m", "--partitions", "1", "--no-notify"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        panels = None
        deadline = time.monotonic() + 60
        while panels is None or not panels["keeping_up"]["communities"]:
            assert run.poll() is None, "pulse run ended before its dashboard showed data"
            assert time.monotonic() < deadline, f"no data on the dashboard in time: {panels}"
            try:
                with urllib.request.urlopen(url + "api/dashboard", timeout=10) as response:
                    panels = orjson.loads(response.read())
            except (urllib.error.HTTPError, OSError):  # not listening yet, or 503 until the loader serves
                time.sleep(0.5)
        assert panels["now"]["basis"] == "newest data", "simulated time runs behind the wall clock"
        page = rendered_dom(url)
        body = page.one("body")
        assert body.attrs["data-errors"] == "0", page.by_id("script-errors").text
        assert int(body.attrs["data-refreshes"]) >= 1
        assert page.by_id("keeping-up").one("tbody").all("tr")
    finally:
        out, err = run.communicate(timeout=180)
    assert run.returncode == 0, err + out
    assert f"dashboard: {url}" in err
