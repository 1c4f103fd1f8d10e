#!/usr/bin/env bash
# Run by secretfs-activate.service at boot and whenever a switch or rollback changes the manifest,
# the links or the units: activates the manifest, restarts or reloads the services whose secrets
# changed, and keeps the `path` links in step with the configuration.
#
# Settings come from the environment, set by the NixOS module:
#   SECRETFS          the secretfs binary
#   MANIFEST          the manifest in the Nix store
#   STATE_DIR         the manifest's state_dir
#   AUDIT_LOG_DIR     the folder of the manifest's audit_log, if it has one
#   UNITS             JSON: { "<secret>": { "restart": [units], "reload": [units] } }
#   LINKS             the links this configuration wants, one "path<TAB>target" per line
#   LINKS_RECORD      where the links made last time are recorded
#   SYSTEMCTL         the systemctl to restart and reload services with (default: systemctl)
set -euo pipefail

: "${SECRETFS:?}" "${MANIFEST:?}" "${STATE_DIR:?}" "${UNITS:?}" "${LINKS:?}" "${LINKS_RECORD:?}"
: "${SYSTEMCTL:=systemctl}"

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

# `activate` returns once the running daemon serves the new generation, so the services are
# restarted strictly after their new secret is readable. `--no-block`: services ordered after
# this unit would otherwise wait for it while it waits for them. `try-`: a service that is not
# running is left stopped; at boot none is running yet, and the manifest is already active.
activate_and_restart() {
  install -d -m 0700 "$STATE_DIR"
  # activate refuses an audit_log whose folder is missing; the daemon's unit makes it only when
  # it starts, and a switch that adds or moves the log does not restart the daemon.
  if [[ -n ${AUDIT_LOG_DIR:-} ]]; then
    mkdir -p -m 0700 "$AUDIT_LOG_DIR"
  fi
  local result restart reload
  result=$("$SECRETFS" activate --manifest "$MANIFEST" --json)
  echo "secretfs: generation $(jq -r .generation <<<"$result")," \
    "changed: $(jq -r '.changed | if length == 0 then "nothing" else join(", ") end' <<<"$result")"

  mapfile -t restart < <(units_to restart "$result")
  mapfile -t reload < <(units_to reload "$result")
  if ((${#restart[@]} > 0)); then
    echo "secretfs: restarting ${restart[*]}"
    "$SYSTEMCTL" --no-block try-restart -- "${restart[@]}" || status=1
  fi
  if ((${#reload[@]} > 0)); then
    echo "secretfs: reloading ${reload[*]}"
    "$SYSTEMCTL" --no-block try-reload-or-restart -- "${reload[@]}" || status=1
  fi
}

activate_and_restart

remove_old_links
make_links
record_links
exit "$status"
