# Evaluates nixos/module.nix inside real NixOS systems built from a nixpkgs checkout, and the
# machine of the VM test through the real NixOS test framework, for tests/nix/check.sh (when
# NIXPKGS is set). Where tests/nix/module-eval.nix declares stand-ins for the NixOS options the
# module touches, this uses NixOS itself: its option types, its unit files, its activation
# script, its assertions, and the nixpkgs packages the module and the package expression name.
#
# Evaluates to { failures = [ { case, got, want } ]; toplevel; package; }: the failed cases, the
# VM machine's system and the flake's package (for nix-instantiate; nothing is built).
{
  nixpkgs,
  system ? "x86_64-linux",
}:
let
  lib = import (nixpkgs + "/lib");
  nixosLib = import (nixpkgs + "/nixos/lib") { };

  # A machine that evaluates without hardware: no boot loader, one root file system.
  machine = {
    boot.loader.grub.enable = false;
    fileSystems."/" = {
      device = "/dev/vda";
      fsType = "ext4";
    };
    system.stateVersion = lib.trivial.release;
  };

  evaluate =
    configuration:
    import (nixpkgs + "/nixos/lib/eval-config.nix") {
      inherit system;
      modules = [
        ../../nixos/module.nix
        machine
        configuration
      ];
    };

  secrets = {
    "db/password" = {
      file = "/srv/db.age";
      owner = "postgres";
      restartUnits = [ "postgresql.service" ];
    };
    api = {
      file = "/srv/api.age";
      path = "/etc/api/token";
      reloadUnits = [ "nginx" ];
    };
    alice-password = {
      file = "/srv/alice.age";
      neededForUsers = true;
    };
  };

  # Users from the `users` activation snippet (update-users-groups), NixOS's default.
  good = evaluate (
    { config, ... }:
    {
      services.openssh.enable = true;
      services.secretfs = {
        enable = true;
        inherit secrets;
      };
      users.users.alice = {
        isNormalUser = true;
        hashedPasswordFile = config.services.secretfs.secrets.alice-password.path;
      };
    }
  );
  # Users from a unit instead; userborn demands an empty `users` snippet.
  userborn = evaluate {
    services.openssh.enable = true;
    services.userborn.enable = true;
    services.secretfs = {
      enable = true;
      inherit secrets;
    };
  };
  # One of each mistake the module refuses.
  bad = evaluate {
    services.secretfs = {
      enable = true;
      secrets = {
        nofile = { };
        "../x".file = "/srv/x.age";
        pw = {
          file = "/srv/pw.age";
          neededForUsers = true;
          owner = "alice";
        };
      };
    };
  };

  # A secret read from 1Password: the CLI's package is unfree, and allowed here by name as a
  # user would.
  onepassword = evaluate {
    nixpkgs.config.allowUnfreePredicate = pkg: lib.getName pkg == "1password-cli";
    services.secretfs = {
      enable = true;
      identityPaths = [ "/etc/secretfs/key.txt" ];
      onepassword.tokenFile = "/etc/secretfs/op-token";
      secrets."db/password" = {
        source = "op://Production/Postgres/password";
        restartUnits = [ "postgresql" ];
      };
    };
  };

  inherit (good) config pkgs;
  built = config.services.secretfs.build;
  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  # A unit file as { "Section.Key" = [ values, one per line ]; }.
  parseUnit =
    text:
    let
      step =
        state: line:
        let
          section = builtins.match "[[](.+)[]]" line;
          entry = builtins.match "([^=]+)=(.*)" line;
          key = "${state.section}.${builtins.elemAt entry 0}";
        in
        if section != null then
          state // { section = builtins.head section; }
        else if entry == null then
          state
        else
          state
          // {
            values = state.values // {
              ${key} = (state.values.${key} or [ ]) ++ [ (builtins.elemAt entry 1) ];
            };
          };
    in
    (builtins.foldl' step {
      section = "";
      values = { };
    } (lib.splitString "\n" text)).values;
  unitOf = config: name: parseUnit config.systemd.units.${name}.text;
  pick = keys: values: lib.genAttrs keys (key: values.${key} or null);

  # The snippets of the activation script, in the order they run.
  snippetOrder =
    config: wanted:
    let
      script = config.system.activationScripts.script;
      headed = lib.tail (lib.splitString "#### Activation script snippet " script);
      names = map (part: lib.head (lib.splitString ":" part)) headed;
    in
    lib.filter (name: lib.elem name wanted) names;

  # Options that give a unit its own mount namespace, where the mount would never reach the host
  # (the list of tests/nix/module-eval.nix).
  namespaceKeys = map (option: "Service.${option}") [
    "PrivateTmp"
    "PrivateMounts"
    "PrivateDevices"
    "PrivateNetwork"
    "NetworkNamespacePath"
    "PrivateIPC"
    "IPCNamespacePath"
    "PrivatePIDs"
    "ProtectSystem"
    "ProtectHome"
    "ProtectKernelTunables"
    "ProtectKernelModules"
    "ProtectKernelLogs"
    "ProtectControlGroups"
    "ProtectProc"
    "ProcSubset"
    "ReadOnlyPaths"
    "ReadWritePaths"
    "InaccessiblePaths"
    "ExecPaths"
    "NoExecPaths"
    "TemporaryFileSystem"
    "BindPaths"
    "BindReadOnlyPaths"
    "MountFlags"
    "MountImages"
    "ExtensionImages"
    "ExtensionDirectories"
    "RootDirectory"
    "RootImage"
    "MountAPIVFS"
    "DynamicUser"
    "LogNamespace"
  ];

  daemon = unitOf config "secretfs.service";
  activate = unitOf config "secretfs-activate.service";
  forUsersUnit = unitOf userborn.config "secretfs-for-users.service";

  # The VM test as runNixOSTest evaluates it: test instrumentation, qemu-vm and all.
  vmTest = nixosLib.evalTest {
    imports = [ ../nixos/secretfs.nix ];
    hostPkgs = pkgs;
    node.pkgs = pkgs;
  };
  node = vmTest.config.nodes.machine;
  changed = node.specialisation.changed.configuration;

  # flake.nix's outputs, with this checkout as the `nixpkgs` input.
  flake =
    let
      outputs = (import ../../flake.nix).outputs {
        self = outputs // {
          outPath = toString ../..;
        };
        nixpkgs = {
          inherit lib;
          legacyPackages.${system} = pkgs;
        };
      };
    in
    outputs;

  cases = {
    daemonUnit = {
      got = pick [
        "Unit.Description"
        "Unit.DefaultDependencies"
        "Unit.After"
        "Unit.Before"
        "Unit.Conflicts"
        "Unit.RequiresMountsFor"
        "Service.Type"
        "Service.ExecStartPre"
        "Service.ExecStart"
        "Service.ExecReload"
        "Service.Restart"
        "Service.RestartSec"
        "Service.X-RestartIfChanged"
        "Service.NoNewPrivileges"
        "Service.CapabilityBoundingSet"
        "Service.DevicePolicy"
        "Service.DeviceAllow"
        "Service.LimitCORE"
        "Service.UMask"
        "Install.WantedBy"
      ] daemon;
      want = {
        "Unit.Description" = [ "secretfs: age-encrypted secrets at /run/secrets" ];
        "Unit.DefaultDependencies" = [ "false" ];
        "Unit.After" = [
          "local-fs.target systemd-modules-load.service systemd-sysusers.service userborn.service"
        ];
        "Unit.Before" = [ "sysinit.target shutdown.target nginx.service postgresql.service" ];
        "Unit.Conflicts" = [ "shutdown.target" ];
        "Unit.RequiresMountsFor" = [
          "/etc/ssh/ssh_host_ed25519_key"
          "/var/lib/secretfs"
        ];
        "Service.Type" = [ "notify" ];
        "Service.ExecStartPre" = [
          "-${pkgs.fuse3}/bin/fusermount3 -uz /run/secrets"
          "${pkgs.coreutils}/bin/mkdir -p -m 0755 /run /var /var/lib"
          "${pkgs.coreutils}/bin/mkdir -p -m 0700 /var/lib/secretfs"
        ];
        "Service.ExecStart" = [
          ("${config.services.secretfs.package}/bin/secretfs mount --foreground"
            + " --manifest ${built.manifest}")
        ];
        "Service.ExecReload" = [ "${pkgs.coreutils}/bin/kill -HUP $MAINPID" ];
        "Service.Restart" = [ "always" ];
        "Service.RestartSec" = [ "1s" ];
        "Service.X-RestartIfChanged" = [ "false" ];
        "Service.NoNewPrivileges" = [ "true" ];
        "Service.CapabilityBoundingSet" = [
          "CAP_SYS_ADMIN"
          "CAP_IPC_LOCK"
        ];
        "Service.DevicePolicy" = [ "closed" ];
        "Service.DeviceAllow" = [ "/dev/fuse rw" ];
        "Service.LimitCORE" = [ "0" ];
        "Service.UMask" = [ "0077" ];
        "Install.WantedBy" = [ "sysinit.target nginx.service postgresql.service" ];
      };
    };
    daemonHasNoMountNamespace = {
      got = lib.filter (key: daemon ? ${key}) namespaceKeys;
      want = [ ];
    };
    # The services of secrets want the daemon through links made by NixOS, and are not defined
    # by the module: a unit NixOS does not have stays undefined.
    consumersWantTheDaemon = {
      got = {
        inherit (config.systemd.units."secretfs.service") wantedBy;
        defined = lib.filter (name: config.systemd.units ? ${name}) [
          "nginx.service"
          "postgresql.service"
        ];
      };
      want = {
        wantedBy = [
          "sysinit.target"
          "nginx.service"
          "postgresql.service"
        ];
        defined = [ ];
      };
    };
    activateUnit = {
      got = pick [
        "Unit.DefaultDependencies"
        "Unit.Requires"
        "Unit.After"
        "Unit.Before"
        "Unit.Conflicts"
        "Service.Type"
        "Service.RemainAfterExit"
        "Service.ExecStart"
        "Service.X-StopIfChanged"
        "Install.WantedBy"
      ] activate
      // {
        triggers = map (lib.hasPrefix builtins.storeDir) activate."Unit.X-Restart-Triggers";
        inherit (config.systemd.services.secretfs-activate) restartTriggers;
      };
      want = {
        "Unit.DefaultDependencies" = [ "false" ];
        "Unit.Requires" = [ "secretfs.service" ];
        "Unit.After" = [ "secretfs.service systemd-sysusers.service userborn.service" ];
        "Unit.Before" = [ "sysinit.target shutdown.target nginx.service postgresql.service" ];
        "Unit.Conflicts" = [ "shutdown.target" ];
        "Service.Type" = [ "oneshot" ];
        "Service.RemainAfterExit" = [ "true" ];
        "Service.ExecStart" = [ "${built.switch}" ];
        "Service.X-StopIfChanged" = [ "false" ];
        "Install.WantedBy" = [ "sysinit.target" ];
        triggers = [ true ];
        restartTriggers = [
          built.manifest
          built.units
          built.links
        ];
      };
    };
    linksAreWhatManifestNixWrites = {
      got = built.links.text;
      want = "/etc/api/token\t/run/secrets/api\n";
    };
    # NixOS puts the snippets in order: the passwords exist before users are created.
    forUsersBeforeUsers = {
      got = {
        order = snippetOrder config [
          "specialfs"
          "secretfs-for-users"
          "users"
        ];
        inherit (config.system.activationScripts.secretfs-for-users) deps text;
        password = config.users.users.alice.hashedPasswordFile;
      };
      want = {
        order = [
          "specialfs"
          "secretfs-for-users"
          "users"
        ];
        deps = [ "specialfs" ];
        text = "${built.forUsersScript}";
        password = "/run/secrets-for-users/alice-password";
      };
    };
    goodSystemHasNoFailedAssertions = {
      got = failedAssertions config;
      want = [ ];
    };
    userbornDecryptsInAUnit = {
      got = pick [
        "Unit.DefaultDependencies"
        "Unit.Before"
        "Unit.Conflicts"
        "Unit.RequiresMountsFor"
        "Service.Type"
        "Service.ExecStart"
      ] forUsersUnit
      // {
        inherit (userborn.config.systemd.units."secretfs-for-users.service") requiredBy;
        snippet = userborn.config.system.activationScripts ? secretfs-for-users;
        usersSnippet = userborn.config.system.activationScripts.users;
        userbornTriggers = lib.elem userborn.config.services.secretfs.build.forUsers (
          userborn.config.systemd.services.userborn.restartTriggers
        );
        failed = failedAssertions userborn.config;
      };
      want = {
        "Unit.DefaultDependencies" = [ "false" ];
        "Unit.Before" = [
          ("systemd-sysusers.service userborn.service sysinit.target sysinit-reactivation.target"
            + " shutdown.target")
        ];
        "Unit.Conflicts" = [ "shutdown.target" ];
        "Unit.RequiresMountsFor" = [ "/etc/ssh/ssh_host_ed25519_key" ];
        "Service.Type" = [ "oneshot" ];
        "Service.ExecStart" = [ "${userborn.config.services.secretfs.build.forUsersScript}" ];
        requiredBy = [ "sysinit-reactivation.target" ];
        snippet = false;
        usersSnippet = "";
        userbornTriggers = true;
        failed = [ ];
      };
    };
    badConfigurationIsRefused = {
      got = lib.filter (lib.hasPrefix "services.secretfs") (failedAssertions bad.config);
      want = [
        "services.secretfs.secrets.\"../x\": name has a `..` segment; secretfs would refuse it"
        "services.secretfs.secrets.\"nofile\": neither `file` nor `source` is set (an age file to serve, or an op:// reference to read)"
        "services.secretfs.secrets.\"pw\": neededForUsers secrets are decrypted before users exist, so owner must be root, not `alice`"
        "services.secretfs.identityPaths is empty: secretfs needs at least one identity (an age key file or an ssh ed25519 private key) to decrypt secrets"
      ];
    };
    # The daemon waits for the token file's mount, never for the network; the manifest names the
    # CLI of this nixpkgs by its store path.
    onePasswordDaemon =
      let
        unit = unitOf onepassword.config "secretfs.service";
        cli = onepassword.pkgs._1password-cli or onepassword.pkgs._1password;
      in
      {
        got =
          pick [
            "Unit.After"
            "Unit.Wants"
            "Unit.Requires"
            "Unit.RequiresMountsFor"
          ] unit
          // {
            op = lib.hasInfix "\nop = \"${cli}/bin/op\"\n" (
              onepassword.config.services.secretfs.build.manifest.text
            );
            failed = failedAssertions onepassword.config;
          };
        want = {
          "Unit.After" = [
            "local-fs.target systemd-modules-load.service systemd-sysusers.service userborn.service"
          ];
          "Unit.Wants" = null;
          "Unit.Requires" = null;
          "Unit.RequiresMountsFor" = [
            "/etc/secretfs/key.txt"
            "/etc/secretfs/op-token"
            "/var/lib/secretfs"
          ];
          op = true;
          failed = [ ];
        };
      };
    vmMachine = {
      got = {
        before = (unitOf node "secretfs.service")."Unit.Before";
        readers = map (name: (unitOf node name)."Service.User") [
          "token-reader.service"
          "other-reader.service"
        ];
        order = snippetOrder node [
          "specialfs"
          "secretfs-test-key"
          "secretfs-for-users"
          "users"
        ];
        password = node.users.users.alice.hashedPasswordFile;
        switchable = node.system.switch.enable;
        links = node.services.secretfs.build.links.text;
        failed = failedAssertions node;
      };
      want = {
        before = [ "sysinit.target shutdown.target other-reader.service token-reader.service" ];
        readers = [
          [ "reader" ]
          [ "other" ]
        ];
        order = [
          "specialfs"
          "secretfs-test-key"
          "secretfs-for-users"
          "users"
        ];
        password = "/run/secrets-for-users/alice-password";
        switchable = true;
        links = "/etc/token-reader/token\t/run/secrets/service/token\n";
        failed = [ ];
      };
    };
    # The system the test switches to: a new token, no link, and a manifest of its own.
    vmSpecialisation =
      let
        before = node.services.secretfs;
        after = changed.services.secretfs;
      in
      {
        got = {
          links = after.build.links.text;
          newManifest = "${after.build.manifest}" != "${before.build.manifest}";
          file = after.secrets."service/token".file;
        };
        want = {
          links = "\n";
          newManifest = true;
          file = lib.removeSuffix "one.age" before.secrets."service/token".file + "two.age";
        };
      };
    flakeOutputs = {
      got = {
        packages = lib.attrNames flake.packages.${system};
        checks = lib.attrNames flake.checks.${system};
        module = flake.nixosModules.default == { imports = [ ../../nixos/module.nix ]; };
        overlay = (pkgs.extend flake.overlays.default).secretfs.name;
        package = flake.packages.${system}.default.name;
      };
      want = {
        packages = [
          "default"
          "secretfs"
        ];
        checks = [
          "nixos"
          "package"
        ];
        module = true;
        overlay = "secretfs-0.1.0";
        package = "secretfs-0.1.0";
      };
    };
  };
in
{
  failures = lib.mapAttrsToList (case: value: {
    inherit case;
    inherit (value) got want;
  }) (lib.filterAttrs (_: value: value.got != value.want) cases);
  toplevel = node.system.build.toplevel;
  package = flake.packages.${system}.default;
}
