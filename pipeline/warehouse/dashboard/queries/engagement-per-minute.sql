-- about: Likes, subscriber comments and reposts per community and event-time minute, from {start} to
-- {now} (minutes without activity have no row). Attribution by activity time, as top-posts.sql.
SELECT
    community_id,
    toUnixTimestamp(minute) AS minute_s,
    sum(likes) AS likes,
    sum(comments) AS comments,
    sum(reposts) AS reposts
FROM engagement_minute FINAL
WHERE minute >= {start:DateTime} AND minute < {now:DateTime}
GROUP BY community_id, minute
ORDER BY community_id, minute
