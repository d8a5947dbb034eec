-- about: Subscriber comments still waiting for the community's answer at {now} (not answered, not
-- deleted), oldest first, with their author and latest text from `events` (an edit replaces the text).
-- `past_sla` is waiting-past-sla.sql's test: flagged by the stream workers, or past its deadline already.
-- The texts are looked up by the posts' keys and the oldest comment's time: what `events` is ordered by.
WITH waiting AS
(
    SELECT platform, community_id, post_id, comment_id, commented_at, sla_seconds,
           breached = 1 OR commented_at + toIntervalMillisecond(toInt64(sla_seconds * 1000)) < {now:DateTime}
               AS past_sla
    FROM comment_sla FINAL
    WHERE answered_at IS NULL AND cancelled = 0 AND commented_at < {now:DateTime}
    ORDER BY commented_at, community_id, comment_id
    LIMIT {limit:UInt32}
),
texts AS
(
    SELECT platform, assumeNotNull(comment_id) AS comment_id,
           argMaxIf(user_id, ts, type = 'comment') AS author_id,
           argMax(text, ts) AS text
    FROM events
    WHERE type IN ('comment', 'comment_edit') AND ts < {now:DateTime}
      AND (platform, community_id, post_id) IN (SELECT platform, community_id, post_id FROM waiting)
      AND ts >= (SELECT min(commented_at) FROM waiting)
      AND comment_id IN (SELECT comment_id FROM waiting)
    GROUP BY platform, comment_id
)
SELECT
    w.platform AS platform,
    w.community_id AS community_id,
    w.post_id AS post_id,
    w.comment_id AS comment_id,
    t.author_id AS author_id,
    t.text AS text,
    w.commented_at AS commented_at,
    round(toUnixTimestamp({now:DateTime}) - toUnixTimestamp64Milli(w.commented_at) / 1000, 1) AS waited_s,
    w.sla_seconds AS sla_s,
    w.past_sla AS past_sla
FROM waiting AS w
LEFT JOIN texts AS t ON t.platform = w.platform AND t.comment_id = w.comment_id
ORDER BY w.commented_at, w.community_id, w.comment_id
