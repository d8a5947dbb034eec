"""Erasing one person (a platform's user id) from the warehouse, and saying what was removed.

What the tables hold of a person: `events` (their id, what they wrote, their audience segment), `alerts`
(as the author of a comment waiting for an answer, with its first 140 characters), `comment_sla` (the
response clocks of their comments: no id of theirs, but their comments' ids and times) and
`engagement_segment_hour` (distinct-count states, which hold a hash of their id and of their events'
ids). `engagement_minute` holds counts only. The segments are rebuilt from the remaining events for every
(community, hour, segment) the person was counted in: a state cannot have one value taken out.

Deletions are mutations (`ALTER TABLE ... DELETE`) waited for on every replica (`mutations_sync = 2`):
they rewrite the parts, so the rows are gone from disk too, not only hidden. Events of the person that
arrive while this runs (a replay of retained input, say) are not erased: run it again after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import WarehouseError
from pipeline.warehouse.client import translate

log = logging.getLogger(__name__)

WAIT_FOR_MUTATIONS = {"mutations_sync": 2}
_COMMENTS = """
SELECT DISTINCT community_id, comment_id FROM events
WHERE platform = {platform:String} AND user_id = {user:String} AND comment_id IS NOT NULL
  AND type IN ('comment', 'comment_edit')
UNION DISTINCT
SELECT DISTINCT community_id, comment_id FROM alerts WHERE platform = {platform:String} AND author_id = {user:String}
"""
_SEGMENTS = """
SELECT DISTINCT community_id, toUnixTimestamp(toStartOfHour(toDateTime(ts, 'UTC'))),
       ifNull(age_band, ''), ifNull(gender, ''), ifNull(country, '')
FROM events WHERE platform = {platform:String} AND user_id = {user:String}
"""
_SEGMENT_KEYS = "Array(Tuple(String, UInt32, String, String, String))"
_REBUILD_SEGMENTS = f"""
INSERT INTO engagement_segment_hour
SELECT
    platform, community_id, toStartOfHour(toDateTime(ts, 'UTC')) AS hour,
    ifNull(age_band, '') AS age_band, ifNull(gender, '') AS gender, ifNull(country, '') AS country,
    uniqExactStateIf(event_id, type = 'like') AS likes,
    uniqExactStateIf(event_id, type = 'comment' AND NOT by_community) AS comments,
    uniqExactStateIf(event_id, type = 'repost') AS reposts,
    uniqExactStateIf(user_id, type IN ('like', 'comment', 'repost') AND NOT by_community) AS engagers,
    now() AS written_at
FROM events
WHERE platform = {{platform:String}}
  AND has({{segments:{_SEGMENT_KEYS}}}, (community_id, toUnixTimestamp(hour), age_band, gender, country))
GROUP BY platform, community_id, hour, age_band, gender, country
"""


@dataclass(slots=True)
class Erased:
    """Rows removed per table (for the segments: the rows rebuilt without the person)."""

    platform: str
    user_id: str
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def erase_person(client: Any, platform: str, user_id: str) -> Erased:
    """Removes every row of (`platform`, `user_id`) from the warehouse through `client` (a writer)."""
    if not platform or not user_id:
        raise WarehouseError("erasure needs a platform and a user id")
    who = {"platform": platform, "user": user_id}
    erased = Erased(platform, user_id)
    try:
        comments = [tuple(row) for row in client.query(_COMMENTS, parameters=who).result_rows]
        segments = [tuple(row) for row in client.query(_SEGMENTS, parameters=who).result_rows]
        mine = "platform = {platform:String} AND user_id = {user:String}"
        erased.rows["events"] = _delete(client, "events", mine, who)
        of_comments = "has({comments:Array(Tuple(String, String))}, (community_id, comment_id))"
        erased.rows["alerts"] = _delete(
            client, "alerts", f"platform = {{platform:String}} AND (author_id = {{user:String}} OR {of_comments})",
            who | {"comments": comments},
        )  # fmt: skip
        erased.rows["comment_sla"] = _delete(
            client, "comment_sla", f"platform = {{platform:String}} AND {of_comments}", who | {"comments": comments}
        )  # fmt: skip
        erased.rows["engagement_segment_hour"] = _rebuild_segments(client, platform, segments)
    except WarehouseError:
        raise
    except Exception as exc:  # chDB and the HTTP driver raise unrelated types: translated here
        raise translate(exc, f"erasing {platform}:{user_id}") from exc
    log.info("erased %s:%s from the warehouse: %s", platform, user_id, erased.rows)
    return erased


def _delete(client: Any, table: str, where: str, parameters: dict[str, Any]) -> int:
    (count,) = client.query(f"SELECT count() FROM {table} WHERE {where}", parameters=parameters).result_rows[
        0
    ]
    if count:
        client.command(
            f"ALTER TABLE {table} DELETE WHERE {where}", parameters=parameters, settings=WAIT_FOR_MUTATIONS
        )
    return int(count)


def _rebuild_segments(client: Any, platform: str, segments: list[tuple[Any, ...]]) -> int:
    """Drops the segment rows the person was counted in, then counts them again from the events left."""
    if not segments:
        return 0
    keys = {"platform": platform, "segments": segments}
    where = (
        f"platform = {{platform:String}} AND has({{segments:{_SEGMENT_KEYS}}}, "
        "(community_id, toUnixTimestamp(hour), age_band, gender, country))"
    )
    rows = _delete(client, "engagement_segment_hour", where, keys)
    client.command(_REBUILD_SEGMENTS, parameters=keys)
    return rows
