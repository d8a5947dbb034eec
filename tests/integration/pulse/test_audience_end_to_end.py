"""The acceptance of followers and views: after importing a snapshot file and replaying events (`pulse run
--replay FILE --exit-when-done`: the real broker, worker, loader and embedded store), `er-by-followers` and
`er-by-views` return the rows worked out by hand below, and the follows of the file are in `events`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from schemas import KafkaSettings

T0_S = 1_772_359_200  # 2026-03-01T10:00:00Z; the queries' period is 10:00-13:00 (3 h, 0.125 of a day)
MIN_S = 60
UNTIL = "2026-03-01T13:00:00+00:00"


def event(n: int, kind: str, community: str, post: str, at_s: int, user: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"e{n}", "type": kind, "platform": "vk", "community_id": community, "post_id": post,
            "user_id": user, "ts": at_s * 1000, **extra}  # fmt: skip


def events() -> list[dict[str, Any]]:
    """g1: p1 draws 6 likes (and an unlike, which is no interaction), 2 comments and a repost: 9; p2 draws
    3 likes and a repost: 4; g1 has 13 interactions on 2 posts. g2: p7 draws 10 likes and 2 reposts: 12
    on 1 post. Three follows and an unfollow of g1 ride along; they are no interaction."""
    found: list[dict[str, Any]] = []

    def add(kind: str, community: str, post: str, at_s: int, user: str, **extra: Any) -> None:
        found.append(event(len(found) + 1, kind, community, post, at_s, user, **extra))

    for i in range(6):
        add("like", "g1", "p1", T0_S + 5 * MIN_S + i, f"u{i}")
    add("unlike", "g1", "p1", T0_S + 6 * MIN_S, "u0")
    for i, follower in enumerate(["f1", "f2", "f3"]):
        add("follow", "g1", "-", T0_S + 10 * MIN_S + i, follower)
    add("unfollow", "g1", "-", T0_S + 20 * MIN_S, "f2")
    for i in range(2):
        add("comment", "g1", "p1", T0_S + 30 * MIN_S + i, f"u{10 + i}", comment_id=f"m{i}", text="when?")
    add("repost", "g1", "p1", T0_S + 60 * MIN_S, "u20")
    for i in range(10):
        add("like", "g2", "p7", T0_S + 90 * MIN_S + i, f"v{i}")
    for i in range(2):
        add("repost", "g2", "p7", T0_S + 91 * MIN_S + i, f"v{20 + i}")
    for i in range(3):
        add("like", "g1", "p2", T0_S + 120 * MIN_S + i, f"u{30 + i}")
    add("repost", "g1", "p2", T0_S + 121 * MIN_S, "u40")
    return found


def snapshots() -> list[dict[str, Any]]:
    """g1 has 1000 followers at the end of the period (the 500 before is older, the 5000 after it is not
    used yet); g2 400; g3 has followers and no activity. Views: p1's newest before the end is 450, p2 100,
    p7 240."""

    def followers(community: str, as_of: str, n: int) -> dict[str, Any]:
        return {
            "kind": "followers",
            "platform": "vk",
            "community_id": community,
            "as_of": as_of,
            "followers": n,
        }

    def views(community: str, post: str, as_of: str, n: int) -> dict[str, Any]:
        return {"platform": "vk", "community_id": community, "post_id": post, "as_of": as_of, "views": n}

    return [
        followers("g1", "2026-02-28T00:00:00Z", 500),
        followers("g1", "2026-03-01T09:00:00Z", 1000),
        followers("g1", "2026-03-01T14:00:00Z", 5000),
        followers("g2", "2026-03-01T12:59:59Z", 400),
        followers("g3", "2026-03-01T09:00:00Z", 10_000),
        views("g1", "p1", "2026-03-01T12:00:00Z", 300),
        views("g1", "p1", "2026-03-01T12:30:00+00:00", 450),
        views("g1", "p2", "2026-03-01T12:30:00Z", 100),
        views("g2", "p7", "2026-03-01T12:30:00Z", 240),
    ]


def pulse(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulse", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def named(env: dict[str, str], store: str, name: str) -> list[tuple[Any, ...]]:
    done = pulse(env, "query", "--clickhouse", store, "--named", name, "--until", UNTIL, "--since", "3h",
                 "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [tuple(row.values()) for row in orjson.loads(done.stdout)]


def test_after_importing_snapshots_and_replaying_events_the_rates_are_right(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")} | {"COLUMNS": "200"}
    store = f"chdb://{tmp_path / 'store'}"
    audience = tmp_path / "audience.ndjson"
    audience.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in snapshots()))
    replayed = tmp_path / "events.ndjson"
    replayed.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events()))

    imported = pulse(env, "audience", "import", str(audience), "--clickhouse", store)
    assert imported.returncode == 0, imported.stderr
    assert "community_followers 5 rows, post_views 4 rows" in imported.stdout
    run = pulse(env, "--state-dir", str(tmp_path / "state"), "run", "--replay", str(replayed), "--exit-when-done",
                "--kafka", kafka.bootstrap_servers, "--clickhouse", store, "--partitions", "2", "--no-notify")  # fmt: skip
    assert run.returncode == 0, run.stderr + run.stdout

    # community, posts, interactions, followers, ER per post (13/2/1000, 12/1/400 x 100), ER per day
    # (13/0.125/1000, 12/0.125/400 x 100)
    assert named(env, store, "er-by-followers") == [
        ("g2", 1, 12, 400, 3.0, 24.0),
        ("g1", 2, 13, 1000, 0.65, 10.4),
    ]
    # community, posts with views, interactions, views, ratio of sums (12/240, 13/550 x 100), mean of
    # ratios (12/240; (9/450 + 4/100) / 2, x 100)
    assert named(env, store, "er-by-views") == [("g2", 1, 12, 240, 5.0, 5.0), ("g1", 2, 13, 550, 2.3636, 3.0)]

    stored = pulse(env, "query", "--clickhouse", store, "--format", "json",
                   "SELECT type, groupArray(user_id) AS users FROM (SELECT type, user_id FROM events FINAL "
                   "WHERE post_id = '-' ORDER BY ts) GROUP BY type ORDER BY type")  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    assert orjson.loads(stored.stdout) == [
        {"type": "follow", "users": ["f1", "f2", "f3"]},
        {"type": "unfollow", "users": ["f2"]},
    ]

    again = pulse(env, "audience", "import", str(audience), "--clickhouse", store)
    assert again.returncode == 0, again.stderr
    assert named(env, store, "er-by-followers") == [
        ("g2", 1, 12, 400, 3.0, 24.0),
        ("g1", 2, 13, 1000, 0.65, 10.4),
    ]
