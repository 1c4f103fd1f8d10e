# Evaluates nixos/module.nix with the real nixpkgs `lib` and stand-ins for the few NixOS options
# and packages it touches. Evaluates to { failures = [...]; options = [...]; }: the failed cases
# and every option name, for tests/nix/check.sh.
{ libPath }:
let
  lib = import libPath;
  inherit (lib) types mkOption;
  derive = import ../../nixos/manifest.nix;

  # Packages are only interpolated into scripts and unit lines; a store-like path is enough.
  fakePackage = name: {
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  # The text of a written file stays readable for the cases below.
  fakeFile = name: text: fakePackage name // { inherit text; };
  pkgs = {
    writeText = fakeFile;
    writeShellScript = fakeFile;
    secretfs = fakePackage "secretfs";
    callPackage = _: _: fakePackage "secretfs-built";
  }
  // lib.genAttrs [
    "bash"
    "coreutils"
    "findutils"
    "fuse3"
    "gnugrep"
    "gnused"
    "jq"
    "util-linux"
    "_1password-cli"
  ] fakePackage;

  # The NixOS options the module reads or sets, declared with the types NixOS gives them
  # (nixos/lib/systemd-lib.nix, systemd-unit-options.nix, activation-script.nix), without
  # freeform attributes: a misspelt option or a wrong type fails here as it would on NixOS.
  unitNameType = types.strMatching (
    "[a-zA-Z0-9@%:_.\\-]+[.]"
    + "(service|socket|device|mount|automount|swap|target|path|timer|scope|slice)"
  );
  unitPrimitive = types.oneOf [
    types.bool
    types.int
    types.str
    types.path
  ];
  unitSection = types.attrsOf (types.either unitPrimitive (types.listOf unitPrimitive));
  unitOptions = {
    options =
      lib.genAttrs
        [ "after" "before" "wants" "requires" "wantedBy" "requiredBy" "conflicts" "partOf" ]
        (
          _:
          mkOption {
            type = types.listOf unitNameType;
            default = [ ];
          }
        )
      // lib.genAttrs [ "restartTriggers" "reloadTriggers" ] (
        _:
        mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        }
      )
      // lib.genAttrs [ "restartIfChanged" "stopIfChanged" "enable" ] (
        _:
        mkOption {
          type = types.bool;
          default = true;
        }
      )
      // {
        description = mkOption {
          type = types.singleLineStr;
          default = "";
        };
        unitConfig = mkOption {
          type = unitSection;
          default = { };
        };
        serviceConfig = mkOption {
          type = unitSection;
          default = { };
        };
      };
  };
  activationSnippet = types.either types.str (
    types.submodule {
      options = {
        deps = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        # No default, as in NixOS: a snippet given only `deps` is an error.
        text = mkOption { type = types.lines; };
        supportsDryActivation = mkOption {
          type = types.bool;
          default = false;
        };
      };
    }
  );
  # The snippets NixOS itself defines that the module names (nixos/modules/config/users-groups.nix:
  # `users` is empty with systemd-sysusers or userborn; `groups` only follows it).
  nixosSnippets =
    { config, ... }:
    {
      system.activationScripts = {
        specialfs = "mount the special file systems";
        users =
          if config.systemd.sysusers.enable || config.services.userborn.enable then
            ""
          else
            {
              supportsDryActivation = true;
              text = "update-users-groups";
            };
        groups = lib.stringAfter [ "users" ] "";
      };
    };
  # The activation script as NixOS assembles it: a dependency on a missing snippet fails here.
  activationScript =
    config:
    lib.textClosureMap (x: x) (lib.mapAttrs (
      _: v: if lib.isString v then lib.noDepEntry v else v
    ) config.system.activationScripts) (lib.attrNames config.system.activationScripts);

  nixosStandIns = {
    imports = [ nixosSnippets ];
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      environment.systemPackages = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      boot.kernelModules = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      systemd.services = mkOption {
        type = types.attrsOf (types.submodule unitOptions);
        default = { };
      };
      systemd.package = mkOption {
        type = types.package;
        default = fakePackage "systemd";
      };
      systemd.sysusers.enable = mkOption {
        type = types.bool;
        default = false;
      };
      services.userborn.enable = mkOption {
        type = types.bool;
        default = false;
      };
      system.activationScripts = mkOption {
        type = types.attrsOf activationSnippet;
        default = { };
      };
      services.openssh = {
        enable = mkOption {
          type = types.bool;
          default = false;
        };
        hostKeys = mkOption {
          type = types.listOf types.attrs;
          default = [
            {
              type = "rsa";
              path = "/etc/ssh/ssh_host_rsa_key";
            }
            {
              type = "ed25519";
              path = "/etc/ssh/ssh_host_ed25519_key";
            }
          ];
        };
      };
    };
  };

  evaluateWith =
    pkgs: configuration:
    lib.evalModules {
      modules = [
        ../../nixos/module.nix
        nixosStandIns
        { _module.args.pkgs = pkgs; }
        configuration
      ];
    };
  evaluate = evaluateWith pkgs;

  goodSecrets = {
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
    root-password = {
      file = "/srv/root.age";
      neededForUsers = true;
    };
  };

  good = evaluate {
    services.openssh.enable = true;
    services.secretfs = {
      enable = true;
      secrets = goodSecrets;
    };
    systemd.services.postgresql.after = [ "network.target" ];
  };
  cfg = good.config;
  unit = cfg.systemd.services.secretfs;
  built = cfg.services.secretfs.build;
  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  withSysusers = evaluate {
    services.openssh.enable = true;
    systemd.sysusers.enable = true;
    services.secretfs = {
      enable = true;
      secrets = goodSecrets;
    };
  };

  withUserborn = evaluate {
    services.openssh.enable = true;
    services.userborn.enable = true;
    services.secretfs = {
      enable = true;
      secrets = goodSecrets;
    };
  };

  withTemplate = evaluate {
    services.secretfs = {
      enable = true;
      identityPaths = [ "/etc/secretfs/key.txt" ];
      secrets.wg.file = "/srv/wg.age";
      secrets.wg.restartUnits = [ "wg-quick@wg0" ];
    };
  };

  # Folders that may not exist yet, below ones that may not exist either.
  nested = evaluate {
    services.secretfs = {
      enable = true;
      identityPaths = [ "/etc/secretfs/key.txt" ];
      mountPoint = "/srv/app/secrets";
      stateDir = "/persist/secretfs";
      auditLog = "/var/log/secretfs/audit.jsonl";
    };
  };
  # Nothing above them but `/`.
  flat = evaluate {
    services.secretfs = {
      enable = true;
      identityPaths = [ "/etc/secretfs/key.txt" ];
      mountPoint = "/secrets";
      stateDir = "/secretfs";
    };
  };

  # A host key entry without `type` is skipped, not an evaluation error.
  untypedHostKey = evaluate {
    services.openssh.enable = true;
    services.openssh.hostKeys = [
      { path = "/etc/ssh/custom_key"; }
      {
        type = "ed25519";
        path = "/etc/ssh/ssh_host_ed25519_key";
      }
    ];
    services.secretfs.enable = true;
  };

  # Templates reach the manifest, the units to restart, the links and the ordering.
  withTemplates = evaluate {
    services.secretfs = {
      enable = true;
      identityPaths = [ "/etc/secretfs/key.txt" ];
      secrets."db/password".file = "/srv/db.age";
      templates."app/env" = {
        content = "DB={{ db/password | chomp }}\n";
        owner = "app";
        restartUnits = [ "app" ];
        path = "/etc/app/env";
      };
      templates.conf.file = "/srv/conf.tmpl";
    };
  };

  bad = evaluate {
    services.secretfs = {
      enable = true;
      secrets = {
        "/etc/shadow".file = "/srv/x.age";
        pw = {
          file = "/srv/pw.age";
          neededForUsers = true;
          owner = "alice";
        };
        nofile = { };
      };
    };
  };

  disabled = evaluate { };

  # A secret read from 1Password, one served from its age file, and a template.
  onePasswordSecrets = {
    "db/password" = {
      source = "op://Production/Postgres/password";
      owner = "postgres";
      restartUnits = [ "postgresql" ];
    };
    api = {
      file = "/srv/api.age";
      source = "op://Production/API/credential";
    };
  };
  withOnePassword = evaluate {
    services.secretfs = {
      enable = true;
      identityPaths = [ "/etc/secretfs/key.txt" ];
      onepassword = {
        tokenFile = "/persist/secretfs/op-token";
        refresh = "6h";
      };
      secrets = onePasswordSecrets;
    };
  };
  # The CLI's package is unfree: a host that reads nothing from 1Password must not evaluate it.
  unevaluatedCli = pkgs // {
    _1password-cli = throw "the 1Password CLI was evaluated";
  };
  withoutToken = evaluateWith unevaluatedCli {
    services.secretfs = {
      enable = true;
      identityPaths = [ "/etc/secretfs/key.txt" ];
      secrets.api = onePasswordSecrets.api;
    };
  };
  badOnePassword = evaluate {
    services.secretfs = {
      enable = true;
      identityPaths = [ "/etc/secretfs/key.txt" ];
      onepassword.tokenFile = "${builtins.storeDir}/00000000000000000000000000000000-op-token";
      secrets = {
        plain.source = "Production/Postgres/password";
        pw = {
          source = "op://Private/alice/password";
          neededForUsers = true;
        };
      };
    };
  };
  noToken = evaluate {
    services.secretfs = {
      enable = true;
      identityPaths = [ "/etc/secretfs/key.txt" ];
      secrets = onePasswordSecrets;
    };
  };

  # nixos/package.nix with a stdenv whose mkDerivation returns its attributes unchanged.
  package = import ../../nixos/package.nix (
    {
      inherit lib;
      stdenv.mkDerivation = attrs: attrs;
    }
    // lib.genAttrs [
      "meson"
      "ninja"
      "pkg-config"
      "fuse3"
      "libsodium"
      "tomlplusplus"
      "spdlog"
      "fmt"
      "cli11"
      "nlohmann_json"
      "catch2"
      "zlib"
      "systemdLibs"
      "age"
      "openssh"
    ] fakePackage
  );
  # flake.nix's outputs with a stand-in nixpkgs input: their shape, nothing is built.
  flake =
    let
      pkgsFor =
        system:
        pkgs
        // {
          stdenv.hostPlatform.system = system;
          mkShell = attrs: attrs;
          testers.runNixOSTest = test: test;
        }
        // lib.genAttrs [ "age" "clang-tools" ] fakePackage;
      outputs = (import ../../flake.nix).outputs {
        self = outputs;
        nixpkgs = {
          inherit lib;
          legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] pkgsFor;
        };
      };
    in
    outputs;

  # The tests tests/meson.build names literally, and the text of the Catch2 unit tests.
  mesonTests = lib.concatMap (match: if lib.isList match then match else [ ]) (
    builtins.split "test\\('([^']+)'" (builtins.readFile ../meson.build)
  );
  unitSources = map (file: builtins.readFile (../unit + "/${file}")) (
    lib.filter (lib.hasSuffix ".cpp") (lib.attrNames (builtins.readDir ../unit))
  );

  # Options that give a unit its own mount namespace, where the mount would never reach the host:
  # what systemd's exec_needs_mount_namespace() (src/core/execute.c) looks at. PrivateNetwork
  # implies one unless PrivateMounts=no; DynamicUser does with StateDirectory and the like.
  namespaceOptions = [
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

  cases = {
    goodConfigurationPassesAssertions = {
      got = failedAssertions cfg;
      want = [ ];
    };
    identityPathsDefaultToEd25519HostKeys = {
      got = [
        cfg.services.secretfs.identityPaths
        untypedHostKey.config.services.secretfs.identityPaths
      ];
      want = [
        [ "/etc/ssh/ssh_host_ed25519_key" ]
        [ "/etc/ssh/ssh_host_ed25519_key" ]
      ];
    };
    secretPathDefaults = {
      got = lib.mapAttrs (_: s: s.path) cfg.services.secretfs.secrets;
      want = {
        "db/password" = "/run/secrets/db/password";
        api = "/etc/api/token";
        root-password = "/run/secrets-for-users/root-password";
      };
    };
    manifestIsWhatManifestNixWrites = {
      got = built.manifest.text;
      want = derive.toml cfg.services.secretfs;
    };
    unitIsEarlyAndNotified = {
      got = {
        inherit (unit.serviceConfig) Type Restart LimitCORE NoNewPrivileges DeviceAllow;
        inherit (unit.unitConfig) DefaultDependencies RequiresMountsFor;
        inherit (unit) wantedBy before conflicts restartIfChanged;
        startPre = builtins.head unit.serviceConfig.ExecStartPre;
        start = unit.serviceConfig.ExecStart;
        localFs = lib.elem "local-fs.target" unit.after;
      };
      want = {
        Type = "notify";
        Restart = "always";
        LimitCORE = 0;
        NoNewPrivileges = true;
        DeviceAllow = [ "/dev/fuse rw" ];
        DefaultDependencies = false;
        RequiresMountsFor = [
          "/etc/ssh/ssh_host_ed25519_key"
          "/var/lib/secretfs"
        ];
        wantedBy = [
          "sysinit.target"
          "nginx.service"
          "postgresql.service"
        ];
        before = [
          "sysinit.target"
          "shutdown.target"
          "nginx.service"
          "postgresql.service"
        ];
        conflicts = [ "shutdown.target" ];
        restartIfChanged = false;
        startPre = "-/nix/store/00000000000000000000000000000000-fuse3/bin/fusermount3 -uz /run/secrets";
        start = "/nix/store/00000000000000000000000000000000-secretfs/bin/secretfs mount --foreground --manifest /nix/store/00000000000000000000000000000000-secretfs-manifest.toml";
        localFs = true;
      };
    };
    # The unit's UMask=0077 must not close a folder that leads to the mount point: the folders
    # above it, the state directory and the audit log's folder are made 0755 first.
    missingFoldersStayOpen =
      let
        startPre = config: config.systemd.services.secretfs.serviceConfig.ExecStartPre;
        mkdir = "/nix/store/00000000000000000000000000000000-coreutils/bin/mkdir -p -m";
        fusermount = "-/nix/store/00000000000000000000000000000000-fuse3/bin/fusermount3 -uz";
      in
      {
        got = map startPre [
          cfg
          nested.config
          flat.config
        ];
        want = [
          [
            "${fusermount} /run/secrets"
            "${mkdir} 0755 /run /var /var/lib"
            "${mkdir} 0700 /var/lib/secretfs"
          ]
          [
            "${fusermount} /srv/app/secrets"
            "${mkdir} 0755 /srv /srv/app /persist /var /var/log"
            "${mkdir} 0700 /persist/secretfs"
            "${mkdir} 0700 /var/log/secretfs"
          ]
          [
            "${fusermount} /secrets"
            "${mkdir} 0700 /secretfs"
          ]
        ];
      };
    noMountNamespace = {
      got = lib.filter (option: unit.serviceConfig ? ${option}) namespaceOptions;
      want = [ ];
    };
    # The ordering is secretfs.service's (Before= and WantedBy= above): the consumers' own
    # definitions are left alone, so a template instance or a unit NixOS does not define is
    # never turned into a unit file of its own.
    consumersLeftUntouched = {
      got = {
        nginxDefined = cfg.systemd.services ? nginx;
        postgresqlAfter = cfg.systemd.services.postgresql.after;
        templateInstanceDefined = withTemplate.config.systemd.services ? "wg-quick@wg0";
        templateInstanceWanted = lib.elem "wg-quick@wg0.service" (
          withTemplate.config.systemd.services.secretfs.wantedBy
        );
      };
      want = {
        nginxDefined = false;
        postgresqlAfter = [ "network.target" ];
        templateInstanceDefined = false;
        templateInstanceWanted = true;
      };
    };
    # Only the neededForUsers step is an activation script, and it runs before `users`.
    forUsersRunsBeforeUsers = {
      got = {
        ours = lib.filter (name: lib.hasPrefix "secretfs" name) (
          lib.attrNames cfg.system.activationScripts
        );
        forUsers = cfg.system.activationScripts.secretfs-for-users.deps;
        users = cfg.system.activationScripts.users.deps;
      };
      want = {
        ours = [ "secretfs-for-users" ];
        forUsers = [ "specialfs" ];
        users = [ "secretfs-for-users" ];
      };
    };
    # Every snippet's dependencies exist, so NixOS can put the activation script together.
    activationScriptAssembles = {
      got = map (config: builtins.isString (activationScript config)) [
        cfg
        withSysusers.config
        disabled.config
      ];
      want = [
        true
        true
        true
      ];
    };
    # switch-to-configuration restarts the unit when the manifest, links or units change; the
    # unit activates the manifest and restarts the services of changed secrets itself.
    activationIsAUnit =
      let
        activate = cfg.systemd.services.secretfs-activate;
      in
      {
        got = {
          inherit (activate)
            wantedBy
            requires
            after
            before
            restartTriggers
            restartIfChanged
            stopIfChanged
            ;
          inherit (activate.serviceConfig) Type RemainAfterExit ExecStart;
          inherit (activate.unitConfig) DefaultDependencies;
        };
        want = {
          wantedBy = [ "sysinit.target" ];
          requires = [ "secretfs.service" ];
          after = [
            "secretfs.service"
            "systemd-sysusers.service"
            "userborn.service"
          ];
          before = [
            "sysinit.target"
            "shutdown.target"
            "nginx.service"
            "postgresql.service"
          ];
          restartTriggers = [
            built.manifest
            built.units
            built.links
          ];
          restartIfChanged = true;
          stopIfChanged = false;
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${built.switch}";
          DefaultDependencies = false;
        };
      };
    writtenFiles = {
      got = map (name: built.${name}.text) [
        "units"
        "links"
        "forUsers"
      ];
      want = [
        (derive.unitsJson cfg.services.secretfs)
        "/etc/api/token\t/run/secrets/api\n"
        "root-password\t/srv/root.age\t0400\n"
      ];
    };
    # systemd-sysusers and userborn run before local-fs-pre.target (through
    # systemd-tmpfiles-setup-dev.service): waiting for local-fs.target would be a cycle.
    sysusersDecryptsInAUnit = {
      got = {
        activation = withSysusers.config.system.activationScripts ? secretfs-for-users;
        inherit (withSysusers.config.systemd.services.secretfs-for-users) before after requiredBy;
        inherit (withSysusers.config.systemd.services.secretfs-for-users.unitConfig)
          RequiresMountsFor
          ;
        type = withSysusers.config.systemd.services.secretfs-for-users.serviceConfig.Type;
      };
      want = {
        activation = false;
        before = [
          "systemd-sysusers.service"
          "userborn.service"
          "sysinit.target"
          "sysinit-reactivation.target"
          "shutdown.target"
        ];
        after = [ ];
        # A switch starts it in the same transaction as the units that re-create users.
        requiredBy = [ "sysinit-reactivation.target" ];
        RequiresMountsFor = [ "/etc/ssh/ssh_host_ed25519_key" ];
        type = "oneshot";
      };
    };
    # A switch that changes a password re-runs userborn, which reads it; systemd-sysusers sets
    # passwords only on creation and is left alone.
    userbornRereadsChangedPasswords = {
      got = {
        userborn = withUserborn.config.systemd.services.userborn.restartTriggers;
        users = withUserborn.config.system.activationScripts.users;
        sysusers = withSysusers.config.systemd.services ? userborn;
      };
      want = {
        userborn = [ withUserborn.config.services.secretfs.build.forUsers ];
        users = "";
        sysusers = false;
      };
    };
    badConfigurationIsRefused = {
      got = failedAssertions bad.config;
      want = [
        "services.secretfs.secrets.\"/etc/shadow\": name is absolute (starts with `/`); secretfs would refuse it"
        "services.secretfs.secrets.\"nofile\": neither `file` nor `source` is set (an age file to serve, or an op:// reference to read)"
        "services.secretfs.secrets.\"pw\": neededForUsers secrets are decrypted before users exist, so owner must be root, not `alice`"
        "services.secretfs.identityPaths is empty: secretfs needs at least one identity (an age key file or an ssh ed25519 private key) to decrypt secrets"
      ];
    };
    # The build runs only tests that exist, and leaves out the Catch2 tags that need more of the
    # host than the sandbox has (a tag no test carries any more would hide nothing).
    packageTestsFitTheSandbox = {
      got = {
        unknownTests = lib.filter (test: !lib.elem test mesonTests) (
          package.passthru.sandboxTests or [ ]
        );
        unusedTags = lib.filter (tag: !lib.any (lib.hasInfix tag) unitSources) (
          package.passthru.hostTags or [ ]
        );
        skipsSystemAccounts = lib.hasInfix "--test-args='~[system]'" package.checkPhase;
      };
      want = {
        unknownTests = [ ];
        unusedTags = [ ];
        skipsSystemAccounts = true;
      };
    };
    # What the issue asks of the flake. A NixOS module must be a function or a set: `nix flake
    # check` before Nix 2.13, and flake schemas, refuse a bare path.
    flakeOutputs = {
      got = {
        outputs = lib.attrNames flake;
        module = lib.isFunction flake.nixosModules.default || lib.isAttrs flake.nixosModules.default;
        overlay = lib.attrNames (flake.overlays.default pkgs pkgs);
        perSystem = map (output: lib.mapAttrs (_: lib.attrNames) flake.${output}) [
          "packages"
          "devShells"
          "checks"
        ];
        testImportsTheVmTest = flake.checks.x86_64-linux.nixos.imports;
      };
      want = {
        outputs = [
          "checks"
          "devShells"
          "nixosModules"
          "overlays"
          "packages"
        ];
        module = true;
        overlay = [ "secretfs" ];
        perSystem =
          map
            (names: {
              x86_64-linux = names;
              aarch64-linux = names;
            })
            [
              [
                "default"
                "secretfs"
              ]
              [ "default" ]
              [
                "nixos"
                "package"
              ]
            ];
        testImportsTheVmTest = [ ../nixos/secretfs.nix ];
      };
    };
    templatesReachManifestUnitsAndLinks =
      let
        config = withTemplates.config;
        built' = config.services.secretfs.build;
      in
      {
        got = {
          assertions = failedAssertions config;
          paths = lib.mapAttrs (_: entry: entry.path) config.services.secretfs.templates;
          manifest = built'.manifest.text == derive.toml config.services.secretfs;
          hasTemplates = lib.hasInfix "[templates.\"conf\"]\nfile = \"/srv/conf.tmpl\"" built'.manifest.text;
          units = builtins.fromJSON built'.units.text;
          links = built'.links.text;
          ordered = lib.elem "app.service" config.systemd.services.secretfs.before;
        };
        want = {
          assertions = [ ];
          paths = {
            "app/env" = "/etc/app/env";
            conf = "/run/secrets/conf";
          };
          manifest = true;
          hasTemplates = true;
          units = {
            "app/env" = {
              restart = [ "app.service" ];
              reload = [ ];
            };
            conf = {
              restart = [ ];
              reload = [ ];
            };
            "db/password" = {
              restart = [ ];
              reload = [ ];
            };
          };
          links = "/etc/app/env\t/run/secrets/app/env\n";
          ordered = true;
        };
      };
    # The manifest names the CLI by its store path and holds the [onepassword] table; the
    # daemon waits for the token file's mount but never for the network.
    onePasswordReachesManifestAndUnit =
      let
        config = withOnePassword.config;
        cli = pkgs._1password-cli;
        daemon = config.systemd.services.secretfs;
        networkUnits = lib.filter (lib.hasPrefix "network") (
          daemon.after ++ daemon.wants ++ daemon.requires ++ daemon.before
        );
      in
      {
        got = {
          assertions = failedAssertions config;
          manifest =
            config.services.secretfs.build.manifest.text
            == derive.toml (
              lib.recursiveUpdate config.services.secretfs { onepassword.op = "${cli}/bin/op"; }
            );
          table = lib.hasInfix (lib.concatStringsSep "\n" [
            "[onepassword]"
            "token_file = \"/persist/secretfs/op-token\""
            "op = \"${cli}/bin/op\""
            "refresh = \"6h\""
            "timeout = \"30s\""
            "retry = \"1m\""
            ""
          ]) config.services.secretfs.build.manifest.text;
          source = lib.hasInfix (lib.concatStringsSep "\n" [
            "[secrets.\"db/password\"]"
            "source = \"op://Production/Postgres/password\""
            "owner = \"postgres\""
            "mode = \"0400\""
            "restart_units = [\"postgresql.service\"]"
          ]) config.services.secretfs.build.manifest.text;
          inherit (daemon.unitConfig) RequiresMountsFor;
          inherit networkUnits;
          path = config.environment.systemPackages;
        };
        want = {
          assertions = [ ];
          manifest = true;
          table = true;
          source = true;
          RequiresMountsFor = [
            "/etc/secretfs/key.txt"
            "/persist/secretfs/op-token"
            "/var/lib/secretfs"
          ];
          networkUnits = [ ];
          path = [ pkgs.secretfs ];
        };
      };
    onePasswordCliUntouchedWithoutToken = {
      got = {
        assertions = failedAssertions withoutToken.config;
        table = lib.hasInfix "[onepassword]" (
          withoutToken.config.services.secretfs.build.manifest.text
        );
      };
      want = {
        assertions = [ ];
        table = false;
      };
    };
    onePasswordMistakesAreRefused = {
      got = map failedAssertions [
        badOnePassword.config
        noToken.config
      ];
      want = [
        [
          "services.secretfs.secrets.\"plain\": source `Production/Postgres/password` is not a 1Password reference: op://<vault>/<item>[/<section>]/<field>"
          "services.secretfs.secrets.\"pw\": neededForUsers secrets cannot have a `source`: they are decrypted during activation, before users are created and before the network and secretfs.service are up; give an age `file` (`secretfs sync REFERENCE FILE` writes one from 1Password)"
          "services.secretfs.onepassword.tokenFile `${builtins.storeDir}/00000000000000000000000000000000-op-token` is in the Nix store, which every user can read; keep the token in a root-only file outside it (install -m 600 -o root)"
        ]
        [
          "services.secretfs.secrets.\"db/password\": `source` without `file` is read from 1Password by secretfs.service, which needs services.secretfs.onepassword.tokenFile"
        ]
      ];
    };
    disabledDoesNothing = {
      got = {
        services = disabled.config.systemd.services;
        activation = lib.attrNames disabled.config.system.activationScripts;
        assertions = disabled.config.assertions;
      };
      want = {
        services = { };
        activation = [
          "groups"
          "specialfs"
          "users"
        ];
        assertions = [ ];
      };
    };
  };

in
{
  failures = lib.mapAttrsToList (case: value: { inherit case; inherit (value) got want; }) (
    lib.filterAttrs (_: value: value.got != value.want) cases
  );
  # What docs/nixos.md must describe: every option users set.
  options = map (option: option.name) (
    lib.filter (option: !option.internal && !(lib.hasInfix "._module." option.name)) (
      lib.optionAttrSetToDocList good.options.services.secretfs
    )
  );
}
