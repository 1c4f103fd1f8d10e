#!/usr/bin/env bash
# Checks the Nix side of secretfs with Nix alone, no nixpkgs and no network:
#   1. every .nix file parses (nix-instantiate --parse);
#   2. nixos/manifest.nix, which needs only builtins, passes tests/nix/manifest-test.nix;
#   3. nixos/switch.sh keeps links and restarts the services of changed secrets as it should;
#   4. the manifest the module writes for a sample configuration (secrets and templates) passes
#      `secretfs check`, and the module and `secretfs check` agree on which secret names are
#      refused;
#   5. with NIXPKGS_LIB set to a nixpkgs `lib` folder, the whole module evaluates, docs/nixos.md
#      names every option, and nixos/package.nix and flake.nix evaluate with stand-ins for
#      nixpkgs (the tests the build runs, the outputs' shape);
#   6. with NIXPKGS set to a nixpkgs checkout, the module evaluates inside real NixOS systems
#      (tests/nix/nixos-eval.nix: unit files, activation order, assertions, the VM test's
#      machine, the flake's outputs), and the VM machine's system and the flake's package
#      instantiate (nothing is built).
#
# Environment: SECRETFS_BINARY (default build/src/cli/secretfs), NIXPKGS_LIB and NIXPKGS
# (optional; NIXPKGS alone also sets NIXPKGS_LIB to its lib folder).
# Exits 77 ("SKIP nix: ...") when nix-instantiate is missing; parts whose tools are missing say
# "SKIP nix: ..." and the rest still runs.
set -euo pipefail

if ! command -v nix-instantiate >/dev/null 2>&1; then
  echo "SKIP nix: nix-instantiate not found (Debian package nix-bin)"
  exit 77
fi
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

pass() { echo "ok   nix: $*"; }
fail() {
  echo "FAIL nix: $*"
  failures=$((failures + 1))
}
skip() { echo "SKIP nix: $*"; }

# Evaluation only: --readonly-mode keeps the store untouched, and a throwaway store root means
# neither root nor a Nix daemon is needed.
export NIX_REMOTE="local?root=$work/nix" XDG_CACHE_HOME="$work/cache"
nix_eval() { nix-instantiate --readonly-mode --eval --strict --json "$@"; }
# A field of the JSON object on standard input: strings as they are, the rest as Python prints it.
json_field() {
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]], end="")' "$1"
}

check_parse() {
  local file count=0
  while IFS= read -r -d '' file; do
    count=$((count + 1))
    if ! nix-instantiate --readonly-mode --parse "$file" >/dev/null 2>"$work/parse.log"; then
      fail "$file does not parse: $(cat "$work/parse.log")"
    fi
  done < <(find . -name '*.nix' -not -path './.git/*' -not -path './build*' -print0 | sort -z)
  pass "$count .nix files parse"
}

check_manifest_nix() {
  local result
  result=$(nix_eval tests/nix/manifest-test.nix)
  if [[ $result == "[]" ]]; then
    pass "nixos/manifest.nix: every case of tests/nix/manifest-test.nix"
  else
    fail "nixos/manifest.nix: failed cases (got vs want): $result"
  fi
}

# ---- 3. nixos/switch.sh --------------------------------------------------------------------

run_switch() {
  env SECRETFS="$work/fake-secretfs" MANIFEST=/dev/null STATE_DIR="$work/switch-state" \
    UNITS="$work/units.json" LINKS="$1" LINKS_RECORD="$work/record/links" \
    SYSTEMCTL="$work/fake-systemctl" "${@:2}" bash nixos/switch.sh
}

# Stand-ins for `secretfs activate --json` (it reports the secrets named in $CHANGED, a JSON
# list) and for systemctl (it records its arguments, one call a line).
make_switch_fakes() {
  cat >"$work/fake-secretfs" <<'FAKE'
#!/bin/sh
echo "{\"generation\":7,\"created\":true,\"served\":true,\"changed\":${CHANGED:-[]},\"pruned\":[]}"
FAKE
  cat >"$work/fake-systemctl" <<FAKE
#!/bin/sh
echo "\$*" >>"$work/systemctl.log"
FAKE
  chmod +x "$work/fake-secretfs" "$work/fake-systemctl"
}

check_links() {
  local wanted=$work/links-wanted none=$work/links-none target=$work/target
  printf 'secret\n' >"$target"
  printf '%s\t%s\n' "$work/a/b/link" "$target" >"$wanted"
  printf '\n' >"$none"
  echo '{}' >"$work/units.json"

  run_switch "$wanted" >/dev/null
  if [[ $(readlink "$work/a/b/link") != "$target" ]]; then
    fail "switch.sh did not make the link $work/a/b/link"
    return
  fi
  run_switch "$none" >/dev/null
  if [[ -e $work/a/b/link || -L $work/a/b/link ]]; then
    fail "switch.sh left a link the configuration no longer wants"
    return
  fi
  # A file that is not a link is never replaced.
  printf 'mine\n' >"$work/a/b/link"
  if run_switch "$wanted" >/dev/null 2>&1 || [[ $(cat "$work/a/b/link") != mine ]]; then
    fail "switch.sh replaced a file that is not a link, or did not report it"
    return
  fi
  pass "switch.sh makes, removes and refuses links as it should"
}

check_restarts() {
  cat >"$work/units.json" <<'UNITS'
{"a":{"restart":["x.service","y.service"],"reload":["z.service"]},
 "b":{"restart":["never.service"],"reload":[]}}
UNITS
  rm -f "$work/systemctl.log"
  run_switch "$work/links-none" CHANGED='["a","gone"]' >/dev/null
  local calls want
  calls=$(cat "$work/systemctl.log" 2>/dev/null || true)
  want="--no-block try-restart -- x.service y.service"
  want+=$'\n'"--no-block try-reload-or-restart -- z.service"
  if [[ $calls == "$want" ]]; then
    pass "switch.sh restarts and reloads exactly the units of changed secrets"
  else
    fail "switch.sh called systemctl with [$calls], want [$want]"
  fi

  rm -f "$work/systemctl.log"
  run_switch "$work/links-none" >/dev/null
  if [[ -e $work/systemctl.log ]]; then
    fail "switch.sh restarted units although no secret changed: $(cat "$work/systemctl.log")"
  else
    pass "switch.sh restarts nothing when no secret changed (as at boot)"
  fi
}

# switch.sh runs `secretfs activate` and reads its answer with jq.
check_switch() {
  if ! command -v jq >/dev/null 2>&1; then
    skip "nixos/switch.sh (jq not found)"
    return
  fi
  make_switch_fakes
  check_links
  check_restarts
}

# ---- 4. the generated manifest against `secretfs check` -------------------------------------

make_age_files() {
  umask 077
  age-keygen -o "$work/key.txt" 2>/dev/null
  local recipient
  recipient=$(age-keygen -y "$work/key.txt")
  printf 'one' | age -r "$recipient" -o "$work/one.age"
  printf 'two' | age -r "$recipient" -a -o "$work/two.age"
  printf 'token = {{ api token | base64 }}\n' >"$work/app.tmpl"
}

check_sample_manifest() {
  local binary=$1 sample=$work/sample.json
  nix_eval tests/nix/sample.nix --argstr dir "$work" >"$sample"
  json_field manifest <"$sample" >"$work/manifest.toml"
  chmod 600 "$work/manifest.toml"
  if [[ $(json_field problems <"$sample") != "[]" ]]; then
    fail "the sample configuration has problems: $(json_field problems <"$sample")"
  fi
  if "$binary" check --manifest "$work/manifest.toml" >"$work/check.log" 2>&1; then
    pass "the sample manifest passes secretfs check ($(tail -n 1 "$work/check.log"))"
  else
    fail "secretfs check refuses the sample manifest: $(cat "$work/check.log")"
  fi
}

# `name_case count`, or `name_case FIELD INDEX` of sample.json's nameCases (names as JSON).
name_case() {
  python3 - "$work/sample.json" "$@" <<'EOF'
import json, sys
cases = json.load(open(sys.argv[1]))["nameCases"]
if sys.argv[2] == "count":
    print(len(cases))
else:
    value = cases[int(sys.argv[3])][sys.argv[2]]
    sys.stdout.write(json.dumps(value)[:40] if sys.argv[2] == "name" else str(value))
EOF
}

check_name_verdicts() {
  local binary=$1 count i name refused
  count=$(name_case count)
  for ((i = 0; i < count; i++)); do
    name_case manifest "$i" >"$work/name.toml"
    chmod 600 "$work/name.toml"
    name=$(name_case name "$i")
    refused=$(name_case refused "$i")
    if "$binary" check --manifest "$work/name.toml" >/dev/null 2>&1; then
      [[ $refused == False ]] || fail "name $name: the module refuses it, secretfs check accepts it"
    else
      [[ $refused == True ]] || fail "name $name: the module accepts it, secretfs check refuses it"
    fi
  done
  pass "the module and secretfs check agree on $count secret names"
}

check_with_binary() {
  local binary=${SECRETFS_BINARY:-build/src/cli/secretfs}
  if [[ ! -x $binary ]]; then
    skip "secretfs check of the generated manifest (no binary at $binary; set SECRETFS_BINARY)"
    return
  fi
  if ! command -v age >/dev/null 2>&1 || ! command -v age-keygen >/dev/null 2>&1; then
    skip "secretfs check of the generated manifest (age or age-keygen not found)"
    return
  fi
  make_age_files
  check_sample_manifest "$binary"
  check_name_verdicts "$binary"
}

# ---- 5. the whole module against nixpkgs' lib -----------------------------------------------

check_module() {
  if [[ -z ${NIXPKGS_LIB:-} ]]; then
    skip "evaluation of nixos/module.nix against nixpkgs lib" \
      "(set NIXPKGS_LIB to a nixpkgs lib folder)"
    return
  fi
  local result=$work/module.json option
  nix_eval tests/nix/module-eval.nix --arg libPath "$(realpath "$NIXPKGS_LIB")" >"$result"
  if [[ $(json_field failures <"$result") == "[]" ]]; then
    pass "nixos/module.nix evaluates against $NIXPKGS_LIB; every case of module-eval.nix"
  else
    fail "nixos/module.nix: failed cases: $(python3 -m json.tool <"$result")"
  fi
  local missing=0
  while IFS= read -r option; do
    if ! grep -qF "\`${option#services.secretfs.}\`" docs/nixos.md; then
      fail "docs/nixos.md does not describe $option"
      missing=1
    fi
  done < <(json_field options <"$result" | python3 -c 'import ast, sys; print(*ast.literal_eval(sys.stdin.read()), sep="\n")')
  ((missing)) || pass "docs/nixos.md names every option"
}

# ---- 6. real NixOS systems from a nixpkgs checkout ------------------------------------------

# nixpkgs refuses to evaluate with a Nix older than it supports (2.18 since nixos-25.11, in
# lib/minfeatures.nix; nixos-25.05 and older name 2.3.17 in lib/minver.nix and take Debian's
# 2.8): say so plainly rather than show the error it throws.
nixpkgs_accepts_this_nix() {
  local nixpkgs=$1 missing
  if [[ -f $nixpkgs/lib/minfeatures.nix ]]; then
    missing=$(nix_eval --expr \
      "map (feature: feature.description) (import $nixpkgs/lib/minfeatures.nix).missing")
  elif [[ -f $nixpkgs/lib/minver.nix ]]; then
    missing=$(nix_eval --expr "let v = import $nixpkgs/lib/minver.nix; in
      if builtins.compareVersions builtins.nixVersion v < 0 then [ \"Nix \${v}\" ] else [ ]")
  else
    return 0
  fi
  if [[ $missing != "[]" ]]; then
    fail "$NIXPKGS does not evaluate with Nix $(nix-instantiate --version | awk '{print $NF}')," \
      "it needs $missing (nixos-25.05 and older take Nix 2.8)"
    return 1
  fi
}

check_nixos() {
  if [[ -z ${NIXPKGS:-} ]]; then
    skip "evaluation in real NixOS systems and of the VM test's machine" \
      "(set NIXPKGS to a nixpkgs checkout)"
    return
  fi
  local nixpkgs result=$work/nixos.json drvs
  nixpkgs=$(realpath "$NIXPKGS")
  nixpkgs_accepts_this_nix "$nixpkgs" || return 0

  if ! nix_eval tests/nix/nixos-eval.nix --arg nixpkgs "$nixpkgs" -A failures \
    >"$result" 2>"$work/nixos.log"; then
    fail "tests/nix/nixos-eval.nix does not evaluate with $NIXPKGS: $(tail -n 20 "$work/nixos.log")"
    return
  fi
  if [[ $(cat "$result") == "[]" ]]; then
    pass "NixOS from $NIXPKGS: units, activation order, assertions, VM machine, flake outputs"
  else
    fail "NixOS from $NIXPKGS: failed cases: $(python3 -m json.tool <"$result")"
  fi

  # Instantiating writes the .drv files into the throwaway store, which checks that every
  # package the package expression and the module name exists in that nixpkgs.
  if drvs=$(nix-instantiate tests/nix/nixos-eval.nix --arg nixpkgs "$nixpkgs" \
    -A toplevel -A package 2>"$work/instantiate.log"); then
    pass "the VM machine's system and the flake's package instantiate: ${drvs//$'\n'/ }"
  else
    fail "instantiating with $NIXPKGS failed: $(tail -n 20 "$work/instantiate.log")"
  fi
}

if [[ -n ${NIXPKGS:-} && -z ${NIXPKGS_LIB:-} ]]; then
  NIXPKGS_LIB=$NIXPKGS/lib
fi

check_parse
check_manifest_nix
check_switch
check_with_binary
check_module
check_nixos

if ((failures > 0)); then
  echo "nix: $failures failed"
  exit 1
fi
