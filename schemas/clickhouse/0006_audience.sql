-- Audience snapshots for engagement rates: followers per community and views per post, as the platforms
-- report them (exports, API polls). Each snapshot is absolute; the newest `as_of` wins under FINAL, and
-- the rate queries take the newest snapshot at or before the end of their period.
CREATE TABLE IF NOT EXISTS community_followers
(
    platform      LowCardinality(String),
    community_id  String,
    as_of         DateTime('UTC'),
    followers     UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (platform, community_id, as_of)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS post_views
(
    platform      LowCardinality(String),
    community_id  String,
    post_id       String,
    as_of         DateTime('UTC'),
    views         UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (platform, community_id, post_id, as_of)
SETTINGS non_replicated_deduplication_window = 1000;
