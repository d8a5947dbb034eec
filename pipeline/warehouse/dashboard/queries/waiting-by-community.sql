-- about: Per community, the subscriber comments waiting for an answer at {now} (not answered, not
-- deleted), how many of them are past their SLA (waiting-past-sla.sql's test) and since when the oldest
-- waits.
SELECT
    community_id,
    count() AS waiting,
    countIf(breached = 1 OR commented_at + toIntervalMillisecond(toInt64(sla_seconds * 1000)) < {now:DateTime})
        AS past_sla,
    min(commented_at) AS oldest_at
FROM comment_sla FINAL
WHERE answered_at IS NULL AND cancelled = 0 AND commented_at < {now:DateTime}
GROUP BY community_id
ORDER BY community_id
