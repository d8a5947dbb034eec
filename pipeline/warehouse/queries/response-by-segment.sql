-- about: Response rate and first response time per community and audience segment, one dimension at a
-- time (age_band, gender, country; segment '' where the comment's event did not carry it): subscriber
-- comments written in the period (deleted ones left out), the share answered at all and within the SLA,
-- and the median and p90 of the first response in seconds (exact quantiles). Each dimension's rows add up
-- to response-rate's.
WITH segments AS
(
    SELECT
        platform, community_id, comment_id,
        argMin((ifNull(age_band, ''), ifNull(gender, ''), ifNull(country, '')), ts) AS segment
    FROM events
    WHERE type = 'comment' AND NOT by_community
      AND ts >= {start:DateTime} AND ts < {end:DateTime}
      AND ({community:String} = '' OR community_id = {community:String})
    GROUP BY platform, community_id, comment_id
),
comments AS
(
    SELECT
        s.community_id AS community_id,
        s.answered_at AS answered_at,
        s.response_seconds AS response_seconds,
        s.sla_seconds AS sla_seconds,
        -- A comment whose event is missing (erased, or stored before its event) has no known segment.
        ifNull(g.segment.1, '') AS age_band,
        ifNull(g.segment.2, '') AS gender,
        ifNull(g.segment.3, '') AS country
    FROM comment_sla AS s FINAL
    LEFT JOIN segments AS g
        ON s.platform = g.platform AND s.community_id = g.community_id AND s.comment_id = g.comment_id
    WHERE s.commented_at >= {start:DateTime} AND s.commented_at < {end:DateTime} AND s.cancelled = 0
      AND ({community:String} = '' OR s.community_id = {community:String})
)
SELECT
    community_id,
    dimension,
    segment,
    count() AS comments,
    countIf(answered_at IS NOT NULL) AS answered,
    countIf(answered_at IS NOT NULL AND response_seconds <= sla_seconds) AS answered_within_sla,
    round(answered / comments * 100, 2) AS response_rate_pct,
    round(answered_within_sla / comments * 100, 2) AS within_sla_pct,
    round(quantileExact(0.5)(response_seconds), 1) AS median_s,
    round(quantileExact(0.9)(response_seconds), 1) AS p90_s
FROM comments
ARRAY JOIN ['age_band', 'gender', 'country'] AS dimension, [age_band, gender, country] AS segment
GROUP BY community_id, dimension, segment
ORDER BY community_id, indexOf(['age_band', 'gender', 'country'], dimension), segment = '', segment
LIMIT {limit:UInt32}
