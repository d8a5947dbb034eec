-- about: Engagement per community and UTC day, day over day: posts with activity, likes, comments, reposts
-- and interactions (their sum), attributed by activity time, against the day before (change, change_pct).
-- Days are whole: the period widens to the start of its first day, and whole_day = 0 marks a last day the
-- period's end cuts short. Days without activity show zeros.
WITH
    toDate({start:DateTime}, 'UTC') AS first_day,
    toDate({end:DateTime} - INTERVAL 1 SECOND, 'UTC') AS last_day,
daily AS
(
    SELECT
        community_id,
        toDate(minute, 'UTC') AS day,
        uniqExact(post_id) AS posts,
        sum(likes) AS likes,
        sum(comments) AS comments,
        sum(reposts) AS reposts
    FROM engagement_minute FINAL
    WHERE minute >= toDateTime(first_day - 1, 'UTC') AND minute < {end:DateTime}
      AND ({community:String} = '' OR community_id = {community:String})
    GROUP BY community_id, day
),
calendar AS
(
    -- Every day from the one before the period to its last, for each community active in the period.
    SELECT community_id, first_day - 1 + offset AS day
    FROM (SELECT DISTINCT community_id FROM daily WHERE day >= first_day)
    ARRAY JOIN range(toUInt32(dateDiff('day', first_day, last_day) + 2)) AS offset
),
trend AS
(
    SELECT
        c.community_id AS community_id,
        c.day AS day,
        d.posts AS posts,
        d.likes AS likes,
        d.comments AS comments,
        d.reposts AS reposts,
        d.likes + d.comments + d.reposts AS interactions,
        lagInFrame(interactions) OVER (PARTITION BY c.community_id ORDER BY c.day
                                       ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS previous_interactions
    FROM calendar AS c
    LEFT JOIN daily AS d ON c.community_id = d.community_id AND c.day = d.day
)
SELECT
    community_id,
    day,
    toUInt8(toDateTime(day + 1, 'UTC') <= {end:DateTime}) AS whole_day,
    posts,
    likes,
    comments,
    reposts,
    interactions,
    previous_interactions,
    toInt64(interactions) - toInt64(previous_interactions) AS change,
    if(previous_interactions = 0, NULL, round(change / previous_interactions * 100, 2)) AS change_pct
FROM trend
WHERE day >= first_day
ORDER BY community_id, day
LIMIT {limit:UInt32}
