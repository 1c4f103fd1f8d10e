#!/usr/bin/env bash
# Builds secretfs and runs every test: unit tests, the age test vectors (skipped by name when
# absent), and integration tests that mount for real (they need root and /dev/fuse).
#
# SECRETFS_TESTDATA points at the test data folder (default: ../shared/testdata beside the
# repository).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh >/dev/null

status=0
meson test -C build --print-errorlogs "$@" || status=$?

# Why tests were skipped, as each said it, then one plain closing line counted from meson's log.
log=build/meson-logs/testlog.json
if [[ -f $log ]]; then
  grep -ho 'SKIP [^"\]*' "$log" || true
  passed=$(grep -c '"result": "OK"' "$log" || true)
  failed=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR)"' "$log" || true)
  skipped=$(grep -c '"result": "SKIP"' "$log" || true)
  echo "tests: $passed passed, $failed failed, $skipped skipped"
fi
exit "$status"
