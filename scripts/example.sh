#!/usr/bin/env bash
# Mounts the bundled example (examples/manifest.toml, encrypted to a throwaway key), shows it
# as an admin and as services see it, and unmounts it again. Run as root on Debian 12:
#
#   scripts/example.sh [--keep]
#
# --keep leaves the mount in place (unmount it with: fusermount3 -u /run/secretfs-example).
set -euo pipefail
cd "$(dirname "$0")/.."

keep=no
[[ ${1:-} == --keep ]] && keep=yes

if [[ $(id -u) -ne 0 ]]; then
  echo "scripts/example.sh: run me as root: mounting with allow_other and reading as other" \
       "users needs it" >&2
  exit 1
fi

secretfs=$(scripts/build.sh)
mount_point=/run/secretfs-example

# Identity files must be root's and private, as ssh demands of its keys; a fresh clone's files
# are world-readable, so the example runs from a private copy.
work=$(mktemp -d /run/secretfs-example-manifest.XXXXXX)
cleanup() {
  if [[ $keep == no ]] && mountpoint -q "$mount_point"; then
    fusermount3 -u "$mount_point"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
cp examples/manifest.toml examples/*.age "$work/"
install -m 0600 -o root -g root examples/example-key.txt "$work/"

show() {
  printf '\n$ %s\n' "$*"
  "$@"
}

if mountpoint -q "$mount_point"; then
  fusermount3 -u "$mount_point"
fi

show "$secretfs" check --manifest "$work/manifest.toml"
show "$secretfs" mount --manifest "$work/manifest.toml" --state-dir "$work/state"
show ls -lR "$mount_point"
show setpriv --reuid=daemon --regid=daemon --init-groups cat "$mount_point/db/password"
show setpriv --reuid=daemon --regid=daemon --init-groups cat "$mount_point/api/token"
show setpriv --reuid=nobody --regid=nogroup --clear-groups cat "$mount_point/motd"
printf '\n# another user is refused, like on any file, and the refusal is audited:\n'
if show setpriv --reuid=nobody --regid=nogroup --clear-groups cat "$mount_point/db/password"; then
  echo "scripts/example.sh: nobody could read db/password: that is a bug" >&2
  exit 1
fi
show mount -t fuse.secretfs

if [[ $keep == yes ]]; then
  # The daemon reads the age files at every open, so their private copy stays too.
  trap - EXIT
  printf '\nThe example stays mounted at %s; unmount it with: fusermount3 -u %s\n' \
    "$mount_point" "$mount_point"
else
  printf '\nUnmounting %s.\n' "$mount_point"
fi
