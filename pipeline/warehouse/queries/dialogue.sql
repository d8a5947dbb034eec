-- about: Two-way dialogue per community: subscriber comments written in the period; threads (top-level
-- subscriber comments written in it) and the share with a community reply anywhere in them; replies and
-- community replies per thread (counted whenever written, as response-rate counts late answers); depth,
-- the reply levels below a thread's first comment (0: no reply), mean and max. Deleted comments are left
-- out. From the raw comment events; ratios are NULL without threads.
WITH RECURSIVE
comments AS
(
    -- One row per comment id, as it was first written, marked if it was deleted since. Replies are read from
    -- the start of the period on, without an end: a thread's later replies count. No FINAL: the GROUP BY
    -- collapses an event stored twice.
    SELECT
        platform, community_id, comment_id,
        argMinIf((parent_id, by_community), ts, type = 'comment') AS first_version,
        first_version.1 AS parent,
        first_version.2 AS by_page,
        minIf(ts, type = 'comment') AS written_at,
        countIf(type = 'comment_delete') > 0 AS deleted
    FROM events
    WHERE type IN ('comment', 'comment_delete') AND ts >= {start:DateTime}
      AND ({community:String} = '' OR community_id = {community:String})
    GROUP BY platform, community_id, comment_id
    HAVING countIf(type = 'comment') > 0
),
thread_messages AS
(
    -- Every thread's first comment (level 0) and the comments below it, one level per step. A comment has
    -- one parent (its first version's), so no chain of parents can loop back into a thread. A deleted
    -- comment stays in the tree, so that the replies below it keep their thread and level.
    SELECT platform, community_id, comment_id AS thread_id, comment_id, 0 AS level, by_page, deleted
    FROM comments
    WHERE parent IS NULL AND NOT by_page AND written_at < {end:DateTime}
    UNION ALL
    SELECT c.platform, c.community_id, m.thread_id, c.comment_id, m.level + 1, c.by_page, c.deleted
    FROM thread_messages AS m
    INNER JOIN comments AS c
        ON c.platform = m.platform AND c.community_id = m.community_id AND c.parent = m.comment_id
),
threads AS
(
    SELECT
        community_id,
        countIf(level > 0 AND NOT deleted) AS replies_in_thread,
        countIf(level > 0 AND NOT deleted AND by_page) AS community_replies_in_thread,
        maxIf(level, NOT deleted) AS depth
    FROM thread_messages
    GROUP BY platform, community_id, thread_id
    HAVING countIf(level = 0 AND NOT deleted) > 0
),
per_thread AS
(
    SELECT
        community_id,
        count() AS threads,
        countIf(community_replies_in_thread > 0) AS threads_answered,
        sum(replies_in_thread) AS replies,
        sum(community_replies_in_thread) AS community_replies,
        avg(depth) AS mean_depth,
        max(depth) AS max_depth
    FROM threads
    GROUP BY community_id
),
per_community AS
(
    SELECT community_id, countIf(NOT by_page AND NOT deleted) AS subscriber_comments
    FROM comments
    WHERE written_at < {end:DateTime}
    GROUP BY community_id
)
SELECT
    c.community_id AS community_id,
    c.subscriber_comments AS subscriber_comments,
    t.threads AS threads,
    t.threads_answered AS threads_answered,
    if(t.threads = 0, NULL, round(t.threads_answered / t.threads * 100, 2)) AS answered_thread_pct,
    if(t.threads = 0, NULL, round(t.replies / t.threads, 2)) AS replies_per_thread,
    if(t.threads = 0, NULL, round(t.community_replies / t.threads, 2)) AS community_replies_per_thread,
    if(t.threads = 0, NULL, round(t.mean_depth, 2)) AS mean_depth,
    if(t.threads = 0, NULL, t.max_depth) AS max_depth
FROM per_community AS c
LEFT JOIN per_thread AS t ON c.community_id = t.community_id
ORDER BY community_id
LIMIT {limit:UInt32}
