#!/usr/bin/env bash
# The city under scripts/run's supervisor, with load, a SIGKILL and no
# ticket lost.
#
# Starts every worker of deploy/topology.example.ini that is built (its
# endpoints moved to ipc:// files in a temporary directory, its state there
# too) with `scripts/run --detach` on an accelerated clock, the units
# (dispatch-unitsim, with the dispatchers) and the callers
# (dispatch-callgen); kills router-nanguan and then intake-1 with SIGKILL
# under load and waits until supervisord has started each again (a new pid
# and a second ready line in its log); then checks that the call generator
# got an answer to every submission and that every ticket acknowledged as
# REGISTERED reached its router (dispatched or in triage); then makes
# router-chaoyang crash-loop (SIGKILL within a second of each of five
# starts in a row, where supervisord used to give up after four) and waits
# until supervisord has it running and ready again; and that nothing is
# left running.
#
#   test_run.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail
src=${1:?usage: test_run.sh SOURCE_ROOT BUILD_ROOT}
build=${2:?usage: test_run.sh SOURCE_ROOT BUILD_ROOT}
src=$(cd "$src" && pwd)
build=$(cd "$build" && pwd)
if ! command -v supervisord >/dev/null; then
  echo "supervisord is not installed (scripts/setup): skipped"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-run.XXXXXX")
state=$tmp/state
unitsim_pid=""
callgen_pid=""
failed=1
cleanup() {
  [ -n "$unitsim_pid" ] && kill -TERM "$unitsim_pid" 2>/dev/null || true
  [ -n "$callgen_pid" ] && kill -TERM "$callgen_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  "$src/scripts/run" stop --state "$state" >/dev/null 2>&1 || true
  if [ "$failed" = 1 ]; then
    echo "state and logs kept in $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  exit 1
}

# Checks `what` (a shell command) again at every change of a file under
# $tmp (progress lines, supervisord's logs and state), for at most `seconds`;
# supervisorctl's answer changes with them.
wait_for() {
  local seconds=$1 what=$2
  local deadline=$((SECONDS + seconds))
  until eval "$what"; do
    [ $SECONDS -lt $deadline ] || return 1
    inotifywait -qq -r -t 1 -e modify,create,close_write "$tmp" >/dev/null 2>&1 || true
  done
}

# The example topology on ipc:// endpoints in $tmp, data from the source tree.
sed -E "s#tcp://127\.0\.0\.1:([0-9]+)#ipc://$tmp/ep-\1#g; s#^data_dir = deploy/#data_dir = $src/deploy/#" \
  "$src/deploy/topology.example.ini" > "$tmp/topology.ini"
topology=$tmp/topology.ini

speed=600
start_ms=$(TZ=Asia/Shanghai date -d "2026-11-23 08:00" +%s%3N)
status=0
"$src/scripts/run" --no-build --build-dir "$build" --topology "$topology" --state "$state" \
  --clock "fast:$speed@$start_ms" --detach || status=$?
[ "$status" = 0 ] || [ "$status" = 3 ] || fail "scripts/run --detach exited with $status"
ctl() { "$src/scripts/run" ctl --state "$state" "$@"; }
running=$(ctl status 2>/dev/null | awk '$2 == "RUNNING" { print $1 }' || true)
echo "running: $(echo $running)"
for worker in intake-1 router-chaoyang router-nanguan router-kuancheng; do
  grep -qx "$worker" <<< "$running" || fail "$worker is not running"
done
clock() { "$src/scripts/run" clock --state "$state"; }

# The units; ready once every session is connected.
mkfifo "$tmp/unitsim.ready"
"$build/tools/dispatch-unitsim" --config "$topology" --clock "$(clock)" --dispatcher \
  --ready-fd 3 3>"$tmp/unitsim.ready" >"$tmp/unitsim.out" 2>"$tmp/unitsim.err" &
unitsim_pid=$!
read -r ready < "$tmp/unitsim.ready" || true
[ "${ready:-}" = ready ] || fail "dispatch-unitsim did not start: $(cat "$tmp/unitsim.err")"

# The callers: five business hours (30 s), then the check of every ticket.
"$build/tools/dispatch-callgen" --config "$topology" --clock "$(clock)" --rate 1500 --flat \
  --duration 5h --verify 60 --progress-fd 3 --progress-every 200 \
  3>"$tmp/callgen.progress" >"$tmp/callgen.out" 2>"$tmp/callgen.err" &
callgen_pid=$!

acked() { tail -n 1 "$tmp/callgen.progress" 2>/dev/null | grep -o ' acked=[0-9]*' | cut -d= -f2; }
ready_lines() { grep -cx ready "$state/supervisor/logs/$1.out" 2>/dev/null || true; }

# Kills worker with SIGKILL once `after` tickets are acknowledged; waits
# until supervisord has started it again.
kill_and_wait() {
  local worker=$1 after=$2 old new before
  wait_for 60 '[ "$(acked)" -ge '"$after"' ] 2>/dev/null' || fail "fewer than $after tickets acknowledged"
  old=$(ctl pid "$worker")
  before=$(ready_lines "$worker")
  [ "$old" -gt 0 ] 2>/dev/null || fail "no pid for $worker"
  kill -KILL "$old"
  echo "killed $worker (pid $old) with SIGKILL after $(acked) acknowledged tickets"
  wait_for 60 '[ "$(ready_lines '"$worker"')" -gt '"$before"' ]' || fail "$worker was not started again"
  new=$(ctl pid "$worker")
  [ "$new" -gt 0 ] && [ "$new" != "$old" ] || fail "$worker: pid $new after the kill of $old"
  wait_for 30 '[[ "$(ctl status '"$worker"' || true)" == *RUNNING* ]]' || fail "$worker is not RUNNING again"
  echo "supervisord restarted $worker: pid $new, ready again"
}
kill_and_wait router-nanguan 300
kill_and_wait intake-1 "$(( $(acked) + 300 ))"

status=0
wait "$callgen_pid" || status=$?
callgen_pid=""
cat "$tmp/callgen.out"
[ "$status" = 0 ] || fail "dispatch-callgen exited with $status: $(cat "$tmp/callgen.err")"
line=$(grep '^verify ' "$tmp/callgen.out") || fail "no verify line"
value() { grep -o " $1=[0-9]*" <<< "$line" | cut -d= -f2; }
[ "$(value acknowledged)" -gt 600 ] || fail "too few tickets acknowledged: $line"
[ "$(value lost)" = 0 ] && [ "$(value unacknowledged)" = 0 ] || fail "tickets lost: $line"
[ "$(value routed)" = "$(value registered)" ] || fail "registered and routed differ: $line"

# A worker that dies within a second of every start, five starts in a row:
# supervisord backs off (1 s, 2 s, ...) and tries again, never FATAL.
crash_loop() {
  local worker=$1 times=$2 pid old before i
  before=$(ready_lines "$worker")
  old=$(ctl pid "$worker")
  [ "$old" -gt 0 ] 2>/dev/null || fail "no pid for $worker"
  kill -KILL "$old"
  for i in $(seq 1 "$times"); do
    wait_for 60 'pid=$(ctl pid '"$worker"'); [ "$pid" -gt 0 ] 2>/dev/null && [ "$pid" != "$old" ]' ||
      fail "$worker was not started again after failed start $((i - 1)): $(ctl status "$worker" || true)"
    kill -KILL "$pid"
    old=$pid
  done
  echo "killed $worker at $times starts in a row"
  wait_for 90 '[[ "$(ctl status '"$worker"' || true)" == *RUNNING* ]]' ||
    fail "$worker is not RUNNING after $times failed starts: $(ctl status "$worker" || true)"
  wait_for 30 '[ "$(ready_lines '"$worker"')" -gt '"$before"' ]' || fail "$worker is not ready again"
  echo "supervisord kept trying: $worker is running and ready again"
}
crash_loop router-chaoyang 5

kill -TERM "$unitsim_pid"
wait "$unitsim_pid" || fail "dispatch-unitsim exited with $?"
unitsim_pid=""
cat "$tmp/unitsim.out"

"$src/scripts/run" stop --state "$state"
left=$(pgrep -f "$tmp" || true)
[ -z "$left" ] || fail "still running: $(ps -o pid=,args= -p "$(echo $left | tr ' ' ,)")"
echo "ok: no ticket lost across two SIGKILLs; nothing left running"
failed=0
