#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang, AddressSanitizer and UBSan, then runs
# each for SECONDS (default 60) from its seeds (tests/fuzz/seeds/<target>), the age test vectors
# for the targets that read age files (skipped by name when absent), and the corpus it grew in
# earlier runs. Stops at the first crash and says where the crashing input and its minimized
# form are, and how to keep it as a regression test.
#
# Usage: scripts/fuzz.sh [SECONDS [BUILD_DIR [TARGET...]]]
#   BUILD_DIR defaults to build-fuzz/ in the repository; TARGET defaults to every target.
# SECRETFS_TESTDATA points at the test data folder (default: ../shared/testdata beside the
# repository).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
build=${2:-build-fuzz}
shift $(($# < 2 ? $# : 2))
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(header armor stream bech32 openssh_key manifest template item)
fi

# Longer than any sane input needs: a slower one is reported as a hang.
readonly input_timeout=10
readonly minimize_seconds=30
testdata=${SECRETFS_TESTDATA:-../shared/testdata}

configure() {
  scripts/install-deps.sh
  if [[ ! -f $build/build.ninja ]]; then
    echo "fuzz: configuring $build/ with clang" >&2
    # Every library the targets link is instrumented for coverage (fuzzer-no-link); only the
    # targets themselves link libFuzzer's main.
    CC=clang CXX=clang++ meson setup "$build" -Dwerror=true -Dfuzz=true \
      -Db_sanitize=address,undefined -Db_lundef=false \
      "-Dcpp_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" >/dev/null
  fi
  local names=()
  for target in "${targets[@]}"; do
    names+=("tests/fuzz/fuzz_$target")
  done
  if ! log=$(meson compile -C "$build" "${names[@]}" 2>&1); then
    echo "$log" >&2
    exit 1
  fi
}

# The bodies of the age test vectors, without their text preamble. The zlib-compressed ones
# are large payloads that would only slow every run, so they are left out.
extract_vectors() {
  local into=$1
  rm -rf "$into"
  mkdir -p "$into"
  if [[ ! -d $testdata/age ]]; then
    echo "SKIP fuzz vectors: $testdata/age is absent (set SECRETFS_TESTDATA)"
    return
  fi
  python3 - "$testdata/age" "$into" <<'EOF'
import pathlib, sys
source, into = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for vector in sorted(source.iterdir()):
    preamble, _, body = vector.read_bytes().partition(b"\n\n")
    if vector.suffix not in (".tsv", ".md") and b"compressed:" not in preamble:
        (into / vector.name).write_bytes(body)
EOF
}

# Minimizes a crashing input and tells how to keep it.
report_crash() {
  local target=$1 log=$2
  local input
  input=$(grep -o "Test unit written to .*" "$log" | tail -1 | sed 's/Test unit written to //')
  tail -n 40 "$log" >&2
  if [[ -z $input ]]; then
    echo "fuzz: $target failed without saving an input; log: $log" >&2
    return
  fi
  "$build/tests/fuzz/fuzz_$target" -minimize_crash=1 -max_total_time="$minimize_seconds" \
    -exact_artifact_path="$input.min" "$input" >>"$log" 2>&1 || true
  echo "fuzz: $target crashed; input: $input" >&2
  if [[ -f $input.min ]]; then
    echo "fuzz: minimized: $input.min" >&2
    input=$input.min
  fi
  echo "fuzz: keep it as a regression test: cp $input tests/fuzz/regressions/$target/" >&2
}

run_target() {
  local target=$1
  local corpus=$build/fuzz-corpus/$target artifacts=$build/fuzz-artifacts/$target/
  local log=$build/fuzz-logs/$target.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  local sources=("$corpus" "tests/fuzz/seeds/$target")
  if [[ $target == header || $target == armor ]]; then
    sources+=("$build/fuzz-vectors")
  fi
  # New inputs go to the first folder, the corpus; the seeds and vectors are only read.
  if ! "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout="$input_timeout" \
    -artifact_prefix="$artifacts" "${sources[@]}" >"$log" 2>&1; then
    report_crash "$target" "$log"
    return 1
  fi
  echo "fuzz: $target: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -1)," \
    "$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
}

configure
extract_vectors "$build/fuzz-vectors"
for target in "${targets[@]}"; do
  run_target "$target"
done
