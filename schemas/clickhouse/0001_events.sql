-- Every accepted canonical event, as it arrived: the raw material for any question the aggregates do not
-- answer yet. Columns mirror schemas.CanonicalEvent (a test keeps them in agreement); `ts` is event time,
-- `ingested_at` processing time. A replayed event has the same key and collapses under FINAL.
CREATE TABLE IF NOT EXISTS events
(
    event_id      String,
    type          LowCardinality(String),
    platform      LowCardinality(String),
    community_id  String,
    post_id       String,
    user_id       String,
    ts            DateTime64(3, 'UTC'),
    comment_id    Nullable(String),
    parent_id     Nullable(String),
    by_community  Bool DEFAULT false,
    text          Nullable(String),
    age_band      LowCardinality(Nullable(String)),
    gender        LowCardinality(Nullable(String)),
    country       LowCardinality(Nullable(String)),
    ingested_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (platform, community_id, post_id, ts, event_id)
TTL toDateTime(ts) + INTERVAL 400 DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;
