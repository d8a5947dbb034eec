-- about: The latest alerts of each kind fired by {now} (event time), newest first.
SELECT
    kind,
    platform,
    community_id,
    post_id,
    comment_id,
    author_id,
    snippet,
    commented_at,
    fired_at,
    waited_seconds AS waited_s,
    sla_seconds AS sla_s,
    response_seconds AS response_s
FROM alerts FINAL
WHERE fired_at <= {now:DateTime}
ORDER BY fired_at DESC, alert_id
LIMIT {per_kind:UInt32} BY kind
