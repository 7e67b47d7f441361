#!/usr/bin/env bash
# The systemd units of deploy/systemd pass `systemd-analyze verify` without a
# single message, for one instance of each template (ExecStart pointing at
# the built worker, or at /bin/true for a kind that is not built: verify
# checks that the command exists), and supervise without giving up:
# Restart=always with a RestartSec of 1 s or more and no start rate limit
# (StartLimitIntervalSec=0), so a worker that crashes at every start is
# tried again forever. Prints each unit's `systemd-analyze security`
# exposure.
#
#   test_systemd.sh UNIT_DIR      env: INTAKE_BIN ROUTER_BIN ESCALATION_BIN AUDIT_BIN
set -euo pipefail
units=${1:?usage: test_systemd.sh UNIT_DIR}
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze is not installed: skipped"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-systemd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cp "$units/dispatch.target" "$tmp/"
instances=()
for kind in intake router escalation audit; do
  var=$(echo "${kind}_BIN" | tr '[:lower:]' '[:upper:]')
  bin=${!var:-/bin/true}
  [ -x "$bin" ] || bin=/bin/true
  sed "s#/usr/bin/dispatch-$kind #$bin #" "$units/dispatch-$kind@.service" > "$tmp/dispatch-$kind@.service"
  grep -q "ExecStart=$bin " "$tmp/dispatch-$kind@.service" ||
    { echo "FAIL: dispatch-$kind@.service: ExecStart is not /usr/bin/dispatch-$kind"; exit 1; }
  case $kind in
    intake) instances+=("dispatch-intake@1.service") ;;
    audit) instances+=("dispatch-audit@audit.service") ;;
    *) instances+=("dispatch-$kind@chaoyang.service") ;;
  esac
done

status=0
for unit in "${instances[@]}" dispatch.target; do
  out=$(systemd-analyze verify --man=no "$tmp/$unit" 2>&1) || status=1
  if [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify $unit:"
    echo "$out"
    status=1
  else
    echo "ok: systemd-analyze verify $unit"
  fi
done

# Supervision that does not give up, as systemd reads the unit (the last
# assignment of a key wins).
setting() { grep -E "^$2=" "$1" | tail -n 1 | cut -d= -f2-; }
for kind in intake router escalation audit; do
  file=$units/dispatch-$kind@.service
  restart=$(setting "$file" Restart) delay=$(setting "$file" RestartSec)
  interval=$(setting "$file" StartLimitIntervalSec)
  if [ "$restart" != always ] || ! [[ "$delay" =~ ^[1-9][0-9]*s$ ]] || [ "$interval" != 0 ]; then
    echo "FAIL: dispatch-$kind@.service gives up: Restart=$restart RestartSec=$delay StartLimitIntervalSec=$interval"
    status=1
  else
    echo "ok: dispatch-$kind@.service restarts forever (Restart=always, RestartSec=$delay, no start limit)"
  fi
done

for unit in "${instances[@]}"; do
  exposure=$(systemd-analyze security --offline=true --no-pager "$tmp/$unit" 2>&1 |
             grep 'Overall exposure level' || true)
  echo "security: ${exposure:-$unit: (systemd-analyze security gave no verdict)}"
done
exit $status
