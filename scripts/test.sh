#!/usr/bin/env bash
# Builds secretfs and runs every test: unit tests, the age test vectors (skipped by name when
# absent), integration tests that mount for real (they need root and /dev/fuse), the Nix checks,
# and the benchmark in its quick form (bench/run --quick). With no arguments (as CI runs it) it
# then runs the whole suite again under AddressSanitizer and UBSan in build-asan/, and each
# fuzz target for a short time (scripts/fuzz.sh); docs/testing.md says more.
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

# The whole suite again, built with AddressSanitizer and UBSan. Every process the tests start
# writes its reports under build-asan/sanitizer-reports/, the daemon too, whose exit status no
# test sees, so any report at all fails the run. It is built unoptimized with line tables only,
# which compiles three times faster than the ordinary build's -O2 -g and hides no undefined
# behaviour from UBSan. -Wmaybe-uninitialized is off there because gcc's sanitizer
# instrumentation makes it report false positives inside libstdc++ (<regex>); the ordinary
# build keeps it.
sanitizer_suite() {
  local dir=build-asan
  if [[ ! -f $dir/build.ninja ]]; then
    echo "secretfs: configuring and building $dir/ (AddressSanitizer, UBSan)" >&2
    meson setup "$dir" -Dwerror=true -Db_sanitize=address,undefined -Dbuildtype=plain \
      "-Dcpp_args=-O0 -g1 -fno-sanitize-recover=all -Wno-maybe-uninitialized" >/dev/null
  fi
  if ! log=$(meson compile -C "$dir" 2>&1); then
    echo "$log" >&2
    return 1
  fi
  local reports=$PWD/$dir/sanitizer-reports
  rm -rf "$reports"
  mkdir -p "$reports"
  # Tests also run code as other users (a reader under setuid); they must be able to report.
  chmod 1777 "$reports"
  # An open secret's state is freed when the kernel releases the file; a daemon stopped while
  # readers still hold files never gets that release, so what FUSE operations allocated may
  # be left at exit. Leaks anywhere else are reported.
  printf 'leak:src/fs/operations.cpp\n' >"$dir/lsan.supp"
  local result=0
  # A smaller quarantine than the default 256 MiB still catches use after free, and keeps the
  # soak test's check that the daemon's RSS stays flat meaningful.
  ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:quarantine_size_mb=16:log_path=$reports/asan" \
    LSAN_OPTIONS="suppressions=$PWD/$dir/lsan.supp:print_suppressions=0" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan" \
    meson test -C "$dir" --print-errorlogs || result=1
  if [[ -n $(ls -A "$reports") ]]; then
    echo "secretfs: sanitizer reports in $reports:" >&2
    cat "$reports"/* >&2
    result=1
  fi
  return "$result"
}

# Each fuzz target for a short time, so that fuzzing never rots; a crash fails the run.
readonly ci_fuzz_seconds=5
sanitizers=skipped
fuzz=skipped
if [[ $# -eq 0 ]]; then
  sanitizers=passed
  if ! sanitizer_suite; then
    sanitizers=failed
    status=1
  fi
  fuzz=passed
  if ! scripts/fuzz.sh "$ci_fuzz_seconds"; then
    fuzz=failed
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
  for extra in "sanitizers:$sanitizers" "fuzz:$fuzz"; do
    case ${extra#*:} in
      passed) passed=$((passed + 1)) ;;
      failed) failed=$((failed + 1)) ;;
      skipped) echo "SKIP ${extra%%:*}: runs only with no test names given" ;;
    esac
  done
  echo "tests: $passed passed, $failed failed, $skipped skipped"
fi
exit "$status"
