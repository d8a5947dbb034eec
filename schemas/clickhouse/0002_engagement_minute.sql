-- Per post and event-time minute: absolute counts, written again whenever the window changes.
-- Counts within a window only grow, so `events` (all counted events) orders the versions: FINAL keeps the
-- row with the most events, whichever order the writes arrive in, and a replay that rewrites the same
-- values changes nothing.
CREATE TABLE IF NOT EXISTS engagement_minute
(
    platform         LowCardinality(String),
    community_id     String,
    post_id          String,
    minute           DateTime('UTC'),
    likes            UInt64,
    unlikes          UInt64,
    comments         UInt64,
    reposts          UInt64,
    unique_engagers  UInt64,
    score            Float64,
    events           UInt64,
    written_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(events)
PARTITION BY toYYYYMM(minute)
ORDER BY (platform, community_id, post_id, minute)
TTL minute + INTERVAL 400 DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;
