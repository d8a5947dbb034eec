-- Users for a ClickHouse server (server mode only; the embedded engine has no access control).
-- Run once as an administrator after `pulse migrate`, with the passwords replaced, e.g.:
--   clickhouse-client --multiquery < deploy/clickhouse/users.sql
-- The database name below is the default `pulse` (PULSE_CLICKHOUSE__DATABASE); change it if yours differs.

-- The loader (`pulse sink`): inserts into the pipeline's tables and applies the DDL.
CREATE USER IF NOT EXISTS pulse_writer IDENTIFIED WITH sha256_password BY 'change-me-writer';
GRANT SELECT, INSERT, CREATE TABLE, CREATE VIEW, ALTER TABLE, TRUNCATE ON pulse.* TO pulse_writer;
GRANT CREATE DATABASE ON pulse.* TO pulse_writer;

-- Analysts and dashboards: read-only (readonly = 2 still lets clients set query settings, never data),
-- on the tables and views the docs describe, with bounded resources.
CREATE USER IF NOT EXISTS analyst IDENTIFIED WITH sha256_password BY 'change-me-analyst'
    SETTINGS readonly = 2, max_execution_time = 60, max_memory_usage = 4000000000;
GRANT SELECT ON pulse.events TO analyst;
GRANT SELECT ON pulse.engagement_minute TO analyst;
GRANT SELECT ON pulse.comment_sla TO analyst;
GRANT SELECT ON pulse.alerts TO analyst;
GRANT SELECT ON pulse.engagement_segment_hour TO analyst;
GRANT SELECT ON pulse.engagement_by_segment TO analyst;
GRANT SELECT ON pulse.community_followers TO analyst;
GRANT SELECT ON pulse.post_views TO analyst;
