# Manifests the NixOS module would write, for `secretfs check` to judge (tests/nix/check.sh).
# `dir` holds key.txt, one.age and two.age, made by the script with a throwaway key, and the
# template file app.tmpl.
{ dir }:
let
  derive = import ../../nixos/manifest.nix;
  char = code: builtins.fromJSON ''"\u${code}"'';

  settingsWith = secrets: {
    mountPoint = "${dir}/mnt";
    stateDir = "${dir}/state";
    keepGenerations = 5;
    identityPaths = [ "${dir}/key.txt" ];
    inherit secrets;
  };

  sample = settingsWith {
    # Served from its age file; `source` only tells `secretfs sync` where the value comes from,
    # so no token is needed.
    "db/password" = {
      file = "${dir}/one.age";
      source = "op://Production/Postgres/password";
      owner = "root";
      group = 0;
      mode = "0440";
      restartUnits = [ "postgresql.service" ];
    };
    "api token" = {
      file = "${dir}/two.age";
      owner = 0;
      mode = "400";
      path = "${dir}/links/api";
    };
    # Not served by the daemon, so not in the manifest.
    root-password = {
      file = "${dir}/missing.age";
      neededForUsers = true;
    };
  }
  // {
    templates = {
      "app/env" = {
        content = "DATABASE_URL=postgres://app:{{ db/password | chomp }}@db/app\n";
        restartUnits = [ "app.service" ];
      };
      "app/conf" = {
        file = "${dir}/app.tmpl";
        mode = "0440";
        path = "${dir}/links/app.conf";
      };
    };
  };

  # Names whose verdict the module and `secretfs check` must agree on.
  names = [
    "plain"
    "nested/deeper/name"
    "dots.in/the..middle"
    "unicode/é"
    "/absolute"
    "trailing/"
    "double//slash"
    "dot/./segment"
    "../escape"
    "tab${char "0009"}name"
    "delete${char "007f"}"
    "c1${char "0085"}control"
    "bidi${char "202e"}override"
    "bidi/${char "2069"}isolate"
    "not-bidi${char "202f"}${char "20ac"}"
    (builtins.concatStringsSep "" (builtins.genList (_: "n") 256))
  ];
in
{
  manifest = derive.toml sample;
  problems = derive.problems sample;

  nameCases = map (name: {
    inherit name;
    refused = derive.nameProblem name != null;
    manifest = derive.toml (settingsWith { ${name}.file = "${dir}/one.age"; });
  }) names;
}
