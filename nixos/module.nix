# NixOS module for secretfs: serves age-encrypted secrets at /run/secrets from a FUSE daemon
# that starts early at boot, and activates the matching generation on every switch or rollback.
# Secrets may also come from 1Password (`source`), which the daemon reads in the background.
# What is derived from the options (the manifest, the problems, the links, the units to restart)
# lives in ./manifest.nix, which needs only builtins so that it can be tested without nixpkgs.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types literalExpression;

  cfg = config.services.secretfs;
  derive = import ./manifest.nix;

  settings = {
    inherit (cfg)
      mountPoint
      stateDir
      keepGenerations
      identityPaths
      auditLog
      maxSecretSize
      secrets
      templates
      ;
    # `op` is read only when tokenFile is set: the package is unfree, and a host without
    # 1Password should not need to allow it.
    onepassword = {
      inherit (cfg.onepassword)
        tokenFile
        refresh
        timeout
        retry
        ;
      op = "${cfg.onepassword.package}/bin/op";
    };
  };

  # Users created by systemd units instead of the `users` activation script.
  usersFromUnits =
    (config.systemd.sysusers.enable or false) || (config.services.userborn.enable or false);

  manifestFile = pkgs.writeText "secretfs-manifest.toml" (derive.toml settings);
  unitsFile = pkgs.writeText "secretfs-units.json" (derive.unitsJson settings);
  linksFile = pkgs.writeText "secretfs-links" (derive.linksText settings);
  forUsersFile = pkgs.writeText "secretfs-for-users" (derive.forUsersText settings);
  identitiesFile = pkgs.writeText "secretfs-identities" (
    lib.concatMapStrings (path: "${toString path}\n") cfg.identityPaths
  );
  hasForUsers = derive.forUsersSecrets settings != { };

  # The links made last time, kept across reboots so that a link to a removed secret goes too.
  linksRecord = "/var/lib/secretfs-nixos/links";

  switchScript = pkgs.writeShellScript "secretfs-switch" ''
    export PATH=${
      lib.makeBinPath [
        pkgs.coreutils
        pkgs.gnugrep
        pkgs.gnused
        pkgs.jq
        config.systemd.package
      ]
    }
    export SECRETFS=${cfg.package}/bin/secretfs
    export MANIFEST=${manifestFile}
    export STATE_DIR=${lib.escapeShellArg cfg.stateDir}
    export AUDIT_LOG_DIR=${
      lib.optionalString (cfg.auditLog != null) (lib.escapeShellArg (dirOf cfg.auditLog))
    }
    export UNITS=${unitsFile}
    export LINKS=${linksFile}
    export LINKS_RECORD=${linksRecord}
    exec ${pkgs.bash}/bin/bash ${./switch.sh}
  '';

  forUsersScript = pkgs.writeShellScript "secretfs-for-users" ''
    export PATH=${
      lib.makeBinPath [
        pkgs.coreutils
        pkgs.findutils
        pkgs.util-linux
      ]
    }
    export SECRETFS=${cfg.package}/bin/secretfs
    export SECRETS=${forUsersFile}
    export IDENTITIES=${identitiesFile}
    export TARGET_DIR=${derive.forUsersDir}
    exec ${pkgs.bash}/bin/bash ${./for-users.sh}
  '';

  accountType = types.either types.str types.ints.unsigned;

  # Who may read a served file and what a change of it reloads, alike for secrets and templates;
  # `what` names the file in descriptions, `account` is the example owner.
  accessOptions =
    { what, account }:
    {
      owner = mkOption {
        type = accountType;
        default = "root";
        example = account;
        description = "User name or numeric uid that owns ${what}.";
      };
      group = mkOption {
        type = types.nullOr accountType;
        default = null;
        example = account;
        description = ''
          Group name or numeric gid of ${what}. `null` means the owner's primary group (root
          when the owner has no passwd entry).
        '';
      };
      mode = mkOption {
        type = types.str;
        default = "0400";
        example = "0440";
        description = "Permission bits, 3 or 4 octal digits; only read bits may be set.";
      };
      reloadUnits = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "nginx.service" ];
        description = "Like `restartUnits`, but the services are reloaded.";
      };
    };

  secretOptions =
    { name, config, ... }:
    {
      options = accessOptions {
        what = "the secret";
        account = "postgres";
      } // {
        file = mkOption {
          type = types.nullOr types.path;
          default = null;
          example = literalExpression "./secrets/db-password.age";
          description = ''
            The age file (binary or armored) holding the secret. A path literal is copied into
            the Nix store, which is safe: it is encrypted. Set this, `source`, or both.
          '';
        };
        source = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "op://Production/Postgres/password";
          description = ''
            A 1Password secret reference, `op://<vault>/<item>[/<section>]/<field>`, optionally
            with a query such as `?ssh-format=openssh` (one-time codes are refused). Without
            `file`, the daemon reads the value with the 1Password CLI (this needs
            `onepassword.tokenFile`), keeps it encrypted to the host's identities in the state
            directory and reads it again every `onepassword.refresh`; a change restarts
            `restartUnits` and reloads `reloadUnits`.
            With `file`, the age file is served and this only tells `secretfs sync` where the
            value comes from. Not allowed with `neededForUsers`.
          '';
        };
        path = mkOption {
          type = types.str;
          default =
            if config.neededForUsers then
              "${derive.forUsersDir}/${name}"
            else
              "${cfg.mountPoint}/${name}";
          defaultText = literalExpression ''
            if neededForUsers then "/run/secrets-for-users/<name>" else "''${mountPoint}/<name>"
          '';
          example = "/var/lib/grafana/admin-password";
          description = ''
            Where services read the secret. By default the place it is served; any other value
            is a symbolic link to it, made on activation and removed when the secret or the
            setting goes away. Refer to `config.services.secretfs.secrets.<name>.path` in other
            options.
          '';
        };
        restartUnits = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "postgresql.service" ];
          description = ''
            Services restarted when a switch changes this secret's content, owner, group or
            mode, after the new generation is served, and, for a secret read from 1Password,
            when a refresh changes its value. They are also ordered after `secretfs.service`
            and want it.
          '';
        };
        neededForUsers = mkOption {
          type = types.bool;
          default = false;
          description = ''
            Decrypt the secret during activation, before users are created, into the root-only
            in-memory folder `/run/secrets-for-users`, so that
            `users.users.<name>.hashedPasswordFile` can point at it. Owner and group must be
            root. Such a secret is not served by the daemon, and needs an age `file`: 1Password
            cannot be read that early.
          '';
        };
      };
    };

  templateOptions =
    { name, ... }:
    {
      options = accessOptions {
        what = "the rendered file";
        account = "app";
      } // {
        content = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "DATABASE_URL=postgres://app:{{ db/password | chomp }}@db/app\n";
          description = ''
            The template's text: `{{ NAME }}` inserts the secret NAME, `{{ NAME | chomp }}`
            without one trailing newline, `| base64` and `| hex` encoded, filters chained left
            to right; `\{{` is a literal `{{`. The text goes into the Nix store: it must hold
            placeholders, never secrets. Set this or `file`.
          '';
        };
        file = mkOption {
          type = types.nullOr types.path;
          default = null;
          example = literalExpression "./templates/app.env";
          description = ''
            A file holding the template's text, instead of `content`. It is copied into the
            generation, so a rollback renders it after the file is gone.
          '';
        };
        path = mkOption {
          type = types.str;
          default = "${cfg.mountPoint}/${name}";
          defaultText = literalExpression ''"''${mountPoint}/<name>"'';
          example = "/etc/app/env";
          description = ''
            Where services read the rendered file. Any other value than the default is a
            symbolic link to it, as for a secret's `path`.
          '';
        };
        restartUnits = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "app.service" ];
          description = ''
            Services restarted when a switch changes what this template renders to (its text,
            or the content of a secret it inserts) or its owner, group or mode, and when a
            refresh from 1Password changes a secret it inserts.
          '';
        };
      };
    };

  # `hostKeys` entries are free-form attribute sets: one without `type` is skipped, not an error.
  ed25519HostKeys = map (key: key.path) (
    lib.filter (key: (key.type or null) == "ed25519") config.services.openssh.hostKeys
  );

  # The folders above an absolute path, outermost first and without `/`: "/a/b/c" gives
  # [ "/a" "/a/b" ].
  parentsOf =
    path:
    let
      segments = lib.filter (segment: segment != "") (lib.splitString "/" path);
    in
    lib.genList (i: "/" + lib.concatStringsSep "/" (lib.take (i + 1) segments)) (
      lib.max 0 (lib.length segments - 1)
    );
  # What the daemon's unit creates, or has the daemon create, under its UMask=0077.
  parentFolders = lib.unique (
    parentsOf cfg.mountPoint
    ++ parentsOf cfg.stateDir
    ++ lib.optionals (cfg.auditLog != null) (parentsOf (dirOf cfg.auditLog))
  );

  # Units that consume secrets start only once the mount is live. The ordering lives in
  # secretfs.service (Before= and a .wants link) rather than in the consumers' own definitions:
  # defining `systemd.services."foo@bar"` would write a whole unit file that hides the template
  # `foo@.service`, and a misspelt name would become a unit with no ExecStart.
  consumerUnits = derive.consumerUnits settings;
in
{
  options.services.secretfs = {
    enable = lib.mkEnableOption "secretfs, a read-only FUSE file system of age-encrypted secrets";

    package = mkOption {
      type = types.package;
      default =
        pkgs.secretfs or (pkgs.callPackage ./package.nix {
          systemdLibs = pkgs.systemdLibs or pkgs.systemd;
        });
      defaultText = literalExpression "pkgs.secretfs";
      description = "The secretfs package.";
    };

    mountPoint = mkOption {
      type = types.str;
      default = "/run/secrets";
      description = "Where the secrets are mounted.";
    };

    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/secretfs";
      description = ''
        Where generations are stored (ciphertext only, root's, mode 0700). Keep it on a file
        system that survives reboots so that rollbacks work after the age files are gone.
      '';
    };

    identityPaths = mkOption {
      type = types.listOf types.path;
      default = if config.services.openssh.enable then ed25519HostKeys else [ ];
      defaultText = literalExpression ''
        if config.services.openssh.enable then
          map (key: key.path) (
            lib.filter (key: key.type == "ed25519") config.services.openssh.hostKeys
          )
        else [ ]
      '';
      example = [ "/etc/secretfs/key.txt" ];
      description = ''
        Identity files tried on every secret: age identity files or OpenSSH ed25519 private
        keys, owned by root with no access for group or others. Give them as strings: a path
        literal would copy a private key into the Nix store.
      '';
    };

    keepGenerations = mkOption {
      type = types.ints.unsigned;
      default = 10;
      description = "Generations kept after an activation (at least 2).";
    };

    auditLog = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/var/log/secretfs/audit.jsonl";
      description = ''
        Where every open of a secret is recorded, one JSON object per line (the manifest's
        `audit_log`). `systemctl reload secretfs` reopens it after a rotation. Without it the
        records go to the journal of secretfs.service.
      '';
    };

    maxSecretSize = mkOption {
      type = types.nullOr (types.either types.ints.positive types.str);
      default = null;
      example = "64M";
      description = ''
        The largest age file a secret may have, in bytes or with K, M or G (the manifest's
        `max_secret_size`); secretfs's default, 16M, when null.
      '';
    };

    onepassword = {
      tokenFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/etc/secretfs/op-token";
        description = ''
          A file holding a 1Password service account token, needed by secrets with `source`
          and no `file`. It must belong to root and give no access to group or others
          (`install -m 600 -o root`). Give it as a string outside the Nix store, which every
          user can read. It is read again on every retry, so a new token needs no restart.
        '';
      };
      package = mkOption {
        type = types.package;
        default = pkgs._1password-cli or pkgs._1password;
        defaultText = literalExpression "pkgs._1password-cli";
        description = ''
          The 1Password CLI, `op`, that the daemon runs to read values. Its licence is unfree:
          allow it, for instance with `nixpkgs.config.allowUnfreePredicate = pkg:
          lib.getName pkg == "1password-cli";`. Used only when `tokenFile` is set.
        '';
      };
      refresh = mkOption {
        type = types.str;
        default = "1h";
        example = "6h";
        description = ''
          How often values are read again from 1Password, each time up to a tenth earlier so
          that hosts spread out. A duration: an integer followed by `ms`, `s`, `m`, `h` or
          `d`. Every refresh costs requests of the service account's hourly and daily limits.
        '';
      };
      timeout = mkOption {
        type = types.str;
        default = "30s";
        description = "The longest one run of `op` may take before it is killed.";
      };
      retry = mkOption {
        type = types.str;
        default = "1m";
        description = ''
          The wait before the first retry of a failed read; it doubles on each failure, up to
          `refresh`.
        '';
      };
    };

    build = mkOption {
      type = types.attrsOf types.package;
      internal = true;
      readOnly = true;
      description = ''
        The files generated from these options (manifest, units, links, forUsers, switch and
        forUsersScript), for inspection and tests.
      '';
    };

    secrets = mkOption {
      type = types.attrsOf (types.submodule secretOptions);
      default = { };
      example = literalExpression ''
        {
          "db/password" = {
            file = ./secrets/db-password.age;
            owner = "postgres";
            restartUnits = [ "postgresql.service" ];
          };
        }
      '';
      description = ''
        The secrets, by name. A name is a path below the mount point: `db/password` is served
        as `/run/secrets/db/password`.
      '';
    };

    templates = mkOption {
      type = types.attrsOf (types.submodule templateOptions);
      default = { };
      example = literalExpression ''
        {
          "app/env" = {
            content = "DATABASE_URL=postgres://app:{{ db/password | chomp }}@db/app\n";
            owner = "app";
            restartUnits = [ "app.service" ];
          };
        }
      '';
      description = ''
        Files rendered from secrets when they are opened, by name, in the same tree as the
        secrets (a name is a secret or a template, not both). The rendered text is never stored.
      '';
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        services.secretfs.build = {
          manifest = manifestFile;
          units = unitsFile;
          links = linksFile;
          forUsers = forUsersFile;
          switch = switchScript;
          inherit forUsersScript;
        };

        assertions = map (message: {
          assertion = false;
          inherit message;
        }) (derive.problems settings);

        environment.systemPackages = [ cfg.package ];

        # /dev/fuse must exist before secretfs.service, which starts before most of sysinit.
        boot.kernelModules = [ "fuse" ];

        systemd.services.secretfs = {
          description = "secretfs: age-encrypted secrets at ${cfg.mountPoint}";
          wantedBy = [ "sysinit.target" ] ++ consumerUnits;
          before = [
            "sysinit.target"
            "shutdown.target"
          ]
          ++ consumerUnits;
          after = [
            "local-fs.target"
            "systemd-modules-load.service"
            "systemd-sysusers.service"
            "userborn.service"
          ];
          conflicts = [ "shutdown.target" ];
          # The manifest's store path changes with every secret; restarting the daemon would
          # unmount everything. A switch runs `secretfs activate` instead (see the activation
          # script), and a new package takes effect on the next reboot or a manual restart.
          restartIfChanged = false;
          # No After= (nor Wants=) on network-online.target: the mount must not wait for the
          # network, and secretfs.service comes before sysinit.target, which network-online
          # follows, so After= would be an ordering cycle. A read from 1Password that fails
          # because the network is not up yet is retried by the daemon, with backoff; values
          # already cached are served meanwhile. Wants= alone would start a wait-online service
          # at every boot for nothing. `op` is run by its absolute path in the manifest, and
          # `systemctl`, for the restarts after a refresh, is in the PATH NixOS gives units.
          unitConfig = {
            DefaultDependencies = false;
            RequiresMountsFor =
              map toString cfg.identityPaths
              ++ lib.optional (cfg.onepassword.tokenFile != null) cfg.onepassword.tokenFile
              ++ [ cfg.stateDir ];
          };
          serviceConfig = {
            Type = "notify";
            # A daemon that died leaves a mount that fails every access; detach it first.
            ExecStartPre = [
              "-${pkgs.fuse3}/bin/fusermount3 -uz ${lib.escapeShellArg cfg.mountPoint}"
            ]
            # Under UMask=0077 a missing folder above the mount point would be made 0700, and no
            # one but root could reach the secrets (nor, above the state directory, anything else
            # kept there). `-m` holds for each folder named; existing ones are left as they are.
            ++ lib.optional (
              parentFolders != [ ]
            ) "${pkgs.coreutils}/bin/mkdir -p -m 0755 ${lib.escapeShellArgs parentFolders}"
            ++ [ "${pkgs.coreutils}/bin/mkdir -p -m 0700 ${lib.escapeShellArg cfg.stateDir}" ]
            # The audit log's folder; the daemon creates the file itself, mode 0600.
            ++ lib.optional (
              cfg.auditLog != null
            ) "${pkgs.coreutils}/bin/mkdir -p -m 0700 ${lib.escapeShellArg (dirOf cfg.auditLog)}";
            ExecStart = "${cfg.package}/bin/secretfs mount --foreground --manifest ${manifestFile}";
            # SIGHUP reopens the audit log after a rotation; it never stops the daemon.
            ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
            Restart = "always";
            RestartSec = "1s";
            # No option that gives the unit its own mount namespace (PrivateTmp, ProtectSystem,
            # ProtectHome, PrivateDevices, PrivateMounts, ...): the mount would never reach the
            # host. Hardening that stays outside mount namespaces instead:
            NoNewPrivileges = true;
            # Mounting needs CAP_SYS_ADMIN; CAP_IPC_LOCK lets every plaintext buffer be locked
            # in memory however many readers are open.
            CapabilityBoundingSet = [
              "CAP_SYS_ADMIN"
              "CAP_IPC_LOCK"
            ];
            DevicePolicy = "closed";
            DeviceAllow = [ "/dev/fuse rw" ];
            LimitCORE = 0;
            LockPersonality = true;
            MemoryDenyWriteExecute = true;
            RestrictRealtime = true;
            RestrictSUIDSGID = true;
            SystemCallArchitectures = "native";
            UMask = "0077";
          };
        };

        # A switch or rollback activates the new manifest from a unit, not from an activation
        # script: restart requests from activation scripts are deprecated (NixOS 26.05) and go
        # away in 26.11 (switch-to-configuration-ng still reads them until then), and nixos-init
        # runs no activation scripts at all. The unit's file changes with the manifest, links or
        # units (X-Restart-Triggers), so switch-to-configuration restarts it after daemon-reload
        # and after users are re-created; it then restarts the services of changed secrets
        # itself. At boot it finds the manifest already active and only makes the links.
        systemd.services.secretfs-activate = {
          description = "secretfs: activate the manifest of this system";
          wantedBy = [ "sysinit.target" ];
          requires = [ "secretfs.service" ];
          after = [
            "secretfs.service"
            "systemd-sysusers.service"
            "userborn.service"
          ];
          # Before sysinit.target, like the daemon: at boot, services that read a secret through
          # its `path` link find it made (a link below /run does not survive a reboot). Services
          # restarted together with this unit by a switch wait for their new secrets.
          before = [
            "sysinit.target"
            "shutdown.target"
          ]
          ++ consumerUnits;
          conflicts = [ "shutdown.target" ];
          restartTriggers = [
            manifestFile
            unitsFile
            linksFile
          ];
          # Restarted after the new system is in place, never stopped before it.
          stopIfChanged = false;
          unitConfig.DefaultDependencies = false;
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            ExecStart = "${switchScript}";
          };
        };
      }

      (lib.mkIf (hasForUsers && !usersFromUnits) {
        system.activationScripts.secretfs-for-users = {
          deps = [ "specialfs" ];
          text = "${forUsersScript}";
        };
        system.activationScripts.users.deps = [ "secretfs-for-users" ];
      })

      # With systemd-sysusers or userborn, users are created by a unit: decrypt before it. Both
      # run before systemd-tmpfiles-setup-dev.service, which runs before local-fs-pre.target, so
      # this unit must not wait for local-fs.target (that would be an ordering cycle): only for
      # the mounts that hold the identities.
      #
      # On a switch, switch-to-configuration stops changed units before activation and starts
      # the units of sysinit-reactivation.target (which re-creates users) in one transaction,
      # before any other unit. Being part of that target, like the users unit itself, is what
      # makes a changed password file arrive before the users are re-created, not after.
      (lib.mkIf (hasForUsers && usersFromUnits) {
        systemd.services.secretfs-for-users = {
          description = "secretfs: secrets needed to create users";
          wantedBy = [ "sysinit.target" ];
          requiredBy = [ "sysinit-reactivation.target" ];
          before = [
            "systemd-sysusers.service"
            "userborn.service"
            "sysinit.target"
            "sysinit-reactivation.target"
            "shutdown.target"
          ];
          conflicts = [ "shutdown.target" ];
          restartTriggers = [
            forUsersFile
            identitiesFile
          ];
          unitConfig = {
            DefaultDependencies = false;
            RequiresMountsFor = map toString cfg.identityPaths;
          };
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            ExecStart = "${forUsersScript}";
          };
        };

        # userborn sets every password from its hashedPasswordFile each time it runs, but its
        # unit changes only when the file names do. A new password behind the same name must
        # re-run it as well, after this unit has decrypted it. (systemd-sysusers sets a password
        # only when it creates the user, so re-running it would change nothing.)
        systemd.services.userborn = lib.mkIf (config.services.userborn.enable or false) {
          restartTriggers = [ forUsersFile ];
        };
      })
    ]
  );
}
