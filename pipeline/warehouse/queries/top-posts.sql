-- about: Posts with the highest engagement score in the period, with their likes, comments and reposts.
-- Attribution: by activity time (the minute each interaction happened), from engagement_minute FINAL.
SELECT
    community_id,
    post_id,
    sum(likes) AS likes,
    sum(comments) AS comments,
    sum(reposts) AS reposts,
    round(sum(score), 1) AS score
FROM engagement_minute FINAL
WHERE minute >= {start:DateTime} AND minute < {end:DateTime}
  AND ({community:String} = '' OR community_id = {community:String})
GROUP BY community_id, post_id
ORDER BY score DESC, community_id, post_id
LIMIT {limit:UInt32}
