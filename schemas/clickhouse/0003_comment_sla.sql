-- One row per subscriber comment with FINAL: when it was written, when the community answered, whether
-- the SLA was breached. `stage` orders the versions (0 waiting, 1 breached, 2 answered or deleted), so the
-- latest state wins however writes are replayed.
CREATE TABLE IF NOT EXISTS comment_sla
(
    platform          LowCardinality(String),
    comment_id        String,
    community_id      String,
    post_id           String,
    commented_at      DateTime64(3, 'UTC'),
    answered_at       Nullable(DateTime64(3, 'UTC')),
    response_seconds  Nullable(Float64),
    breached          UInt8,
    cancelled         UInt8,
    sla_seconds       Float64,
    stage             UInt8,
    written_at        DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(stage)
PARTITION BY toYYYYMM(commented_at)
ORDER BY (platform, community_id, comment_id)
TTL toDateTime(commented_at) + INTERVAL 400 DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;
