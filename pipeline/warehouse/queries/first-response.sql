-- about: First response time per community for subscriber comments written in the period and answered
-- by the community: mean, median and p90 in seconds (exact quantiles), and the quickest and slowest.
SELECT
    community_id,
    count() AS answered,
    round(avg(response_seconds), 1) AS mean_s,
    round(quantileExact(0.5)(response_seconds), 1) AS median_s,
    round(quantileExact(0.9)(response_seconds), 1) AS p90_s,
    round(min(response_seconds), 1) AS quickest_s,
    round(max(response_seconds), 1) AS slowest_s
FROM comment_sla FINAL
WHERE commented_at >= {start:DateTime} AND commented_at < {end:DateTime}
  AND answered_at IS NOT NULL AND cancelled = 0
  AND ({community:String} = '' OR community_id = {community:String})
GROUP BY community_id
ORDER BY community_id
LIMIT {limit:UInt32}
