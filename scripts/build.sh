#!/usr/bin/env bash
# Configures and builds secretfs in build/ (warnings are errors). Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

if [[ ! -f build/build.ninja ]]; then
  meson setup build -Dwerror=true >/dev/null
fi
meson compile -C build >/dev/null
echo "$PWD/build/src/cli/secretfs"
