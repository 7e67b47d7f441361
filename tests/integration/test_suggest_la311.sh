#!/usr/bin/env bash
# rules suggest on the Los Angeles 311 sample (../shared/data/la311): learned
# from the first 60 % of the requests by time, scored on the rest against a
# category-only table learned from the same requests; the learned rules must
# send at least 85 % to the unit that handled the request and beat the table
# by 50 points. Prints both figures.
#
#   test_suggest_la311.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail
src=$(cd "${1:?usage: test_suggest_la311.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
build=$(cd "${2:?usage: test_suggest_la311.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
la=${LA311_DIR:-$src/../shared/data/la311}
if [ ! -f "$la/service_requests.csv" ]; then
  echo "no LA 311 sample at $la: skipped"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-suggest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 "$src/tools/la311_history.py" "$la" "$src/deploy/data" > "$tmp/history.csv"
TZ=America/Los_Angeles "$build/tools/dispatchctl" rules suggest --history "$tmp/history.csv" \
  --evaluate 60% | tee "$tmp/figures"
learned=$(sed -n 's/^learned rules .* = \([0-9.]*\) %.*/\1/p' "$tmp/figures")
table=$(sed -n 's/^category-only table .* = \([0-9.]*\) %.*/\1/p' "$tmp/figures")
[ -n "$learned" ] && [ -n "$table" ] || { echo "FAIL: no figures"; exit 1; }
awk -v l="$learned" -v t="$table" 'BEGIN { exit !(l >= 85 && l - t >= 50) }' ||
  { echo "FAIL: learned $learned %, category-only $table %"; exit 1; }
