#!/usr/bin/env bash
# Builds secretfs and runs every test: unit tests, the age test vectors (skipped by name when
# absent), integration tests that mount for real (they need root and /dev/fuse), the Nix checks,
# and the benchmark in its quick form (bench/run --quick).
#
# SECRETFS_TESTDATA points at the test data folder (default: ../shared/testdata beside the
# repository).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh >/dev/null

status=0
meson test -C build --print-errorlogs "$@" || status=$?

# The benchmark in its quick form, so that it never rots; it judges no time, it only has to run.
bench=skipped
if [[ $# -eq 0 && $(id -u) -eq 0 && -w /dev/fuse ]]; then
  if bench/run --quick --json build/bench-quick.json; then
    bench=passed
  else
    bench=failed
    status=1
  fi
fi

# Why tests were skipped, as each said it, then one plain closing line counted from meson's log.
log=build/meson-logs/testlog.json
if [[ -f $log ]]; then
  grep -ho 'SKIP [^"\]*' "$log" || true
  passed=$(grep -c '"result": "OK"' "$log" || true)
  failed=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR)"' "$log" || true)
  skipped=$(grep -c '"result": "SKIP"' "$log" || true)
  case $bench in
    passed) passed=$((passed + 1)) ;;
    failed) failed=$((failed + 1)) ;;
    skipped) echo "SKIP bench: needs root and /dev/fuse, and runs only with no test names given" ;;
  esac
  echo "tests: $passed passed, $failed failed, $skipped skipped"
fi
exit "$status"
