-- about: Rolling 60-minute engagement per post: for each minute with activity in the period, the likes,
-- comments, reposts and score of that post over the 60 minutes ending with that minute (activity before
-- the period counts towards its first hour). Newest first.
SELECT community_id, post_id, minute, likes_60m, comments_60m, reposts_60m, score_60m
FROM
(
    SELECT
        community_id, post_id, minute,
        sum(likes) OVER w AS likes_60m,
        sum(comments) OVER w AS comments_60m,
        sum(reposts) OVER w AS reposts_60m,
        round(sum(score) OVER w, 1) AS score_60m
    FROM engagement_minute FINAL
    WHERE minute >= {start:DateTime} - INTERVAL 59 MINUTE AND minute < {end:DateTime}
      AND ({community:String} = '' OR community_id = {community:String})
      AND ({post:String} = '' OR post_id = {post:String})
    WINDOW w AS (PARTITION BY platform, community_id, post_id ORDER BY toUInt32(minute)
                 RANGE BETWEEN 3540 PRECEDING AND CURRENT ROW)
)
WHERE minute >= {start:DateTime}
ORDER BY minute DESC, score_60m DESC, community_id, post_id
LIMIT {limit:UInt32}
