-- about: Engagement rate by views per community, both aggregations named: ratio of sums
-- (sum of interactions / sum of views x 100) and mean of ratios (the average of each post's
-- interactions / views x 100). Only posts with a views snapshot (post_views, newest at or before the end
-- of the period) count. Interactions attributed by activity time.
WITH per_post AS
(
    SELECT platform, community_id, post_id, sum(likes + comments + reposts) AS interactions
    FROM engagement_minute FINAL
    WHERE minute >= {start:DateTime} AND minute < {end:DateTime}
      AND ({community:String} = '' OR community_id = {community:String})
    GROUP BY platform, community_id, post_id
),
views AS
(
    SELECT platform, community_id, post_id, argMax(views, as_of) AS views
    FROM post_views FINAL
    WHERE as_of <= {end:DateTime}
    GROUP BY platform, community_id, post_id
)
SELECT
    p.community_id AS community_id,
    count() AS posts_with_views,
    sum(p.interactions) AS interactions,
    sum(v.views) AS views,
    round(sum(p.interactions) / sum(v.views) * 100, 4) AS er_view_ratio_of_sums_pct,
    round(avg(p.interactions / v.views) * 100, 4) AS er_view_mean_of_ratios_pct
FROM per_post AS p
INNER JOIN views AS v ON p.platform = v.platform AND p.community_id = v.community_id AND p.post_id = v.post_id
WHERE v.views > 0
GROUP BY p.community_id
ORDER BY er_view_ratio_of_sums_pct DESC, community_id
LIMIT {limit:UInt32}
