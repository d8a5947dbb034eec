-- Users for a ClickHouse server (server mode only; the embedded engine has no access control).
-- Run once as an administrator, e.g. `clickhouse-client --config-file admin.xml --multiquery < users.sql`
-- (docker-compose.yml's init script does it on the first start). The users are created locked: the hash
-- below has no known password, so nobody logs in until their password is set, e.g. (the init script
-- does it from the environment, sending only the password's SHA-256):
--   ALTER USER pulse_writer IDENTIFIED WITH sha256_hash BY '<hex SHA-256 of the password>'
-- The database name below is the default `pulse` (PULSE_CLICKHOUSE__DATABASE); change it if yours differs.

-- The loader (`pulse sink`): inserts into the pipeline's tables and applies the DDL.
CREATE USER IF NOT EXISTS pulse_writer
    IDENTIFIED WITH sha256_hash BY '0000000000000000000000000000000000000000000000000000000000000000';
GRANT SELECT, INSERT, CREATE TABLE, CREATE VIEW, DROP VIEW, ALTER TABLE, ALTER DELETE, TRUNCATE ON pulse.* TO pulse_writer;
GRANT CREATE DATABASE ON pulse.* TO pulse_writer;

-- Analysts and dashboards: read-only, on the tables and views the docs describe, with bounded resources.
-- readonly = 2 lets clients (Grafana's plugin, `pulse query`) set query settings, never data or schema;
-- the constraints keep the limits from being SET away: each limit may be lowered, never raised or turned
-- off (0 means "no limit" in ClickHouse, hence MIN 1), and an overflow is an error, not a silent cut.
-- Without grants for them (READ ON FILE, URL, S3, REMOTE ...) the analyst's table functions are refused.
-- The same limits as `pulse query`'s own (PULSE_CLICKHOUSE__QUERY_*); keep those at or below these.
CREATE SETTINGS PROFILE IF NOT EXISTS analyst_limits SETTINGS
    readonly = 2,
    max_execution_time = 60 MIN 1 MAX 60,
    timeout_overflow_mode = 'throw' CONST,
    max_memory_usage = 2000000000 MIN 1 MAX 2000000000,
    max_result_rows = 1000000 MIN 1 MAX 1000000,
    result_overflow_mode = 'throw' CONST;
CREATE USER IF NOT EXISTS analyst
    IDENTIFIED WITH sha256_hash BY '0000000000000000000000000000000000000000000000000000000000000000'
    SETTINGS PROFILE 'analyst_limits';
GRANT SELECT ON pulse.events TO analyst;
GRANT SELECT ON pulse.engagement_minute TO analyst;
GRANT SELECT ON pulse.comment_sla TO analyst;
GRANT SELECT ON pulse.alerts TO analyst;
GRANT SELECT ON pulse.engagement_segment_hour TO analyst;
GRANT SELECT ON pulse.community_ingest_minute TO analyst;
GRANT SELECT ON pulse.engagement_by_segment TO analyst;
GRANT SELECT ON pulse.community_followers TO analyst;
GRANT SELECT ON pulse.post_views TO analyst;
