-- about: Engagement per community and audience segment (age band, gender, country) in the period, from
-- the raw events, each event counted once: likes, subscriber comments, reposts and distinct engagers.
-- Hours are whole: the period is widened to the start of the hour it begins in.
SELECT
    community_id, age_band, gender, country,
    uniqExactMerge(likes) AS likes,
    uniqExactMerge(comments) AS comments,
    uniqExactMerge(reposts) AS reposts,
    uniqExactMerge(engagers) AS engagers
FROM engagement_segment_hour
WHERE hour >= toStartOfHour({start:DateTime}) AND hour < {end:DateTime}
  AND ({community:String} = '' OR community_id = {community:String})
GROUP BY community_id, age_band, gender, country
ORDER BY community_id, likes + comments + reposts DESC, age_band, gender, country
LIMIT {limit:UInt32}
