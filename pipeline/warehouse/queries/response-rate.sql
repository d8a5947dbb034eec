-- about: Response rate per community for subscriber comments written in the period (deleted ones left
-- out): the share answered at all, and the share answered within the SLA.
SELECT
    community_id,
    count() AS comments,
    countIf(answered_at IS NOT NULL) AS answered,
    countIf(answered_at IS NOT NULL AND response_seconds <= sla_seconds) AS answered_within_sla,
    round(answered / comments * 100, 2) AS response_rate_pct,
    round(answered_within_sla / comments * 100, 2) AS within_sla_pct
FROM comment_sla FINAL
WHERE commented_at >= {start:DateTime} AND commented_at < {end:DateTime} AND cancelled = 0
  AND ({community:String} = '' OR community_id = {community:String})
GROUP BY community_id
ORDER BY community_id
LIMIT {limit:UInt32}
