-- Engagement by audience segment per community and event-time hour, fed from `events` by a materialized
-- view. Counts are distinct event_ids, so an event inserted twice (a replay, a retried batch) still counts
-- once: read with uniqExactMerge(...) ... GROUP BY.
CREATE TABLE IF NOT EXISTS engagement_segment_hour
(
    platform      LowCardinality(String),
    community_id  String,
    hour          DateTime('UTC'),
    age_band      LowCardinality(String),
    gender        LowCardinality(String),
    country       LowCardinality(String),
    likes         AggregateFunction(uniqExact, String),
    comments      AggregateFunction(uniqExact, String),
    reposts       AggregateFunction(uniqExact, String),
    engagers      AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (platform, community_id, hour, age_band, gender, country)
TTL hour + INTERVAL 400 DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

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
    uniqExactStateIf(user_id, type IN ('like', 'comment', 'repost') AND NOT by_community) AS engagers
FROM events
GROUP BY platform, community_id, hour, age_band, gender, country;

-- The view for analysts: plain numbers per segment and hour.
CREATE VIEW IF NOT EXISTS engagement_by_segment AS
SELECT
    platform, community_id, hour, age_band, gender, country,
    uniqExactMerge(likes) AS likes,
    uniqExactMerge(comments) AS comments,
    uniqExactMerge(reposts) AS reposts,
    uniqExactMerge(engagers) AS engagers
FROM engagement_segment_hour
GROUP BY platform, community_id, hour, age_band, gender, country;
