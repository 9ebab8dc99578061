#!/usr/bin/env bash
# Start and stop crmpilot's services as background processes on this machine,
# against the local stack (infra/stack.sh). Logs: <run>/logs/<service>.log.
#
#   infra/services.sh start [service ...]   (default: all below, sandbox first, then one
#                                            enricher@<name> per enrichment: the built-in
#                                            score_request and those declared in
#                                            CRMPILOT_ENRICHMENTS_DIR; crm_source, the CRM
#                                            poller, only when named; the sandbox holds the
#                                            demo org and its history of closed cases,
#                                            CRMPILOT_SANDBOX_HISTORY of them, default 480)
#   infra/services.sh stop  [service ...]
#   infra/services.sh status
#   infra/services.sh env                   export lines for operator commands:
#                                            eval "$(infra/services.sh env)"; crmpilot status
#
# Every service reads its settings from CRMPILOT_* variables; this script sets
# the ones that point at the local stack and the CRM sandbox, and keeps any
# value already in the environment.
#
# Static group membership: each consumer service (and each enricher@<name>) runs
# with a group.instance.id of its own, stable across restarts -
# <service>-<replica>, enricher-<name>-<replica>, replica $CRMPILOT_SERVICES_REPLICA
# (default 1; give a second copy of the set against the same cluster another
# number: two live instances with one id fence each other) - and a 30 s session
# (CRMPILOT_<SERVICE>_SESSION_TIMEOUT_MS=30000). A killed or restarted instance
# takes its partitions back as soon as it rejoins, instead of waiting for its old
# session to expire; one stopped for good keeps them for the 30 s (a static member
# does not leave its group on a clean stop). A CRMPILOT_<SERVICE>_GROUP_INSTANCE_ID
# or _SESSION_TIMEOUT_MS already in the environment wins. Only the started process
# gets them (`env` does not print them). kpi_aggregator (faust) and crm_source
# (no consumer group) have no such setting.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
# shellcheck source=infra/lib.sh
. "$SCRIPT_DIR/lib.sh"
RUN_DIR="${CRMPILOT_RUN_DIR:-$REPO_ROOT/.run}"
LOG_DIR="$RUN_DIR/logs"
PY="$REPO_ROOT/.venv/bin/python"
ALL_SERVICES=(crm_sandbox ticket_classifier email_summarizer warehouse_writer crm_writer kpi_aggregator)

say() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

eval "$("$SCRIPT_DIR/stack.sh" env)"
export CRMPILOT_SANDBOX_CERT_DIR="${CRMPILOT_SANDBOX_CERT_DIR:-$RUN_DIR/sandbox-tls}"
export CRMPILOT_SANDBOX_PORT="${CRMPILOT_SANDBOX_PORT:-8443}"
export CRMPILOT_SALESFORCE_INSTANCE_URL="${CRMPILOT_SALESFORCE_INSTANCE_URL:-https://127.0.0.1:$CRMPILOT_SANDBOX_PORT}"
export CRMPILOT_SALESFORCE_CA_BUNDLE="${CRMPILOT_SALESFORCE_CA_BUNDLE:-$CRMPILOT_SANDBOX_CERT_DIR/ca.pem}"
# answers survive a restart: a redelivered event does not pay for a second model call
export CRMPILOT_LLM_CACHE="${CRMPILOT_LLM_CACHE:-postgres}"
export CRMPILOT_KPI_AGGREGATOR_DATA_DIR="${CRMPILOT_KPI_AGGREGATOR_DATA_DIR:-$RUN_DIR/kpi_aggregator}"
# /healthz, /readyz and /metrics of each consumer service (crmpilot status reads the same variables)
export CRMPILOT_TICKET_CLASSIFIER_HTTP_PORT="${CRMPILOT_TICKET_CLASSIFIER_HTTP_PORT:-9401}"
export CRMPILOT_EMAIL_SUMMARIZER_HTTP_PORT="${CRMPILOT_EMAIL_SUMMARIZER_HTTP_PORT:-9402}"
# an enricher's: CRMPILOT_ENRICHER_<NAME>_HTTP_PORT (the built-in score_request's on the port request_scorer had)
export CRMPILOT_ENRICHER_SCORE_REQUEST_HTTP_PORT="${CRMPILOT_ENRICHER_SCORE_REQUEST_HTTP_PORT:-9403}"
export CRMPILOT_WAREHOUSE_WRITER_HTTP_PORT="${CRMPILOT_WAREHOUSE_WRITER_HTTP_PORT:-9404}"
export CRMPILOT_CRM_WRITER_HTTP_PORT="${CRMPILOT_CRM_WRITER_HTTP_PORT:-9405}"
export CRMPILOT_CRM_SOURCE_HTTP_PORT="${CRMPILOT_CRM_SOURCE_HTTP_PORT:-9406}"

# NAME=VALUE lines of one instance's own settings: an enricher's health port
# (CRMPILOT_ENRICHER_<NAME>_HTTP_PORT, when set), then its static membership (none for a non-consumer)
instance_env() {
    local svc="$1"
    if [[ "$svc" == enricher@* ]]; then
        local port_var="CRMPILOT_ENRICHER_${svc#enricher@}_HTTP_PORT"
        port_var="${port_var^^}"
        [[ -z "${!port_var:-}" ]] || printf 'CRMPILOT_ENRICHER_HTTP_PORT=%s\n' "${!port_var}"
    fi
    membership_env "$svc"
}

# NAME=VALUE lines of the static membership of one service instance (none for a non-consumer)
membership_env() {
    local svc="$1" prefix id replica="${CRMPILOT_SERVICES_REPLICA:-1}"
    case "$svc" in
        enricher@*) prefix=CRMPILOT_ENRICHER_ id="enricher-${svc#enricher@}-$replica" ;;
        ticket_classifier | email_summarizer | warehouse_writer | crm_writer)
            prefix="CRMPILOT_${svc^^}_" id="$svc-$replica" ;;
        *) return 0 ;;
    esac
    local id_var="${prefix}GROUP_INSTANCE_ID" session_var="${prefix}SESSION_TIMEOUT_MS"
    printf '%s=%s\n' "$id_var" "${!id_var:-$id}" "$session_var" "${!session_var:-30000}"
}

pidfile() { echo "$RUN_DIR/$1.pid"; }
running() { local f; f="$(pidfile "$1")"; [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null; }

wait_ready() {
    local svc="$1" deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
        running "$svc" || die "$svc exited at start; see $LOG_DIR/$svc.log:$(printf '\n'; tail -n 20 "$LOG_DIR/$svc.log")"
        if grep -Eq 'consuming|listening on|polling' "$LOG_DIR/$svc.log" 2>/dev/null; then return 0; fi
        sleep 0.3
    done
    die "$svc not ready after 60 s; see $LOG_DIR/$svc.log"
}

start_one() {
    local svc="$1"
    if running "$svc"; then say "$svc: already running (pid $(cat "$(pidfile "$svc")"))"; return 0; fi
    local args=()
    local module="$svc"
    [[ "$svc" == crm_sandbox ]] && args=(--seed demo --history "${CRMPILOT_SANDBOX_HISTORY:-480}")
    [[ "$svc" == enricher@* ]] && module=enricher && args=(--enrichment "${svc#enricher@}")
    local membership=()
    mapfile -t membership < <(instance_env "$svc")
    : >"$LOG_DIR/$svc.log"
    (cd "$REPO_ROOT" && exec env "${membership[@]}" setsid "$PY" -m "$module" "${args[@]}" >>"$LOG_DIR/$svc.log" 2>&1) &
    echo $! >"$(pidfile "$svc")"
    wait_ready "$svc"
    local static=""
    local line
    for line in "${membership[@]}"; do
        [[ "$line" == *GROUP_INSTANCE_ID=* ]] && static=", ${line#*GROUP_INSTANCE_ID=} static member"
    done
    say "$svc: running (pid $(cat "$(pidfile "$svc")")$static, log $LOG_DIR/$svc.log)"
}

stop_one() {
    local svc="$1" f pid
    f="$(pidfile "$svc")"
    if ! running "$svc"; then rm -f "$f"; return 0; fi
    pid="$(cat "$f")"
    stop_pid "$pid" 20 "$svc"
    rm -f "$f"
    say "$svc: stopped"
}

# one enricher per enrichment, built-in (score_request) or declared: enricher@<name> (a bad spec stops here, with
# its file and line)
enrichers() {
    "$PY" -c 'from crmpilot.enrichments import load_registry; print(" ".join("enricher@" + s.name for s in load_registry()))'
}

cmd="${1:-status}"; shift || true
[[ -x "$PY" ]] || die "no Python environment at $PY; run 'make setup' first"
services=("$@")
if ((${#services[@]} == 0)); then
    if [[ "$cmd" == start ]]; then
        declared="$(enrichers)" || die "the enrichment specs do not load (above)"
    else  # stop and status work whatever the specs say now: the pidfiles below name what runs
        declared="$(enrichers 2>/dev/null)" || declared=""
    fi
    read -r -a declared_list <<<"$declared"
    # enrichers started earlier (perhaps with another CRMPILOT_ENRICHMENTS_DIR) are stopped and shown too
    for f in "$RUN_DIR"/enricher@*.pid; do
        [[ -e "$f" ]] || continue
        name="$(basename "$f" .pid)"
        [[ " ${declared_list[*]} " == *" $name "* ]] || declared_list+=("$name")
    done
    services=("${ALL_SERVICES[@]}" "${declared_list[@]}")
fi
mkdir -p "$LOG_DIR"
case "$cmd" in
    start) for s in "${services[@]}"; do start_one "$s"; done ;;
    stop) for ((i = ${#services[@]} - 1; i >= 0; i--)); do stop_one "${services[$i]}"; done ;;
    env)  # endpoints only of the services that run, so `crmpilot status` probes what is there
        for s in ticket_classifier email_summarizer warehouse_writer crm_writer crm_source; do
            running "$s" || unset "CRMPILOT_${s^^}_HTTP_PORT"
        done
        for v in $(compgen -e | grep -E '^CRMPILOT_ENRICHER_.+_HTTP_PORT$' || true); do
            s="${v#CRMPILOT_ENRICHER_}"; s="${s%_HTTP_PORT}"
            running "enricher@${s,,}" || unset "$v"
        done
        # quoted for the shell: values may hold spaces, quotes or JSON (CRMPILOT_LLM_PRICES)
        while IFS= read -r name; do printf 'export %s=%q\n' "$name" "${!name}"; done \
            < <(compgen -e | grep -E '^(CRMPILOT_|OTEL_)' | sort) ;;
    status) for s in "${services[@]}"; do if running "$s"; then say "$s: running (pid $(cat "$(pidfile "$s")"))"; else say "$s: stopped"; fi; done ;;
    *) die "unknown command '$cmd' (start | stop | status | env)" ;;
esac
