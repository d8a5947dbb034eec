#!/bin/bash
# clickhouse-client without a password on any command line (where `ps` and /proc show it to every local
# user, and `docker inspect` shows the health check's): a client config file, readable by its owner only,
# written with shell builtins (no program gets the password as an argument), removed after use. Statements
# that carry a password's hash go on standard input.
#
#   source /etc/pulse/clickhouse/client.sh      defines the functions below (the init script uses them)
#   bash /etc/pulse/clickhouse/client.sh healthcheck CLICKHOUSE_WRITER_PASSWORD
#       the compose health check: pulse_writer logs in over the container's own address, with the
#       password held in that variable
#   bash /etc/pulse/clickhouse/client.sh set-password analyst < new-password
#       sets a user's password (the first line of standard input) as the administrator of the image's
#       CLICKHOUSE_USER/CLICKHOUSE_PASSWORD; ClickHouse receives only its SHA-256

# USER PASSWORD -> the path of a new client config file (mode 0600, from mktemp) holding both.
pulse_client_config() {
    local file password=$2
    file=$(mktemp /tmp/pulse-client.XXXXXXXX.xml)
    # Quoted replacements: in bash 5.2 an unquoted `&` there stands for the text matched.
    password=${password//&/"&amp;"}
    password=${password//</"&lt;"}
    password=${password//>/"&gt;"}
    printf '<config>\n  <user>%s</user>\n  <password>%s</password>\n</config>\n' "$1" "$password" >"$file"
    printf '%s\n' "$file"
}

# CONFIG [clickhouse-client arguments...]: the client logged in with CONFIG only (the image's
# CLICKHOUSE_USER/CLICKHOUSE_PASSWORD, the administrator, would win over the file).
pulse_client() {
    local config=$1
    shift
    env -u CLICKHOUSE_USER -u CLICKHOUSE_PASSWORD clickhouse-client --config-file "$config" "$@"
}

# ADMIN_CONFIG USER PASSWORD: sets USER's password; the statement (with the password's SHA-256) on stdin.
pulse_set_password() {
    local hash
    [[ "$2" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "not a user name: $2" >&2; return 1; }
    hash=$(printf '%s' "$3" | sha256sum | cut -d ' ' -f 1)
    pulse_client "$1" --host 127.0.0.1 <<<"ALTER USER $2 IDENTIFIED WITH sha256_hash BY '$hash'"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -eo pipefail
    case "${1:-}" in
    healthcheck)
        : "${2:?name the variable that holds the password of pulse_writer}"
        config=$(pulse_client_config pulse_writer "${!2:?$2 is not set}")
        trap 'rm -f "$config"' EXIT
        pulse_client "$config" --host "$(hostname -i | cut -d ' ' -f 1)" --query "SELECT 1" >/dev/null
        ;;
    set-password)
        : "${2:?name the user}"
        IFS= read -r password || [[ -n "$password" ]]
        [[ ${#password} -ge 16 ]] || { echo "a password of at least 16 characters, please" >&2; exit 1; }
        config=$(pulse_client_config "${CLICKHOUSE_USER:-default}" "${CLICKHOUSE_PASSWORD:-}")
        trap 'rm -f "$config"' EXIT
        pulse_set_password "$config" "$2" "$password"
        echo "password of $2 changed"
        ;;
    *)
        echo "usage: client.sh healthcheck VARIABLE | client.sh set-password USER < password" >&2
        exit 2
        ;;
    esac
fi
