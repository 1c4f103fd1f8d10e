#!/usr/bin/env bash
# Installs the Debian 12 packages secretfs needs to build, test and run, and only those that
# are missing: a machine that has them all is not touched and needs no network.
set -euo pipefail

packages=(
  # build
  g++ meson ninja-build pkg-config
  libfuse3-dev libsodium-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev
  nlohmann-json3-dev catch2 zlib1g-dev libsystemd-dev
  # run: fusermount3 and the kernel module helper
  fuse3
  # tests and examples: the reference age CLI, ssh-keygen, setpriv; Nix (2.8) and python3 for
  # the checks of the NixOS module
  age openssh-client util-linux nix-bin python3
  # benchmarks: a plain FUSE passthrough to compare with
  bindfs
  # fuzzing (scripts/fuzz.sh): clang and its runtimes, libFuzzer among them
  clang libclang-rt-14-dev
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg -s "$package" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "secretfs: missing Debian packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi

echo "secretfs: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
