#!/usr/bin/env bash
# The long soak: reader processes read secrets through a real mount while `secretfs activate`
# switches between two generations every second; every read must return exactly one
# generation's bytes, and the daemon's open file descriptors and resident memory must end where
# they started. Run as root (it mounts):
#
#   scripts/soak.sh [--seconds S] [--readers N] [--secrets M]     (default 60 s, 16, 1000)
#
# Prints one JSON object: reads, errors, wrong bytes, switches, and the daemon's descriptors and
# VmRSS at start and end. Exits non-zero when any check failed. It runs the integration test
# "[soak]" at this size (CI runs it small); SECRETFS_BINARY picks the binary and so the build
# folder, otherwise scripts/build.sh builds build/.
set -Eeuo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

seconds=60 readers=16 secrets=1000
usage() {
  echo "usage: scripts/soak.sh [--seconds S] [--readers N] [--secrets M]" >&2
  exit 2
}
while (($# > 0)); do
  case $1 in
    --seconds) seconds=${2:-} ;;
    --readers) readers=${2:-} ;;
    --secrets) secrets=${2:-} ;;
    *) usage ;;
  esac
  [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage
  shift 2
done

if [[ $(id -u) -ne 0 || ! -w /dev/fuse ]]; then
  echo "scripts/soak.sh: run me as root, with /dev/fuse: the soak mounts secretfs" >&2
  exit 1
fi

secretfs=${SECRETFS_BINARY:-}
if [[ -z $secretfs ]]; then
  secretfs=$(scripts/build.sh)
fi
secretfs=$(realpath "$secretfs")
build_dir=$(cd "$(dirname "$secretfs")/../.." && pwd)
if ! log=$(meson compile -C "$build_dir" tests/integration/integration_tests 2>&1); then
  echo "$log" >&2
  exit 1
fi

summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
result=passed
if ! SECRETFS_BINARY=$secretfs SECRETFS_SOAK_SECONDS=$seconds SECRETFS_SOAK_READERS=$readers \
  SECRETFS_SOAK_SECRETS=$secrets SECRETFS_SOAK_JSON=$summary \
  "$build_dir/tests/integration/integration_tests" '[soak]' >&2; then
  result=failed
fi
if [[ ! -s $summary ]]; then
  echo "scripts/soak.sh: the soak stopped before its summary; see above" >&2
  exit 1
fi
# The test's summary, with the verdict as its last field.
sed "s/}\$/, \"result\": \"$result\"}/" "$summary"
[[ $result == passed ]]
