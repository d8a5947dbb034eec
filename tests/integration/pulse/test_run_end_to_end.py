"""`pulse run --replay FILE --exit-when-done` end to end (real broker, real worker, loader and embedded
store, as child processes), against answers the test works out itself from the scenario it writes:
duplicates, out-of-order lines within the allowed lateness, replies before their comments, deleted
comments and malformed lines included. Then the same file again into the same store: the same tables."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from schemas import KafkaSettings

T0 = 1_772_359_200_000  # 2026-03-01T10:00:00Z
HOUR = 3_600_000
T_END = T0 + 3 * HOUR
SLA_MS = 1_800_000
MINUTE = 60_000


@dataclass
class Scenario:
    lines: list[bytes] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # each valid event once, as written
    sla: dict[str, tuple[int | None, float | None, int, int]] = field(default_factory=dict)
    alerts: set[str] = field(default_factory=set)


def build(seed: int = 4) -> Scenario:
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    posts = [("g1", "p1"), ("g1", "p2"), ("g2", "p7"), ("g2", "p8"), ("g2", "p9")]
    s = Scenario()
    n = 0

    def add(kind: str, community: str, post: str, ts: int, **extra: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        event = {"event_id": f"e{n}", "type": kind, "platform": "vk", "community_id": community,
                 "post_id": post, "user_id": extra.pop("user", f"u{rng.randrange(40)}"), "ts": ts, **extra}  # fmt: skip
        events.append(event)
        return event

    for _ in range(700):
        community, post = rng.choice(posts)
        ts = T0 + rng.randrange(3 * HOUR - 5 * MINUTE)
        roll = rng.random()
        if roll < 0.55:
            add("like", community, post, ts)
        elif roll < 0.6:
            add("unlike", community, post, ts)
        elif roll < 0.7:
            add("repost", community, post, ts)
        else:
            deadline = ts + SLA_MS
            if abs(deadline - T_END) < 60_000:
                continue  # no deadline right at the end of the input: the test stays clear of the boundary
            comment = add("comment", community, post, ts, comment_id=f"m{n + 1}", text="когда доставка?")
            cid = comment["comment_id"]
            fate = rng.random()
            reply_at = None
            if fate < 0.4:
                reply_at = ts + int(SLA_MS * rng.uniform(0.1, 0.5))
            elif fate < 0.7:
                reply_at = ts + int(SLA_MS * rng.uniform(1.3, 1.8))
            elif fate < 0.76:
                add(
                    "comment_delete",
                    community,
                    post,
                    ts + SLA_MS // 10,
                    comment_id=cid,
                    user=comment["user_id"],
                )
                s.sla[cid] = (None, None, 0, 1)
                continue
            if reply_at is not None and reply_at < T_END - 60_000:
                add("comment", community, post, reply_at, comment_id=f"r{cid}", parent_id=cid, by_community=True,
                    user=f"-{community}", text="Здравствуйте! Уже отвечаем.")  # fmt: skip
                late = reply_at - ts > SLA_MS
                s.sla[cid] = (reply_at, (reply_at - ts) / 1000, int(late), 0)
                if late:
                    s.alerts |= {f"vk:{community}:{cid}:unanswered_comment", f"vk:{community}:{cid}:resolved"}
            else:
                breached = deadline + 1000 <= T_END
                s.sla[cid] = (None, None, int(breached), 0)
                if breached:
                    s.alerts.add(f"vk:{community}:{cid}:unanswered_comment")
    add("like", "g1", "p1", T_END)  # the newest event: where the input ends in event time
    events.sort(key=lambda e: e["ts"])
    s.events = list(events)
    # Out of order within the allowed lateness: shuffled in blocks of five (a few minutes at most).
    shuffled: list[dict[str, Any]] = []
    for i in range(0, len(events) - 1, 5):
        block = events[i : min(i + 5, len(events) - 1)]
        rng.shuffle(block)
        shuffled += block
    shuffled.append(events[-1])
    # Replies written before their comments (close enough in time that the comment is not late).
    by_id = {e.get("comment_id"): i for i, e in enumerate(shuffled) if e["type"] == "comment"}
    ts_of = {e.get("comment_id"): e["ts"] for e in shuffled if e["type"] == "comment"}
    swaps = [e for e in shuffled if e.get("by_community") and e["ts"] - ts_of[e["parent_id"]] < 6 * MINUTE][
        :4
    ]
    assert len(swaps) == 4
    for reply in swaps:
        i, j = by_id[reply["parent_id"]], shuffled.index(reply)
        shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
        by_id = {e.get("comment_id"): k for k, e in enumerate(shuffled) if e["type"] == "comment"}
    s.lines = [orjson.dumps(e) for e in shuffled]
    for k in range(0, len(s.lines), 97):  # duplicates: the same line again, later
        s.lines.insert(min(k + 40, len(s.lines) - 1), s.lines[k])
    s.lines[100:100] = [b"not json at all", b'{"event_id": "x1", "type": "like"}', b'{"event_id": 5}']
    return s


def expected_minutes(events: list[dict[str, Any]]) -> dict[tuple[str, str, int], tuple[int, int, int, int]]:
    counts: dict[tuple[str, str, int], Counter[str]] = {}
    for e in events:
        if e["type"] in ("like", "unlike", "comment", "repost"):
            key = (e["community_id"], e["post_id"], e["ts"] // MINUTE * 60)
            counts.setdefault(key, Counter())[e["type"]] += 1
    return {k: (c["like"], c["unlike"], c["comment"], c["repost"]) for k, c in counts.items()}


@dataclass
class ScenarioRun:
    """The scenario written to a file of the test's own, and the environment and arguments of a `pulse run
    --replay FILE --exit-when-done` that replays it into a store of the test's own."""

    scenario: Scenario
    store: str
    env: dict[str, str]
    args: list[str]


def scenario_run(tmp_path: Path, bootstrap: str) -> ScenarioRun:
    scenario = build()
    file = tmp_path / "scenario.ndjson"
    file.write_bytes(b"\n".join(scenario.lines) + b"\n")
    store = f"chdb://{tmp_path / 'store'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")} | {"COLUMNS": "200"}
    args = ["--state-dir", str(tmp_path / "state"), "run", "--replay", str(file), "--exit-when-done",
            "--kafka", bootstrap, "--clickhouse", store, "--comment-sla", "30m",
            "--lateness", "10m", "--partitions", "2"]  # fmt: skip
    return ScenarioRun(scenario, store, env, args)


def pulse(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulse", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def query(env: dict[str, str], store: str, sql: str) -> list[list[Any]]:
    done = pulse(env, "query", "--clickhouse", store, sql, "--format", "json")
    assert done.returncode == 0, done.stderr
    return [list(row.values()) for row in orjson.loads(done.stdout)]


def assert_tables_match(env: dict[str, str], store: str, scenario: Scenario) -> set[str]:
    """The store's engagement minutes, SLA rows and alerts (at-risk aside) are exactly the scenario's; the
    alert ids, for more checks."""
    minutes = {
        (r[0], r[1], r[2]): tuple(r[3:])
        for r in query(
            env,
            store,
            "SELECT community_id, post_id, toUnixTimestamp(minute), likes, unlikes, "
            "comments, reposts FROM engagement_minute FINAL",
        )
    }
    assert minutes == expected_minutes(scenario.events)
    sla = {
        r[0]: (r[1], r[2], r[3], r[4])
        for r in query(
            env,
            store,
            "SELECT comment_id, toUnixTimestamp64Milli(answered_at), response_seconds, "
            "breached, cancelled FROM comment_sla FINAL",
        )
    }
    assert sla == scenario.sla
    alerts = {r[0] for r in query(env, store, "SELECT alert_id FROM alerts FINAL WHERE kind != 'at_risk'")}
    assert alerts == scenario.alerts
    return alerts


def test_replay_until_done_gives_the_right_tables_twice(kafka: KafkaSettings, tmp_path: Path) -> None:
    replay = scenario_run(tmp_path, kafka.bootstrap_servers)
    scenario, store, env, args = replay.scenario, replay.store, replay.env, [*replay.args, "--no-notify"]

    done = pulse(env, *args)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "3 rejected" in done.stdout, done.stdout
    alerts = assert_tables_match(env, store, scenario)
    assert len(alerts) > 10

    tables = "SELECT * EXCEPT written_at FROM {} FINAL"
    snapshot = [
        sorted(map(str, query(env, store, tables.format(t))))
        for t in ("engagement_minute", "comment_sla", "alerts")
    ]
    again = pulse(env, *args)
    assert again.returncode == 0, again.stderr
    assert [
        sorted(map(str, query(env, store, tables.format(t))))
        for t in ("engagement_minute", "comment_sla", "alerts")
    ] == snapshot
