#!/usr/bin/env bash
# Configures and builds secretfs in build/ (warnings are errors). Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

if [[ ! -f build/build.ninja ]]; then
  echo "secretfs: configuring and building in build/ (a few minutes the first time)" >&2
  meson setup build -Dwerror=true >/dev/null
fi
if ! log=$(meson compile -C build 2>&1); then
  echo "$log" >&2
  exit 1
fi
echo "$PWD/build/src/cli/secretfs"
