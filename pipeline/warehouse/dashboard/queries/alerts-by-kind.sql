-- about: How many alerts of each kind fired from {start} to {now} (event time).
SELECT kind, count() AS alerts
FROM alerts FINAL
WHERE fired_at >= {start:DateTime} AND fired_at <= {now:DateTime}
GROUP BY kind
ORDER BY kind
