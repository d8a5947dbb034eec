-- about: Subscriber comments still waiting for the community's answer past their SLA at the end of the
-- period (not answered, not deleted), longest wait first.
SELECT
    community_id,
    post_id,
    comment_id,
    commented_at,
    sla_seconds,
    round(toUnixTimestamp64Milli(toDateTime64({end:DateTime}, 3)) / 1000
          - toUnixTimestamp64Milli(commented_at) / 1000, 1) AS waited_s
FROM comment_sla FINAL
WHERE answered_at IS NULL AND cancelled = 0
  AND commented_at < {end:DateTime}
  AND (breached = 1 OR commented_at + toIntervalMillisecond(toInt64(sla_seconds * 1000)) < {end:DateTime})
  AND commented_at >= {start:DateTime}
  AND ({community:String} = '' OR community_id = {community:String})
ORDER BY waited_s DESC, community_id, comment_id
LIMIT {limit:UInt32}
