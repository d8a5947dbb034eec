-- Rows live 400 days from when the pipeline stored them, not from their event time: a replay of old
-- history is kept as long as anything else (its event-time TTL had it dropped at the next merge), and the
-- time personal data is kept is a time from its arrival, as docs/operations.md ("What is kept where")
-- says. Parts stay partitioned by event month; `ttl_only_drop_parts` drops a part once its newest row
-- has expired. Rows already stored count from their ingest column; the segments, which had none, get
-- `written_at` (the newest write of each row) and count from this migration.
ALTER TABLE events MODIFY TTL toDateTime(ingested_at) + INTERVAL 400 DAY DELETE;
ALTER TABLE engagement_minute MODIFY TTL toDateTime(written_at) + INTERVAL 400 DAY DELETE;
ALTER TABLE comment_sla MODIFY TTL toDateTime(written_at) + INTERVAL 400 DAY DELETE;
ALTER TABLE alerts MODIFY TTL toDateTime(written_at) + INTERVAL 400 DAY DELETE;
ALTER TABLE engagement_segment_hour
    ADD COLUMN IF NOT EXISTS written_at SimpleAggregateFunction(max, DateTime('UTC')) DEFAULT now();
ALTER TABLE engagement_segment_hour MODIFY TTL written_at + INTERVAL 400 DAY DELETE;
DROP VIEW IF EXISTS engagement_segment_hour_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS engagement_segment_hour_mv TO engagement_segment_hour AS
SELECT
    platform,
    community_id,
    toStartOfHour(toDateTime(ts, 'UTC')) AS hour,
    ifNull(age_band, '') AS age_band,
    ifNull(gender, '') AS gender,
    ifNull(country, '') AS country,
    uniqExactStateIf(event_id, type = 'like') AS likes,
    uniqExactStateIf(event_id, type = 'comment' AND NOT by_community) AS comments,
    uniqExactStateIf(event_id, type = 'repost') AS reposts,
    uniqExactStateIf(user_id, type IN ('like', 'comment', 'repost') AND NOT by_community) AS engagers,
    now() AS written_at
FROM events
GROUP BY platform, community_id, hour, age_band, gender, country;
