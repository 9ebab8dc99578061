# Shell functions the infra/ scripts share. Sourced, never run; the caller defines say().

# stop_pid PID TIMEOUT_S LABEL: SIGTERM, wait up to TIMEOUT_S for the process to exit, then SIGKILL.
stop_pid() {
    local pid="$1" timeout="$2" label="$3"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "$label: still running after ${timeout}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            return 0
        fi
        sleep 0.2
    done
}
