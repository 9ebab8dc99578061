#!/usr/bin/env bash
# Make sure a headless-capable Chromium is on PATH for the dashboard's browser test
# (tests/integration/report/test_report_dashboard.py). `make test` runs it first.
#
#   infra/chromium.sh          exit 0 when chromium (or chromium-browser) is on PATH,
#                              installing Debian's `chromium` package with apt-get when
#                              run as root; otherwise say what to install and exit 1
#
# Environment (optional): CRMPILOT_RUN_DIR  run folder for apt.log (default <repo>/.run)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_DIR="${CRMPILOT_RUN_DIR:-$REPO_ROOT/.run}/logs"

say() { printf '[chromium] %s\n' "$*"; }
die() {
    printf '[chromium] ERROR: %s\n' "$*" >&2
    printf '[chromium] The dashboard browser test needs Chromium and is not allowed to skip under make test.\n' >&2
    printf "[chromium] Install it first, e.g. 'sudo apt-get install -y chromium' (Debian/Ubuntu), then rerun.\n" >&2
    exit 1
}

found() { command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null; }

if browser="$(found)"; then
    say "using $browser ($("$browser" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "chromium is not on PATH and this is not root, so it cannot be installed here"
command -v apt-get >/dev/null 2>&1 || die "chromium is not on PATH and apt-get is not available to install it"

mkdir -p "$LOG_DIR"
say "installing Debian packages chromium fonts-liberation (apt-get, log: $LOG_DIR/apt-chromium.log)..."
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation; } \
    >"$LOG_DIR/apt-chromium.log" 2>&1; then
    tail -n 20 "$LOG_DIR/apt-chromium.log" >&2 || true
    die "apt-get install chromium failed (see $LOG_DIR/apt-chromium.log)"
fi
browser="$(found)" || die "apt-get installed chromium but neither chromium nor chromium-browser is on PATH"
say "installed $browser ($("$browser" --version 2>/dev/null || echo 'version unknown'))"
