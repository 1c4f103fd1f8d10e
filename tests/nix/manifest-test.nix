# Tests of nixos/manifest.nix with builtins only. Evaluates to the list of failures (empty when
# every case passes): `nix-instantiate --eval --strict --json tests/nix/manifest-test.nix`.
let
  derive = import ../../nixos/manifest.nix;

  # Characters Nix string literals cannot spell.
  char = code: builtins.fromJSON ''"\u${code}"'';

  base = {
    mountPoint = "/run/secrets";
    stateDir = "/var/lib/secretfs";
    keepGenerations = 10;
    identityPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
    secrets = { };
  };
  with' = secrets: base // { inherit secrets; };

  sample = with' {
    "db/password" = {
      file = "/srv/db.age";
      owner = "postgres";
      group = 70;
      mode = "0440";
      restartUnits = [ "postgresql" ];
      reloadUnits = [ "nginx.service" ];
    };
    api = {
      file = "/srv/api.age";
      path = "/etc/api/token";
    };
    root-password = {
      file = "/srv/root.age";
      neededForUsers = true;
    };
  };

  withTemplates = sample // {
    templates = {
      "app/env" = {
        content = "DB={{ db/password | chomp }}\n";
        owner = "app";
        mode = "0440";
        restartUnits = [ "app" ];
        path = "/etc/app/env";
      };
      conf = {
        file = "/srv/conf.tmpl";
        group = 7;
        reloadUnits = [ "nginx.service" ];
      };
    };
  };

  opPath = "/nix/store/00000000000000000000000000000000-1password-cli/bin/op";

  # A secret read from 1Password, one served from its age file that `secretfs sync` fills from
  # 1Password, and a template inserting the latter.
  withOnePassword = base // {
    onepassword = {
      tokenFile = "/etc/secretfs/op-token";
      op = opPath;
      refresh = "6h";
      timeout = "30s";
      retry = "1m";
    };
    secrets = {
      "db/password" = {
        source = "op://Production/Postgres/password";
        owner = "postgres";
        restartUnits = [ "postgresql" ];
      };
      "api/key" = {
        file = "/srv/api.age";
        source = "op://Production/API/deploy-key?ssh-format=openssh";
        reloadUnits = [
          "nginx.service"
          "app"
        ];
      };
    };
    templates."app/env" = {
      content = "KEY={{ api/key }}\n";
      restartUnits = [ "app" ];
    };
  };

  # Each case: the value computed and the value wanted.
  cases = {
    tomlWithOnePassword = {
      got = derive.toml withOnePassword;
      want = ''
        # Written by the secretfs NixOS module from services.secretfs.
        mount_point = "/run/secrets"
        state_dir = "/var/lib/secretfs"
        keep_generations = 10
        identities = ["/etc/ssh/ssh_host_ed25519_key"]

        [onepassword]
        token_file = "/etc/secretfs/op-token"
        op = "${opPath}"
        refresh = "6h"
        timeout = "30s"
        retry = "1m"

        [secrets."api/key"]
        file = "/srv/api.age"
        source = "op://Production/API/deploy-key?ssh-format=openssh"
        owner = "root"
        mode = "0400"
        reload_units = ["nginx.service", "app.service"]

        [secrets."db/password"]
        source = "op://Production/Postgres/password"
        owner = "postgres"
        mode = "0400"
        restart_units = ["postgresql.service"]

        [templates."app/env"]
        content = "KEY={{ api/key }}\n"
        owner = "root"
        mode = "0400"
        restart_units = ["app.service"]
      '';
    };

    onePasswordHasNoProblems = {
      got = derive.problems withOnePassword;
      want = [ ];
    };

    # The switch restarts from the units JSON exactly what the daemon restarts after a refresh.
    unitsWithOnePassword = {
      got = derive.unitsBySecret withOnePassword;
      want = {
        "api/key" = {
          restart = [ ];
          reload = [
            "nginx.service"
            "app.service"
          ];
        };
        "app/env" = {
          restart = [ "app.service" ];
          reload = [ ];
        };
        "db/password" = {
          restart = [ "postgresql.service" ];
          reload = [ ];
        };
      };
    };

    # The durations left out take secretfs's defaults, which the module's options repeat.
    tomlOnePasswordDefaults = {
      got = derive.toml (base // { onepassword.tokenFile = "/etc/secretfs/op-token"; });
      want = ''
        # Written by the secretfs NixOS module from services.secretfs.
        mount_point = "/run/secrets"
        state_dir = "/var/lib/secretfs"
        keep_generations = 10
        identities = ["/etc/ssh/ssh_host_ed25519_key"]

        [onepassword]
        token_file = "/etc/secretfs/op-token"
        op = "op"
        refresh = "1h"
        timeout = "30s"
        retry = "1m"
      '';
    };

    # With `file` the daemon never reads 1Password: no token, no table, and `op` (whose package
    # is unfree) is never looked at.
    tomlSourceWithFileNeedsNoToken =
      let
        settings = with' {
          api = {
            file = "/srv/api.age";
            source = "op://Production/API/credential";
          };
        };
        withUnusedOp = settings // {
          onepassword.op = throw "op is read without a token file";
        };
      in
      {
        got = {
          toml = derive.toml withUnusedOp;
          problems = derive.problems withUnusedOp;
        };
        want = {
          toml = ''
            # Written by the secretfs NixOS module from services.secretfs.
            mount_point = "/run/secrets"
            state_dir = "/var/lib/secretfs"
            keep_generations = 10
            identities = ["/etc/ssh/ssh_host_ed25519_key"]

            [secrets."api"]
            file = "/srv/api.age"
            source = "op://Production/API/credential"
            owner = "root"
            mode = "0400"
          '';
          problems = [ ];
        };
      };

    problemsOfOnePasswordSecrets = {
      got = derive.problems (with' {
        nothing = { };
        notReference = {
          file = "/a";
          source = "https://example.com/secret";
        };
        forUsers = {
          source = "op://Private/alice/password";
          neededForUsers = true;
        };
        forUsersWithFile = {
          file = "/u";
          source = "op://Private/bob/password";
          neededForUsers = true;
        };
        fetched.source = "op://Production/Postgres/password";
        synced = {
          file = "/s";
          source = "op://Production/Postgres/password";
        };
      });
      want = [
        "services.secretfs.secrets.\"fetched\": `source` without `file` is read from 1Password by secretfs.service, which needs services.secretfs.onepassword.tokenFile"
        "services.secretfs.secrets.\"forUsers\": neededForUsers secrets cannot have a `source`: they are decrypted during activation, before users are created and before the network and secretfs.service are up; give an age `file` (`secretfs sync REFERENCE FILE` writes one from 1Password)"
        "services.secretfs.secrets.\"forUsersWithFile\": neededForUsers secrets cannot have a `source`: they are decrypted during activation, before users are created and before the network and secretfs.service are up; give an age `file` (`secretfs sync REFERENCE FILE` writes one from 1Password)"
        "services.secretfs.secrets.\"notReference\": source `https://example.com/secret` is not a 1Password reference: op://<vault>/<item>[/<section>]/<field>"
        "services.secretfs.secrets.\"nothing\": neither `file` nor `source` is set (an age file to serve, or an op:// reference to read)"
      ];
    };

    problemsOfOnePasswordSettings = {
      got =
        map
          (
            onepassword:
            derive.problems (
              base
              // {
                inherit onepassword;
              }
            )
          )
          [
            { tokenFile = "etc/op-token"; }
            { tokenFile = "${builtins.storeDir}/00000000000000000000000000000000-op-token"; }
            {
              refresh = "1 h";
              timeout = "30";
              retry = "1.5m";
            }
            {
              refresh = "1d";
              timeout = "500ms";
              retry = "10s";
            }
          ];
      want = [
        [ "services.secretfs.onepassword.tokenFile `etc/op-token` is not an absolute path" ]
        [
          ("services.secretfs.onepassword.tokenFile"
            + " `${builtins.storeDir}/00000000000000000000000000000000-op-token` is in the Nix"
            + " store, which every user can read; keep the token in a root-only file outside it"
            + " (install -m 600 -o root)")
        ]
        [
          "services.secretfs.onepassword.refresh `1 h` is not a duration: an integer followed by ms, s, m, h or d"
          "services.secretfs.onepassword.timeout `30` is not a duration: an integer followed by ms, s, m, h or d"
          "services.secretfs.onepassword.retry `1.5m` is not a duration: an integer followed by ms, s, m, h or d"
        ]
        [ ]
      ];
    };

    tomlOfSample = {
      got = derive.toml sample;
      want = ''
        # Written by the secretfs NixOS module from services.secretfs.
        mount_point = "/run/secrets"
        state_dir = "/var/lib/secretfs"
        keep_generations = 10
        identities = ["/etc/ssh/ssh_host_ed25519_key"]

        [secrets."api"]
        file = "/srv/api.age"
        owner = "root"
        mode = "0400"

        [secrets."db/password"]
        file = "/srv/db.age"
        owner = "postgres"
        group = 70
        mode = "0440"
        restart_units = ["postgresql.service"]
        reload_units = ["nginx.service"]
      '';
    };

    tomlOptionalKeys = {
      got = derive.toml (
        sample
        // {
          auditLog = "/var/log/secretfs/audit.jsonl";
          maxSecretSize = "64M";
          secrets = { };
        }
      );
      want = ''
        # Written by the secretfs NixOS module from services.secretfs.
        mount_point = "/run/secrets"
        state_dir = "/var/lib/secretfs"
        keep_generations = 10
        audit_log = "/var/log/secretfs/audit.jsonl"
        max_secret_size = "64M"
        identities = ["/etc/ssh/ssh_host_ed25519_key"]
      '';
    };

    tomlQuotesStrings = {
      got = derive.toml (with' {
        "q\"uote\\d" = {
          file = "/srv/a b${char "007f"}.age";
        };
      });
      want = ''
        # Written by the secretfs NixOS module from services.secretfs.
        mount_point = "/run/secrets"
        state_dir = "/var/lib/secretfs"
        keep_generations = 10
        identities = ["/etc/ssh/ssh_host_ed25519_key"]

        [secrets."q\"uote\\d"]
        file = "/srv/a b\u007f.age"
        owner = "root"
        mode = "0400"
      '';
    };

    tomlWithTemplates = {
      got = derive.toml (withTemplates // { secrets = { }; });
      want = ''
        # Written by the secretfs NixOS module from services.secretfs.
        mount_point = "/run/secrets"
        state_dir = "/var/lib/secretfs"
        keep_generations = 10
        identities = ["/etc/ssh/ssh_host_ed25519_key"]

        [templates."app/env"]
        content = "DB={{ db/password | chomp }}\n"
        owner = "app"
        mode = "0440"
        restart_units = ["app.service"]

        [templates."conf"]
        file = "/srv/conf.tmpl"
        owner = "root"
        group = 7
        mode = "0400"
        reload_units = ["nginx.service"]
      '';
    };

    templatesHaveNoProblems = {
      got = derive.problems withTemplates;
      want = [ ];
    };

    unitsWithTemplates = {
      got = derive.unitsBySecret withTemplates;
      want = {
        api = {
          restart = [ ];
          reload = [ ];
        };
        "app/env" = {
          restart = [ "app.service" ];
          reload = [ ];
        };
        conf = {
          restart = [ ];
          reload = [ "nginx.service" ];
        };
        "db/password" = {
          restart = [ "postgresql.service" ];
          reload = [ "nginx.service" ];
        };
      };
    };

    consumerUnitsWithTemplates = {
      got = derive.consumerUnits withTemplates;
      want = [
        "app.service"
        "nginx.service"
        "postgresql.service"
      ];
    };

    linksWithTemplates = {
      got = derive.linksText withTemplates;
      want = "/etc/api/token\t/run/secrets/api\n/etc/app/env\t/run/secrets/app/env\n";
    };

    problemsOfBadTemplates = {
      got = derive.problems (
        base
        // {
          secrets = {
            api.file = "/a";
            x.file = "/x";
          };
          templates = {
            both = {
              content = "a";
              file = "/b";
            };
            neither = { };
            api = {
              content = "same name";
              mode = "0600";
            };
            "x/y".content = "under a secret";
            linked = {
              content = "c";
              path = "/etc/shared";
              restartUnits = [ "web.socket" ];
            };
            "../up" = {
              content = "d";
              path = "/etc/shared";
            };
          };
        }
      );
      want = [
        "services.secretfs.templates.\"../up\": name has a `..` segment; secretfs would refuse it"
        "services.secretfs.templates.\"api\": `api` is also a secret; a name serves one file"
        "services.secretfs.templates.\"api\": mode `0600` grants more than read (write, execute, setuid, setgid and sticky are refused)"
        "services.secretfs.templates.\"both\": `content` and `file` are both set; a template takes its text from one of them"
        "services.secretfs.templates.\"linked\": unit `web.socket` is not a service (restartUnits and reloadUnits name services)"
        "services.secretfs.templates.\"neither\": neither `content` nor `file` is set (the template's text)"
        "services.secretfs.templates: `x` and `x/y` conflict: `x` would be both a file and a directory"
        "services.secretfs.templates: more than one secret or template has path `/etc/shared`"
      ];
    };

    # neededForUsers secrets are not served by the mount: the daemon would say the placeholder
    # names no secret, so evaluation says why. Escaped placeholders and `file` templates are not
    # looked at (`secretfs check` sees those).
    templateInsertsForUsersSecret = {
      got = derive.problems (
        base
        // {
          secrets = {
            userpw = {
              file = "/srv/pw.age";
              neededForUsers = true;
            };
            db.file = "/srv/db.age";
          };
          templates = {
            app.content = "a={{ userpw | chomp }}\nb={{userpw}} c=\\{{ db }} d={{ db }}\n";
            escaped.content = "\\{{ userpw }}";
            fromFile.file = "/srv/app.tmpl";
          };
        }
      );
      want = [
        "services.secretfs.templates.\"app\": a placeholder inserts `userpw`, a neededForUsers secret; those are decrypted before users exist and are not served by the mount, so no template can insert them"
      ];
    };

    # A template may not take a neededForUsers secret's name either, and until evaluation stops
    # on that, both keep their link.
    templateNamedLikeForUsersSecret = {
      got =
        let
          settings = base // {
            secrets.pw = {
              file = "/srv/pw.age";
              neededForUsers = true;
              path = "/etc/pw";
            };
            templates.pw = {
              content = "x";
              path = "/etc/pw-template";
              restartUnits = [ "app" ];
            };
          };
        in
        {
          problems = derive.problems settings;
          links = derive.linksText settings;
          units = derive.unitsBySecret settings;
        };
      want = {
        problems = [
          "services.secretfs.templates.\"pw\": `pw` is also a secret; a name serves one file"
        ];
        links = "/etc/pw\t/run/secrets-for-users/pw\n/etc/pw-template\t/run/secrets/pw\n";
        units.pw = {
          restart = [ "app.service" ];
          reload = [ ];
        };
      };
    };

    # Were both kept in one attribute set, the template's units would hide the secret's.
    unitsOfSecretAndTemplateOfOneName = {
      got = derive.unitsBySecret (
        base
        // {
          secrets.same = {
            file = "/a";
            restartUnits = [ "one" ];
          };
          templates.same = {
            content = "b";
            reloadUnits = [ "two" ];
          };
        }
      );
      want.same = {
        restart = [ "one.service" ];
        reload = [ "two.service" ];
      };
    };

    sampleHasNoProblems = {
      got = derive.problems sample;
      want = [ ];
    };

    unitsOfSample = {
      got = derive.unitsBySecret sample;
      want = {
        api = {
          restart = [ ];
          reload = [ ];
        };
        "db/password" = {
          restart = [ "postgresql.service" ];
          reload = [ "nginx.service" ];
        };
      };
    };

    consumerUnitsOfSample = {
      got = derive.consumerUnits sample;
      want = [
        "nginx.service"
        "postgresql.service"
      ];
    };

    linksOfSample = {
      got = derive.linksText sample;
      want = "/etc/api/token\t/run/secrets/api\n";
    };

    linkOnlyWhenPathDiffers = {
      got = derive.links (with' {
        a = {
          file = "/a";
          path = "/run/secrets/a";
        };
      });
      want = [ ];
    };

    forUsersOfSample = {
      got = derive.forUsersText sample;
      want = "root-password\t/srv/root.age\t0400\n";
    };

    forUsersPath = {
      got = derive.servedPath sample "root-password" {
        neededForUsers = true;
      };
      want = "/run/secrets-for-users/root-password";
    };

    goodNames = {
      got = map derive.nameProblem [
        "a"
        "db/password"
        "a.b/c..d/.e"
        "é/ü"
        "price/${char "20ac"}${char "202f"}"
        "x${builtins.substring 0 254 (builtins.concatStringsSep "" (builtins.genList (_: "y") 254))}"
      ];
      want = [
        null
        null
        null
        null
        null
        null
      ];
    };

    badNames = {
      got = map derive.nameProblem [
        ""
        "/abs"
        "dir/"
        "a//b"
        "a/./b"
        "../up"
        "tab${char "0009"}"
        "del${char "007f"}"
        "c1${char "0085"}"
        "rlo${char "202e"}gpj.exe"
        "isolate/${char "2066"}x"
        (builtins.concatStringsSep "" (builtins.genList (_: "y") 256))
      ];
      want = [
        "name is empty"
        "name is absolute (starts with `/`)"
        "name ends with `/`"
        "name has an empty segment (`//`)"
        "name has a `.` segment"
        "name has a `..` segment"
        "name has a control character"
        "name has a control character"
        "name has a control character"
        "name has a bidirectional control character"
        "name has a bidirectional control character"
        "name has a segment of 256 bytes, longer than 255"
      ];
    };

    modes = {
      got = map derive.modeProblem [
        "0400"
        "400"
        "0440"
        "0444"
        "0040"
        "0600"
        "0500"
        "4400"
        "1444"
        "40"
        "04000"
        "0408"
      ];
      want = [
        null
        null
        null
        null
        null
        "mode `0600` grants more than read (write, execute, setuid, setgid and sticky are refused)"
        "mode `0500` grants more than read (write, execute, setuid, setgid and sticky are refused)"
        "mode `4400` grants more than read (write, execute, setuid, setgid and sticky are refused)"
        "mode `1444` grants more than read (write, execute, setuid, setgid and sticky are refused)"
        "mode `40` is not 3 or 4 octal digits"
        "mode `04000` is not 3 or 4 octal digits"
        "mode `0408` is not 3 or 4 octal digits"
      ];
    };

    problemsOfABadConfiguration = {
      got = derive.problems (
        base
        // {
          identityPaths = [ ];
          keepGenerations = 1;
          stateDir = "relative";
          secrets = {
            a.file = "/a";
            "a/b" = {
              file = "/b";
              mode = "0644";
            };
            "../x" = { };
            inside = {
              file = "/c";
              path = "/run/secrets/elsewhere";
            };
            twin = {
              file = "/d";
              path = "/run/secrets/elsewhere";
            };
            sock = {
              file = "/e";
              restartUnits = [ "web.socket" ];
            };
            pw = {
              file = "/p";
              neededForUsers = true;
              owner = "alice";
              group = "users";
              restartUnits = [ "x" ];
            };
          };
        }
      );
      want = [
        "services.secretfs.secrets.\"../x\": name has a `..` segment; secretfs would refuse it"
        "services.secretfs.secrets.\"../x\": neither `file` nor `source` is set (an age file to serve, or an op:// reference to read)"
        "services.secretfs.secrets.\"a/b\": mode `0644` grants more than read (write, execute, setuid, setgid and sticky are refused)"
        "services.secretfs.secrets.\"inside\": path `/run/secrets/elsewhere` is inside the mount point /run/secrets, which is read-only"
        "services.secretfs.secrets.\"pw\": neededForUsers secrets are decrypted before users exist, so owner must be root, not `alice`"
        "services.secretfs.secrets.\"pw\": neededForUsers secrets are decrypted before groups exist, so group must be root, not `users`"
        "services.secretfs.secrets.\"pw\": neededForUsers secrets are not served by the daemon, so restartUnits and reloadUnits do not apply"
        "services.secretfs.secrets.\"sock\": unit `web.socket` is not a service (restartUnits and reloadUnits name services)"
        "services.secretfs.secrets.\"twin\": path `/run/secrets/elsewhere` is inside the mount point /run/secrets, which is read-only"
        "services.secretfs.secrets: `a` and `a/b` conflict: `a` would be both a file and a directory"
        "services.secretfs.secrets: more than one secret has path `/run/secrets/elsewhere`"
        "services.secretfs.identityPaths is empty: secretfs needs at least one identity (an age key file or an ssh ed25519 private key) to decrypt secrets"
        "services.secretfs.keepGenerations is 1, at least 2 are kept"
        "services.secretfs.stateDir `relative` is not an absolute path"
      ];
    };
  };

  failures = builtins.filter (name: cases.${name}.got != cases.${name}.want) (
    builtins.attrNames cases
  );
in
map (name: {
  case = name;
  inherit (cases.${name}) got want;
}) failures
