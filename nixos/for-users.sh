#!/usr/bin/env bash
# Decrypts the neededForUsers secrets into a root-only in-memory folder during activation, before
# users are created, so that `users.users.<name>.hashedPasswordFile` can point at them. The
# daemon cannot serve these: it resolves owners and starts later than account creation.
#
# Settings come from the environment, set by the NixOS module:
#   SECRETFS     the secretfs binary
#   SECRETS      one "name<TAB>age file<TAB>mode" per line
#   IDENTITIES   identity files, one per line
#   TARGET_DIR   the folder to fill (mounted as ramfs when it is not a mount yet)
set -euo pipefail

: "${SECRETFS:?}" "${SECRETS:?}" "${IDENTITIES:?}" "${TARGET_DIR:?}"

# ramfs never swaps, so a decrypted password hash never reaches a disk.
mount_ramfs() {
  if ! mountpoint -q "$TARGET_DIR"; then
    mkdir -p "$TARGET_DIR"
    mount -t ramfs -o nodev,nosuid,noexec,mode=0700 none "$TARGET_DIR"
  fi
  chown 0:0 "$TARGET_DIR"
  chmod 0700 "$TARGET_DIR"
}

# Identity files that are missing are skipped, as the daemon skips them; none at all is an error.
identity_flags=()
while IFS= read -r identity; do
  if [[ -n $identity && -e $identity ]]; then
    identity_flags+=(-i "$identity")
  fi
done <"$IDENTITIES"
if ((${#identity_flags[@]} == 0)); then
  echo "secretfs: no identity file exists (looked for: $(paste -sd ' ' "$IDENTITIES"))" >&2
  exit 1
fi

mount_ramfs
umask 0077
staging=$(mktemp -d "$TARGET_DIR/.staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT

# Everything is decrypted before anything is replaced: one bad file leaves the previous secrets.
while IFS=$'\t' read -r name file mode; do
  [[ -n $name ]] || continue
  mkdir -p "$(dirname "$staging/$name")"
  if ! "$SECRETFS" decrypt "${identity_flags[@]}" -o "$staging/$name" "$file"; then
    echo "secretfs: secret \`$name\` ($file) could not be decrypted; keeping the previous ones" >&2
    exit 1
  fi
  chmod "$mode" "$staging/$name"
done <"$SECRETS"

find "$TARGET_DIR" -mindepth 1 -maxdepth 1 ! -path "$staging" -exec rm -rf {} +
find "$staging" -mindepth 1 -maxdepth 1 -exec mv -t "$TARGET_DIR" {} +
