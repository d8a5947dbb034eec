-- about: Engagement rate by followers per community: ER per post = interactions / posts / followers x 100
-- (Popsters ERpost averaged as a ratio of sums) and ER per day = interactions / days / followers x 100.
-- Interactions = likes + comments + reposts, attributed by activity time; followers = the newest snapshot
-- in community_followers at or before the end of the period (communities without one are left out).
WITH activity AS
(
    SELECT platform, community_id,
           uniqExact(post_id) AS posts,
           sum(likes + comments + reposts) AS interactions
    FROM engagement_minute FINAL
    WHERE minute >= {start:DateTime} AND minute < {end:DateTime}
      AND ({community:String} = '' OR community_id = {community:String})
    GROUP BY platform, community_id
),
audience AS
(
    SELECT platform, community_id, argMax(followers, as_of) AS followers
    FROM community_followers FINAL
    WHERE as_of <= {end:DateTime}
    GROUP BY platform, community_id
)
SELECT
    a.community_id AS community_id,
    a.posts AS posts,
    a.interactions AS interactions,
    f.followers AS followers,
    round(a.interactions / a.posts / f.followers * 100, 4) AS er_post_pct,
    round(a.interactions / ((toUInt32({end:DateTime}) - toUInt32({start:DateTime})) / 86400) / f.followers * 100, 4)
        AS er_day_pct
FROM activity AS a
INNER JOIN audience AS f ON a.platform = f.platform AND a.community_id = f.community_id
WHERE f.followers > 0
ORDER BY er_post_pct DESC, community_id
LIMIT {limit:UInt32}
