-- about: The posts with the highest engagement score from {start} to {now}: top-posts.sql with the
-- platform, which the post's address needs.
SELECT
    platform,
    community_id,
    post_id,
    sum(likes) AS likes,
    sum(comments) AS comments,
    sum(reposts) AS reposts,
    round(sum(score), 1) AS score
FROM engagement_minute FINAL
WHERE minute >= {start:DateTime} AND minute < {now:DateTime}
GROUP BY platform, community_id, post_id
ORDER BY score DESC, community_id, post_id
LIMIT {limit:UInt32}
