-- Where the loader inserts: one Null-engine table per stored table, shaped like the records on the wire
-- (the canonical event, the processors' outputs: epoch milliseconds, field names as in schemas/), and a
-- materialized view that turns each inserted block into the stored table's columns. The loader sends
-- JSONEachRow, so ClickHouse parses and converts the rows in compiled code instead of the loader building
-- them value by value in Python. A Null table keeps nothing: the rows live only in the tables below it.
-- An insert's deduplication token reaches the stored table through its view
-- (deduplicate_blocks_in_dependent_materialized_views, set by the loader on every insert).

CREATE TABLE IF NOT EXISTS events_input
(
    event_id      String,
    type          String,
    platform      String,
    community_id  String,
    post_id       String,
    user_id       String,
    ts            Int64,
    comment_id    Nullable(String),
    parent_id     Nullable(String),
    by_community  Bool,
    text          Nullable(String),
    age_band      Nullable(String),
    gender        Nullable(String),
    country       Nullable(String)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_input_mv TO events AS
SELECT
    event_id,
    type,
    platform,
    community_id,
    post_id,
    user_id,
    fromUnixTimestamp64Milli(ts, 'UTC') AS ts,
    comment_id,
    parent_id,
    by_community,
    text,
    age_band,
    gender,
    country,
    now64(3, 'UTC') AS ingested_at
FROM events_input;

CREATE TABLE IF NOT EXISTS engagement_minute_input
(
    platform         String,
    community_id     String,
    post_id          String,
    minute_ms        Int64,
    likes            UInt64,
    unlikes          UInt64,
    comments         UInt64,
    reposts          UInt64,
    unique_engagers  UInt64,
    score            Float64
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement_minute_input_mv TO engagement_minute AS
SELECT
    platform,
    community_id,
    post_id,
    toDateTime(intDiv(minute_ms, 1000), 'UTC') AS minute,
    likes,
    unlikes,
    comments,
    reposts,
    unique_engagers,
    score,
    likes + unlikes + comments + reposts AS events
FROM engagement_minute_input;

CREATE TABLE IF NOT EXISTS comment_sla_input
(
    platform         String,
    comment_id       String,
    community_id     String,
    post_id          String,
    commented_at_ms  Int64,
    sla_s            Float64,
    answered_at_ms   Nullable(Int64),
    breached         Bool,
    cancelled        Bool
)
ENGINE = Null;

-- stage orders a comment's versions (0 waiting, 1 breached, 2 answered or deleted): the latest state wins.
CREATE MATERIALIZED VIEW IF NOT EXISTS comment_sla_input_mv TO comment_sla AS
SELECT
    platform,
    comment_id,
    community_id,
    post_id,
    fromUnixTimestamp64Milli(commented_at_ms, 'UTC') AS commented_at,
    fromUnixTimestamp64Milli(answered_at_ms, 'UTC') AS answered_at,
    (answered_at_ms - commented_at_ms) / 1000 AS response_seconds,
    toUInt8(breached) AS breached,
    toUInt8(cancelled) AS cancelled,
    sla_s AS sla_seconds,
    multiIf(answered_at_ms IS NOT NULL OR cancelled, 2, breached, 1, 0) AS stage
FROM comment_sla_input;

CREATE TABLE IF NOT EXISTS alerts_input
(
    alert_id         String,
    kind             String,
    platform         String,
    community_id     String,
    post_id          String,
    comment_id       String,
    author_id        String,
    snippet          String,
    commented_at_ms  Int64,
    fired_at_ms      Int64,
    waited_s         Float64,
    sla_s            Float64,
    response_s       Nullable(Float64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS alerts_input_mv TO alerts AS
SELECT
    alert_id,
    kind,
    platform,
    community_id,
    post_id,
    comment_id,
    author_id,
    snippet,
    fromUnixTimestamp64Milli(commented_at_ms, 'UTC') AS commented_at,
    fromUnixTimestamp64Milli(fired_at_ms, 'UTC') AS fired_at,
    waited_s AS waited_seconds,
    sla_s AS sla_seconds,
    response_s AS response_seconds
FROM alerts_input;
