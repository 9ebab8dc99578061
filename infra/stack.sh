#!/usr/bin/env bash
# crmpilot local stack without Docker: a real Apache Kafka broker (KRaft,
# single node, jars from Maven Central) and the system's PostgreSQL server,
# both on 127.0.0.1 only, with their data, logs and PID files in the run folder.
#
#   infra/stack.sh up [--llm] | down | status | env | logs [-f]
#                                   --llm (or CRMPILOT_STACK_LLM=1): also start llama.cpp's
#                                   server with a small model (infra/llama.sh); down stops it
#   infra/stack.sh kafka-up | kafka-down | pg-up | pg-down
#   infra/stack.sh fetch            fetch broker + tools jars (no start)
#   infra/stack.sh reset            down, then delete Kafka and Postgres data
#
# Environment (all optional):
#   CRMPILOT_RUN_DIR                 run folder            (default <repo>/.run)
#   CRMPILOT_CACHE_DIR               jar cache             (default ~/.cache/crmpilot)
#   CRMPILOT_KAFKA_PORT              broker port           (default 9092)
#   CRMPILOT_KAFKA_CONTROLLER_PORT   KRaft controller port (default 9093)
#   CRMPILOT_PG_PORT                 PostgreSQL port       (default 55432)
#   CRMPILOT_KAFKA_HEAP_OPTS         JVM heap              (default -Xms256m -Xmx768m)
#   CRMPILOT_STACK_TIMEOUT           readiness timeout, s  (default 120)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
# shellcheck source=infra/lib.sh
. "$SCRIPT_DIR/lib.sh"

RUN_DIR="${CRMPILOT_RUN_DIR:-$REPO_ROOT/.run}"
LOG_DIR="$RUN_DIR/logs"
CACHE_DIR="${CRMPILOT_CACHE_DIR:-${HOME:-/root}/.cache/crmpilot}"
KAFKA_PORT="${CRMPILOT_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${CRMPILOT_KAFKA_CONTROLLER_PORT:-9093}"
PG_PORT="${CRMPILOT_PG_PORT:-55432}"
KAFKA_HEAP_OPTS="${CRMPILOT_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
TIMEOUT="${CRMPILOT_STACK_TIMEOUT:-120}"
KAFKA_STOP_TIMEOUT=60

PG_USER=crmpilot
PG_PASSWORD=crmpilot
PG_DB=crmpilot

POM="$SCRIPT_DIR/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)"
KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIB="$KAFKA_HOME/lib"
KAFKA_TOOLS_LIB="$KAFKA_HOME/tools-lib"
KAFKA_RUN="$RUN_DIR/kafka"
KAFKA_DATA="$KAFKA_RUN/data"
KAFKA_PID="$RUN_DIR/kafka.pid"
KAFKA_LOG="$LOG_DIR/kafka.log"
KAFKA_OUT="$LOG_DIR/kafka.out"

PY="$REPO_ROOT/.venv/bin/python"

SAY_FD=1
say() { printf '[stack] %s\n' "$*" >&"$SAY_FD"; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

bootstrap() { echo "127.0.0.1:$KAFKA_PORT"; }
database_url() { echo "postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"; }

print_env() {
    echo "export CRMPILOT_KAFKA_BOOTSTRAP=$(bootstrap)"
    echo "export CRMPILOT_DATABASE_URL=$(database_url)"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# true when something accepts TCP connections on 127.0.0.1:$1
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {
    # apt_install <what for> <debian packages...>
    local why="$1"; shift
    if is_root && command -v apt-get >/dev/null 2>&1; then
        say "$why: installing Debian package(s) $* (apt-get)..."
        apt-get update -qq >"$LOG_DIR/apt.log" 2>&1 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$LOG_DIR/apt.log" 2>&1 \
            || die "apt-get install $* failed, see $LOG_DIR/apt.log"
    else
        die "$why: missing; install it first, e.g. 'sudo apt-get install -y $*'"
    fi
}

ensure_dirs() { mkdir -p "$RUN_DIR" "$LOG_DIR" "$KAFKA_RUN"; }

# Serialise concurrent invocations (two `up`s from two terminals or test runs).
take_lock() {
    exec 9>"$RUN_DIR/.stack.lock"
    command -v flock >/dev/null 2>&1 && { flock -w 300 9 || die "another infra/stack.sh is running (lock $RUN_DIR/.stack.lock)"; }
    return 0
}

# ---------------------------------------------------------------- Kafka jars

ensure_java() {
    command -v java >/dev/null 2>&1 || apt_install "java (Kafka 4.x needs 17+)" openjdk-17-jre-headless
    local major
    major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
    [ -n "$major" ] && [ "$major" -ge 17 ] || die "Kafka $KAFKA_VERSION needs Java 17+, found '$(java -version 2>&1 | head -n1)'"
}

ensure_mvn() { command -v mvn >/dev/null 2>&1 || apt_install "maven (fetches the Kafka jars)" maven; }

pom_stamp() { sha256sum "$POM" | cut -c1-16; }

# fetch_lib <dest dir> <approx size text> [maven args...]
# Skips when <dest>/.complete matches the current pom; the marker is written
# only after Maven succeeded and the folder was moved into place.
fetch_lib() {
    local dest="$1" size="$2"; shift 2
    local stamp; stamp="$(pom_stamp)"
    if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$stamp" ]; then
        return 0
    fi
    ensure_java
    ensure_mvn
    local what; what="$(basename "$dest")"
    say "kafka: fetching $KAFKA_VERSION jars into $dest (first run, ~$size)..."
    mkdir -p "$KAFKA_HOME"
    local tmp="$dest.partial.$$"
    rm -rf "$tmp"
    local mlog="$LOG_DIR/mvn-$what.log"
    local t0=$SECONDS
    if ! mvn -B -q -f "$POM" "$@" dependency:copy-dependencies \
            -DoutputDirectory="$tmp" -DincludeScope=runtime >"$mlog" 2>&1; then
        rm -rf "$tmp"
        tail -n 20 "$mlog" >&2 || true
        die "kafka: Maven could not fetch the jars, see $mlog"
    fi
    ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || die "kafka: kafka_2.13 jar missing after fetch, see $mlog"
    rm -rf "$dest"
    mv "$tmp" "$dest"
    echo "$stamp" >"$dest/.complete"
    say "kafka: $(ls "$dest"/*.jar | wc -l) jars, $(du -sh "$dest" | cut -f1) in $((SECONDS - t0)) s"
}

fetch_broker() { fetch_lib "$KAFKA_LIB" "45 MB"; }
fetch_tools()  { fetch_lib "$KAFKA_TOOLS_LIB" "55 MB, of which ~11 MB more than the broker" -P tools; }

# ---------------------------------------------------------------- Kafka

kafka_pid() {
    # prints the broker's PID when our broker is running
    [ -f "$KAFKA_PID" ] || return 1
    local pid; pid="$(cat "$KAFKA_PID" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # guard against PID reuse: it must be a JVM running kafka.Kafka
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
    echo "$pid"
}

render_kafka_config() {
    sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
        "$SCRIPT_DIR/kafka/server.properties.in" >"$KAFKA_RUN/server.properties"
}

kafka_java() {
    # kafka_java <java args...> with the broker classpath and log config
    java -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" \
         -Dkafka.logs.dir="$LOG_DIR" -cp "$KAFKA_LIB/*" "$@"
}

format_kafka_if_needed() {
    if [ -f "$KAFKA_DATA/meta.properties" ]; then
        return 0
    fi
    local cid_file="$KAFKA_RUN/cluster.id" cid
    if [ -s "$cid_file" ]; then
        cid="$(cat "$cid_file")"
    else
        cid="$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$KAFKA_OUT" | tail -n1)"
        [ -n "$cid" ] || die "kafka: could not generate a cluster id, see $KAFKA_OUT"
        echo "$cid" >"$cid_file"
    fi
    say "kafka: formatting storage $KAFKA_DATA (cluster id $cid)..."
    mkdir -p "$KAFKA_DATA"
    # --cluster-id=ID with '=': generated ids can start with '-'
    kafka_java kafka.tools.StorageTool format --cluster-id="$cid" \
        -c "$KAFKA_RUN/server.properties" >>"$KAFKA_OUT" 2>&1 \
        || die "kafka: storage format failed, see $KAFKA_OUT"
}

# Ready = a real client round trip (metadata) succeeds. With the project venv
# the Python AdminClient does it; without, the port must answer and the broker
# must have logged that it started.
kafka_wait_ready() {
    local pid="$1" deadline=$((SECONDS + TIMEOUT))
    local use_py=0
    if [ -x "$PY" ] && "$PY" -c 'import confluent_kafka' 2>/dev/null; then use_py=1; fi
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$KAFKA_LOG" "$KAFKA_OUT" >&2 2>/dev/null || true
            die "kafka: broker exited during start-up, see $KAFKA_LOG and $KAFKA_OUT"
        fi
        if [ "$use_py" = 1 ]; then
            if "$PY" - "$(bootstrap)" <<'PYEOF' >/dev/null 2>&1
import sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
md = admin.list_topics(timeout=3)
sys.exit(0 if md.brokers else 1)
PYEOF
            then return 0; fi
        else
            if port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null; then
                return 0
            fi
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$KAFKA_LOG" >&2 2>/dev/null || true
            die "kafka: not ready after ${TIMEOUT}s, see $KAFKA_LOG (and $KAFKA_OUT); still running as PID $pid"
        fi
        sleep 1
    done
}

kafka_up() {
    local pid
    if pid="$(kafka_pid)"; then
        say "kafka: already up on $(bootstrap) (PID $pid)"
        return 0
    fi
    fetch_broker
    ensure_java
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        port_open "$p" && die "kafka: 127.0.0.1:$p is already in use by another process (not our broker); stop it or set CRMPILOT_KAFKA_PORT / CRMPILOT_KAFKA_CONTROLLER_PORT"
    done
    render_kafka_config
    format_kafka_if_needed
    say "kafka: starting $KAFKA_VERSION (log $KAFKA_LOG)..."
    echo "=== $(date -u +%FT%TZ) start" >>"$KAFKA_OUT"
    # setsid: own session, so Ctrl-C in the calling terminal does not kill it
    # shellcheck disable=SC2086
    setsid java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" \
        -Dkafka.logs.dir="$LOG_DIR" \
        -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_RUN/server.properties" \
        </dev/null >>"$KAFKA_OUT" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$KAFKA_PID"
    kafka_wait_ready "$pid"
    say "kafka: up on $(bootstrap) (PID $pid)"
}

kafka_down() {
    local pid
    if ! pid="$(kafka_pid)"; then
        rm -f "$KAFKA_PID"
        say "kafka: already down"
        return 0
    fi
    say "kafka: stopping (PID $pid, SIGTERM: controlled shutdown)..."
    stop_pid "$pid" "$KAFKA_STOP_TIMEOUT" "kafka"
    rm -f "$KAFKA_PID"
    say "kafka: down"
}

kafka_status() {
    local pid
    if pid="$(kafka_pid)"; then
        say "kafka: up on $(bootstrap) (PID $pid, $KAFKA_VERSION, data $KAFKA_DATA)"
        return 0
    fi
    say "kafka: down"
    return 1
}

# ---------------------------------------------------------------- PostgreSQL

PG_BIN=""
pg_find_bin() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
    if [ -z "$d" ] || [ ! -x "$d/pg_ctl" ]; then
        apt_install "PostgreSQL server" postgresql
        d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
        [ -n "$d" ] && [ -x "$d/pg_ctl" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
    fi
    PG_BIN="$d"
}

# Postgres refuses to run as root: as root, its programs run as the `postgres`
# OS user, which must be able to reach the data directory.
PG_OS_USER=""
pg_as() {
    if [ -n "$PG_OS_USER" ]; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        "$@"
    fi
}

# chown to the postgres OS user when we run as root (no-op otherwise)
pg_own() { [ -z "$PG_OS_USER" ] || chown "$PG_OS_USER:" "$@"; }

# Where the cluster lives. Normally <run>/postgres; when that path cannot be
# reached by the postgres user (repo under a private home, e.g. /root) or is
# too long for a unix socket path, /tmp/crmpilot-pg-<hash of the run folder>.
PG_BASE=""
pg_resolve_base() {
    if is_root; then
        id postgres >/dev/null 2>&1 || die "PostgreSQL refuses to run as root and there is no 'postgres' OS user (is the postgresql package installed?)"
        PG_OS_USER=postgres
    fi
    local base="$RUN_DIR/postgres"
    local alt; alt="/tmp/crmpilot-pg-$(printf '%s' "$RUN_DIR" | sha256sum | cut -c1-12)"
    if [ -f "$RUN_DIR/postgres.location" ]; then
        PG_BASE="$(cat "$RUN_DIR/postgres.location")"
        return 0
    fi
    mkdir -p "$base"
    pg_own "$base"
    if [ "${#base}" -gt 80 ] || ! pg_as test -w "$base" -a -x "$base"; then
        say "postgres: $base is not usable by user '${PG_OS_USER:-$(id -un)}' (or too long for a socket path); using $alt"
        rmdir "$base" 2>/dev/null || true
        base="$alt"
        mkdir -p "$base"
        chmod 700 "$base"
        pg_own "$base"
    fi
    echo "$base" >"$RUN_DIR/postgres.location"
    PG_BASE="$base"
}

pg_data() { echo "$PG_BASE/data"; }

pg_log() {
    # the server log, writable by the postgres user; linked from <run>/logs
    local f="$LOG_DIR/postgres.log"
    if [ "$PG_BASE" != "$RUN_DIR/postgres" ]; then
        f="$PG_BASE/postgres.log"
        ln -sfn "$f" "$LOG_DIR/postgres.log"
    fi
    echo "$f"
}

pg_setup() {
    pg_find_bin
    pg_resolve_base
}

pg_running() { [ -f "$(pg_data)/PG_VERSION" ] && pg_as "$PG_BIN/pg_ctl" status -D "$(pg_data)" >/dev/null 2>&1; }

pg_init_if_needed() {
    local data; data="$(pg_data)"
    [ -f "$data/PG_VERSION" ] && return 0
    say "postgres: initdb $data ($("$PG_BIN/postgres" --version | sed -n 's/.*(PostgreSQL) \([^ ]*\).*/\1/p'))..."
    rm -rf "$data"
    local log; log="$(pg_log)"
    touch "$log"; pg_own "$log"
    pg_as "$PG_BIN/initdb" -D "$data" --encoding=UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >>"$log" 2>&1 \
        || die "postgres: initdb failed, see $log"
    echo "include_if_exists = 'crmpilot.conf'" >>"$data/postgresql.conf"
}

pg_install_config() {
    local data; data="$(pg_data)"
    local f
    for f in crmpilot.conf pg_hba.conf; do
        install -m 600 "$SCRIPT_DIR/postgres/$f" "$data/$f"
        pg_own "$data/$f"
    done
}

pg_psql_admin() {
    # superuser over the unix socket in PG_BASE (local trust)
    pg_as "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_BASE" -p "$PG_PORT" -d postgres "$@"
}

pg_up() {
    pg_setup
    if pg_running; then
        say "postgres: already up on 127.0.0.1:$PG_PORT (data $(pg_data))"
        return 0
    fi
    port_open "$PG_PORT" && die "postgres: 127.0.0.1:$PG_PORT is already in use by another process; stop it or set CRMPILOT_PG_PORT"
    pg_init_if_needed
    pg_install_config
    local log; log="$(pg_log)"
    touch "$log"; pg_own "$log"
    say "postgres: starting on 127.0.0.1:$PG_PORT (log $log)..."
    pg_as "$PG_BIN/pg_ctl" start -D "$(pg_data)" -l "$log" -w -t "$TIMEOUT" -s \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k '$PG_BASE'" 9>&- \
        || { tail -n 20 "$log" >&2 || true; die "postgres: start failed, see $log"; }
    local deadline=$((SECONDS + TIMEOUT))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
        [ "$SECONDS" -ge "$deadline" ] && die "postgres: not ready after ${TIMEOUT}s, see $log"
        sleep 0.5
    done
    pg_psql_admin -v pg_user="$PG_USER" -v pg_password="$PG_PASSWORD" -v pg_db="$PG_DB" \
        <"$SCRIPT_DIR/postgres/init.sql" >/dev/null 2>>"$log" \
        || die "postgres: creating role/database $PG_USER/$PG_DB failed, see $log"
    # the PID file of our cluster, beside the others
    ln -sfn "$(pg_data)/postmaster.pid" "$RUN_DIR/postgres.pid"
    say "postgres: up on 127.0.0.1:$PG_PORT (database $PG_DB, role $PG_USER)"
}

pg_down() {
    pg_setup
    if ! pg_running; then
        say "postgres: already down"
        return 0
    fi
    say "postgres: stopping (fast)..."
    pg_as "$PG_BIN/pg_ctl" stop -D "$(pg_data)" -m fast -w -t 60 -s \
        || pg_as "$PG_BIN/pg_ctl" stop -D "$(pg_data)" -m immediate -w -t 30 -s \
        || die "postgres: could not stop, see $(pg_log)"
    say "postgres: down"
}

pg_status() {
    pg_setup
    if pg_running; then
        say "postgres: up on 127.0.0.1:$PG_PORT (PostgreSQL $("$PG_BIN/postgres" --version | sed -n 's/.*(PostgreSQL) \([^ ]*\).*/\1/p'), data $(pg_data))"
        return 0
    fi
    say "postgres: down"
    return 1
}

# ---------------------------------------------------------------- commands

cmd_logs() {
    local follow=0
    [ "${1:-}" = "-f" ] && follow=1
    local files=("$KAFKA_LOG" "$LOG_DIR/postgres.log")
    say "logs in $LOG_DIR: kafka.log (broker), kafka.out (JVM stdout/stderr, format), postgres.log, mvn-*.log"
    if [ "$follow" = 1 ]; then
        exec tail -n 20 -F "${files[@]}"
    fi
    local f
    for f in "${files[@]}"; do
        if [ -e "$f" ]; then
            echo "==> $f <=="
            tail -n 40 "$f"
        fi
    done
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

main() {
    local cmd="${1:-}"
    [ $# -gt 0 ] && shift
    case "$cmd" in
        up)
            local llm="${CRMPILOT_STACK_LLM:-0}"
            [ "${1:-}" = --llm ] && llm=1
            ensure_dirs; take_lock
            local t0=$SECONDS
            kafka_up
            pg_up
            if [ "$llm" = 1 ]; then
                "$SCRIPT_DIR/llama.sh" start 9>&- || die "the LLM server did not start (infra/llama.sh)"
            fi
            say "stack up in $((SECONDS - t0)) s; services use:"
            print_env | sed 's/^export /  /'
            if [ "$llm" = 1 ]; then "$SCRIPT_DIR/llama.sh" env | sed 's/^export /  /'; fi
            ;;
        down)
            ensure_dirs; take_lock
            if [ -f "$RUN_DIR/llama.pid" ]; then "$SCRIPT_DIR/llama.sh" stop 9>&- || true; fi
            kafka_down
            pg_down
            ;;
        status)
            ensure_dirs
            local rc=0
            kafka_status || rc=3
            pg_status || rc=3
            return "$rc"
            ;;
        kafka-up)   ensure_dirs; take_lock; kafka_up ;;
        kafka-down) ensure_dirs; take_lock; kafka_down ;;
        pg-up)      ensure_dirs; take_lock; pg_up ;;
        pg-down)    ensure_dirs; take_lock; pg_down ;;
        env)        print_env ;;
        logs)       ensure_dirs; cmd_logs "$@" ;;
        fetch)      ensure_dirs; take_lock; fetch_broker; fetch_tools ;;
        tools-lib)
            # for infra/kafka-cli.sh: ensure the tools jars, print their folder
            SAY_FD=2
            ensure_dirs; take_lock; fetch_tools
            echo "$KAFKA_TOOLS_LIB"
            ;;
        reset)
            ensure_dirs; take_lock
            kafka_down
            pg_down
            say "reset: deleting $KAFKA_RUN and $PG_BASE"
            rm -rf "$KAFKA_RUN" "$PG_BASE" "$RUN_DIR/postgres" "$RUN_DIR/postgres.location" "$RUN_DIR/postgres.pid" "$KAFKA_PID"
            ;;
        -h|--help|help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
