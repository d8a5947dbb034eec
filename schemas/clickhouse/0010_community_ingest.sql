-- Live events per community and minute of arrival: what the loader's source watch (quiet sources) reads.
-- Only events that arrive while they are fresh (stamped at most an hour before they were stored) count:
-- a replay or an import of old history says nothing about whether a source is alive. Redelivered events
-- count again (this is a rate, not a tally); rows go after 15 days, the watch looks back 8.
CREATE TABLE IF NOT EXISTS community_ingest_minute
(
    minute        DateTime('UTC'),
    platform      LowCardinality(String),
    community_id  String,
    events        UInt64
)
ENGINE = SummingMergeTree
ORDER BY (minute, platform, community_id)
TTL minute + INTERVAL 15 DAY DELETE
SETTINGS ttl_only_drop_parts = 1;
CREATE MATERIALIZED VIEW IF NOT EXISTS community_ingest_minute_mv TO community_ingest_minute AS
SELECT toStartOfMinute(ingested_at) AS minute, platform, community_id, count() AS events
FROM events
WHERE ts >= ingested_at - INTERVAL 1 HOUR
GROUP BY minute, platform, community_id;
