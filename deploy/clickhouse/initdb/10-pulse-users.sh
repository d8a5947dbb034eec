#!/bin/bash
# Run by the clickhouse/clickhouse-server image on the first start of an empty data volume (mounted into
# /docker-entrypoint-initdb.d by docker-compose.yml), while the server still listens on 127.0.0.1 only.
# It creates the database and the users of deploy/clickhouse/users.sql (the one place their grants are
# written), then sets their passwords from the environment. The passwords never appear in SQL text or in
# the server's query log: ClickHouse receives their SHA-256, computed here.
#
# The image executes this file when it is executable and sources it otherwise, so it never calls `exit`.
set -eo pipefail

: "${CLICKHOUSE_WRITER_PASSWORD:?set CLICKHOUSE_WRITER_PASSWORD for the pulse_writer user}"
: "${CLICKHOUSE_ANALYST_PASSWORD:?set CLICKHOUSE_ANALYST_PASSWORD for the analyst user}"

pulse_client=(clickhouse-client --host 127.0.0.1 --user "${CLICKHOUSE_USER:-default}" --password "${CLICKHOUSE_PASSWORD:-}")

pulse_sha256() {
    printf '%s' "$1" | sha256sum | cut -d ' ' -f 1
}

"${pulse_client[@]}" --query "CREATE DATABASE IF NOT EXISTS pulse"
"${pulse_client[@]}" --multiquery < /etc/pulse/clickhouse/users.sql
"${pulse_client[@]}" --query \
    "ALTER USER pulse_writer IDENTIFIED WITH sha256_hash BY '$(pulse_sha256 "$CLICKHOUSE_WRITER_PASSWORD")'"
"${pulse_client[@]}" --query \
    "ALTER USER analyst IDENTIFIED WITH sha256_hash BY '$(pulse_sha256 "$CLICKHOUSE_ANALYST_PASSWORD")'"
echo "community-pulse: database pulse, users pulse_writer and analyst ready"
