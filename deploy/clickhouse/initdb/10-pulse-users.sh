#!/bin/bash
# Run by the clickhouse/clickhouse-server image on the first start of an empty data volume (mounted into
# /docker-entrypoint-initdb.d by docker-compose.yml), while the server still listens on 127.0.0.1 only.
# It creates the database and the users of deploy/clickhouse/users.sql (the one place their grants are
# written; they are created locked), then sets their passwords from the environment. The passwords never
# appear in SQL text, in the server's query log or on a command line: ClickHouse receives their SHA-256,
# in statements sent on standard input, and the client logs in with a config file (client.sh).
#
# The image executes this file when it is executable and sources it otherwise, so it never calls `exit`.
set -eo pipefail

: "${CLICKHOUSE_WRITER_PASSWORD:?set CLICKHOUSE_WRITER_PASSWORD for the pulse_writer user}"
: "${CLICKHOUSE_ANALYST_PASSWORD:?set CLICKHOUSE_ANALYST_PASSWORD for the analyst user}"

# shellcheck source=../client.sh
source /etc/pulse/clickhouse/client.sh
pulse_admin_config=$(pulse_client_config "${CLICKHOUSE_USER:-default}" "${CLICKHOUSE_PASSWORD:-}")
trap 'rm -f "$pulse_admin_config"' EXIT

pulse_client "$pulse_admin_config" --host 127.0.0.1 <<<"CREATE DATABASE IF NOT EXISTS pulse"
pulse_client "$pulse_admin_config" --host 127.0.0.1 --multiquery < /etc/pulse/clickhouse/users.sql
pulse_set_password "$pulse_admin_config" pulse_writer "$CLICKHOUSE_WRITER_PASSWORD"
pulse_set_password "$pulse_admin_config" analyst "$CLICKHOUSE_ANALYST_PASSWORD"
rm -f "$pulse_admin_config"
trap - EXIT
echo "community-pulse: database pulse, users pulse_writer and analyst ready"
