-- Every alert the processors emitted, one row per alert_id with FINAL (a redelivered alert collapses).
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id          String,
    kind              LowCardinality(String),
    platform          LowCardinality(String),
    community_id      String,
    post_id           String,
    comment_id        String,
    author_id         String,
    snippet           String,
    commented_at      DateTime64(3, 'UTC'),
    fired_at          DateTime64(3, 'UTC'),
    waited_seconds    Float64,
    sla_seconds       Float64,
    response_seconds  Nullable(Float64),
    written_at        DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(fired_at)
ORDER BY (platform, community_id, alert_id)
TTL toDateTime(fired_at) + INTERVAL 400 DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;
