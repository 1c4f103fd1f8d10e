#!/usr/bin/env bash
# Runs on every activation of a NixOS system with secretfs: keeps the `path` links in step with
# the configuration and, when the system is switched (not booted), activates the new manifest
# and queues the units whose secrets changed for switch-to-configuration to restart or reload.
#
# Settings come from the environment, set by the NixOS module:
#   SECRETFS          the secretfs binary
#   MANIFEST          the manifest in the Nix store
#   STATE_DIR         the manifest's state_dir
#   UNITS             JSON: { "<secret>": { "restart": [units], "reload": [units] } }
#   LINKS             the links this configuration wants, one "path<TAB>target" per line
#   LINKS_RECORD      where the links made last time are recorded
#   ACTIVATION_LISTS  where switch-to-configuration reads the units to restart and reload
#   NIXOS_ACTION      set by switch-to-configuration (switch, test); unset at boot
set -euo pipefail

: "${SECRETFS:?}" "${MANIFEST:?}" "${STATE_DIR:?}" "${UNITS:?}" "${LINKS:?}" "${LINKS_RECORD:?}"
: "${ACTIVATION_LISTS:=/run/nixos}"

status=0

# Links an earlier configuration made and this one no longer wants are removed, but only while
# they still point where they were made to point: anything else there is someone else's.
remove_old_links() {
  [[ -f $LINKS_RECORD ]] || return 0
  local path target
  while IFS=$'\t' read -r path target; do
    [[ -n $path ]] || continue
    if grep -qxF "$path"$'\t'"$target" "$LINKS"; then
      continue
    fi
    if [[ -L $path && $(readlink "$path") == "$target" ]]; then
      rm -f "$path"
      echo "secretfs: removed link $path"
    fi
  done <"$LINKS_RECORD"
}

# A link replaces an older link in one rename, so a reader never finds the path missing. A file
# or folder that is not a link is never replaced.
make_links() {
  local path target
  while IFS=$'\t' read -r path target; do
    [[ -n $path ]] || continue
    if [[ -e $path && ! -L $path ]]; then
      echo "secretfs: not linking $path to $target: it exists and is not a symbolic link" >&2
      status=1
      continue
    fi
    mkdir -p "$(dirname "$path")"
    ln -sfn "$target" "$path.secretfs-new"
    mv -Tf "$path.secretfs-new" "$path"
  done <"$LINKS"
}

record_links() {
  mkdir -p "$(dirname "$LINKS_RECORD")"
  cp "$LINKS" "$LINKS_RECORD.new"
  mv -f "$LINKS_RECORD.new" "$LINKS_RECORD"
}

# Units named by the secrets in activate's "changed" list, for one kind (restart or reload).
units_to() {
  local kind=$1 result=$2
  jq -r --argjson result "$result" --arg kind "$kind" \
    '. as $units | $result.changed[] | ($units[.] // {})[$kind] // [] | .[]' "$UNITS" | sort -u
}

# `activate` returns once the running daemon serves the new generation, so units queued here
# are restarted by switch-to-configuration strictly after their new secret is readable.
activate_and_queue() {
  install -d -m 0700 "$STATE_DIR"
  local result
  result=$("$SECRETFS" activate --manifest "$MANIFEST" --json)
  echo "secretfs: generation $(jq -r .generation <<<"$result")," \
    "changed: $(jq -r '.changed | if length == 0 then "nothing" else join(", ") end' <<<"$result")"

  mkdir -p "$ACTIVATION_LISTS"
  units_to restart "$result" | tee -a "$ACTIVATION_LISTS/activation-restart-list" |
    sed 's/^/secretfs: will restart /'
  units_to reload "$result" | tee -a "$ACTIVATION_LISTS/activation-reload-list" |
    sed 's/^/secretfs: will reload /'
}

# At boot secretfs.service activates the manifest itself when it mounts, after the file systems
# that hold the identities are mounted and the users exist; there is nothing to restart yet.
if [[ -n ${NIXOS_ACTION:-} ]]; then
  activate_and_queue
fi

remove_old_links
make_links
record_links
exit "$status"
