#!/usr/bin/env bash
# Dependency audit: pip-audit over every package pinned in uv.lock.
#
#   infra/audit.sh                      fail on a known vulnerability, and on any package
#                                       the vulnerability service could not be asked about
#   infra/audit.sh --allow-unaudited    still fail on a vulnerability, but only report
#                                       packages left unaudited (a network without the
#                                       service, or the tool not installable): the summary
#                                       says "NOT AUDITED" plainly
#
# Extra pip-audit options after `--`, e.g. `infra/audit.sh -- -s osv` (OSV instead of PyPI).
# Exit: 0 clean, 1 vulnerabilities found, 2 packages left unaudited, 3 the tool failed.
set -euo pipefail
cd "$(dirname "$0")/.."

PIP_AUDIT_VERSION="${CRMPILOT_PIP_AUDIT_VERSION:-2.9.0}"
allow_unaudited=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --allow-unaudited) allow_unaudited=1 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "audit: unknown option $1 (see --help)" >&2; exit 3 ;;
  esac
  shift
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m uv export --frozen --no-hashes --no-emit-workspace --quiet > "$work/requirements.txt"
pinned=$(grep -c '==' "$work/requirements.txt" || true)
echo "[audit] pip-audit $PIP_AUDIT_VERSION over $pinned pinned packages of uv.lock"
set +e
python3 -m uv tool run --quiet "pip-audit==$PIP_AUDIT_VERSION" -r "$work/requirements.txt" --disable-pip --no-deps \
  --progress-spinner off -f json -o "$work/audit.json" "${extra[@]}" 2> "$work/stderr"
tool_rc=$?
set -e
if [ ! -s "$work/audit.json" ]; then
  echo "[audit] pip-audit did not run (exit $tool_rc):" >&2
  tail -20 "$work/stderr" >&2
  if [ "$allow_unaudited" = 1 ]; then
    echo "[audit] NOT AUDITED: the audit tool itself could not run; this is no clean bill"
    exit 0
  fi
  exit 3
fi

python3 - "$work/audit.json" "$allow_unaudited" <<'EOF'
import json
import sys

report = json.load(open(sys.argv[1]))
allow_unaudited = sys.argv[2] == "1"
deps = report.get("dependencies", [])
skipped = [d for d in deps if d.get("skip_reason")]
vulnerable = [d for d in deps if d.get("vulns")]
audited = len(deps) - len(skipped)
print(f"[audit] audited {audited} of {len(deps)}; vulnerable {len(vulnerable)}; unaudited {len(skipped)}")
for d in vulnerable:
    for v in d["vulns"]:
        fixes = ", ".join(v.get("fix_versions") or []) or "no fixed version"
        print(f"  VULNERABLE {d['name']} {d.get('version', '?')}: {v['id']} (fixed in: {fixes})")
if skipped:
    reasons = sorted({d["skip_reason"] for d in skipped})
    print(f"  unaudited: {', '.join(d['name'] for d in skipped[:12])}{' …' if len(skipped) > 12 else ''}")
    print(f"  reason (first): {reasons[0][:200]}")
if vulnerable:
    sys.exit(1)
if skipped:
    if allow_unaudited:
        print(f"[audit] NOT AUDITED: {len(skipped)} of {len(deps)} packages could not be checked "
              "(the vulnerability service is not reachable from here); this is no clean bill")
        sys.exit(0)
    sys.exit(2)
print("[audit] no known vulnerabilities")
EOF
