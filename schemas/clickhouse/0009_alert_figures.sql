-- Alerts that are not about a comment carry the figures that raised them: `engagement_spike` the post's
-- engagement in its recent window (`observed`) against what the community's posts of that age usually
-- draw (`expected`); `source_quiet` the events seen in the quiet span against the community's usual
-- count for it. Comment alerts leave both NULL.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS observed Nullable(Float64) AFTER response_seconds;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS expected Nullable(Float64) AFTER observed;
ALTER TABLE alerts_input ADD COLUMN IF NOT EXISTS observed Nullable(Float64);
ALTER TABLE alerts_input ADD COLUMN IF NOT EXISTS expected Nullable(Float64);
DROP VIEW IF EXISTS alerts_input_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS alerts_input_mv TO alerts AS
SELECT
    alert_id,
    kind,
    platform,
    community_id,
    post_id,
    comment_id,
    author_id,
    snippet,
    fromUnixTimestamp64Milli(commented_at_ms, 'UTC') AS commented_at,
    fromUnixTimestamp64Milli(fired_at_ms, 'UTC') AS fired_at,
    waited_s AS waited_seconds,
    sla_s AS sla_seconds,
    response_s AS response_seconds,
    observed,
    expected
FROM alerts_input;
