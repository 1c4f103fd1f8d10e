# NixOS VM test of the secretfs module, for pkgs.testers.runNixOSTest (flake: checks.*.nixos).
#
# The machine boots with two served secrets and one neededForUsers password. It checks that a
# service reads its secret, that another user is denied, that a switch which changes one secret
# restarts only the unit that uses it, that switching back (a rollback) restores the old secret,
# and that the password decrypted before users exist lets its user log in.
{ pkgs, lib, ... }:
let
  alicePassword = "correct horse battery staple";

  # A throwaway key and the test's age files, made at build time. They protect nothing.
  fixtures =
    pkgs.runCommand "secretfs-test-fixtures"
      {
        nativeBuildInputs = [
          pkgs.age
          pkgs.mkpasswd
        ];
      }
      ''
        mkdir "$out"
        age-keygen -o "$out/key.txt" 2>/dev/null
        recipient=$(age-keygen -y "$out/key.txt")
        encrypt() { age -r "$recipient" -o "$out/$1"; }

        printf token-one | encrypt token-one.age
        printf token-two | encrypt token-two.age
        printf other-secret | encrypt other.age
        mkpasswd -m sha-512 ${lib.escapeShellArg alicePassword} | tr -d '\n' |
          encrypt alice-password.age
      '';

  # Copied by an activation snippet, the way a host key is provisioned before secretfs runs.
  keyPath = "/etc/secretfs/test-key.txt";

  # Records the secret it read at start, then stays up, so restarts can be counted.
  reader =
    user: secret:
    pkgs.writeShellScript "read-${user}" ''
      ${pkgs.coreutils}/bin/cat ${secret} > "$STATE_DIRECTORY/seen"
      exec ${pkgs.coreutils}/bin/sleep infinity
    '';
in
{
  name = "secretfs";

  nodes.machine =
    { config, ... }:
    {
      imports = [ ../../nixos/module.nix ];

      # The test switches configurations. Test machines get switch-to-configuration only when
      # they have specialisations (this one has); asked for here rather than relied upon.
      system.switch.enable = true;

      # On the first boot this runs before the `users` snippet has written /etc/passwd (and before
      # /etc/nsswitch.conf exists), so the owner is given as a number: `-o root` would fail with
      # "invalid user" and leave the machine without its identity.
      system.activationScripts.secretfs-test-key = {
        deps = [ "specialfs" ];
        text = "install -D -m 0400 -o 0 -g 0 ${fixtures}/key.txt ${keyPath}";
      };
      system.activationScripts.secretfs-for-users.deps = [ "secretfs-test-key" ];

      services.secretfs = {
        enable = true;
        identityPaths = [ keyPath ];
        secrets = {
          "service/token" = {
            file = "${fixtures}/token-one.age";
            owner = "reader";
            path = "/etc/token-reader/token";
            restartUnits = [ "token-reader.service" ];
          };
          other = {
            file = "${fixtures}/other.age";
            owner = "other";
            restartUnits = [ "other-reader" ];
          };
          alice-password = {
            file = "${fixtures}/alice-password.age";
            neededForUsers = true;
          };
        };
      };

      users.users.reader = {
        isSystemUser = true;
        group = "reader";
      };
      users.groups.reader = { };
      users.users.other.isNormalUser = true;
      users.users.alice = {
        isNormalUser = true;
        hashedPasswordFile = config.services.secretfs.secrets.alice-password.path;
      };

      systemd.services.token-reader = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          User = "reader";
          StateDirectory = "token-reader";
          ExecStart = reader "reader" "/run/secrets/service/token";
        };
      };
      systemd.services.other-reader = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          User = "other";
          StateDirectory = "other-reader";
          ExecStart = reader "other" "/run/secrets/other";
        };
      };

      # The same machine with a new token and without the extra link.
      specialisation.changed.configuration = {
        services.secretfs.secrets."service/token" = {
          file = lib.mkForce "${fixtures}/token-two.age";
          path = lib.mkForce "/run/secrets/service/token";
        };
      };
    };

  testScript =
    { nodes, ... }:
    let
      toplevel = nodes.machine.system.build.toplevel;
    in
    ''
      def invocation(unit):
          return machine.succeed(f"systemctl show -p InvocationID --value {unit}").strip()

      def mode_of(path):
          return machine.succeed(f"stat -c '%U %a' {path}").strip()

      def read_as(user, path):
          return machine.succeed(f"runuser -u {user} -- cat {path}")

      def switch(system):
          machine.succeed(f"{system}/bin/switch-to-configuration test >&2")

      machine.wait_for_unit("multi-user.target")
      machine.wait_for_unit("secretfs.service")
      machine.wait_for_unit("secretfs-activate.service")
      machine.wait_for_unit("token-reader.service")
      machine.wait_for_unit("other-reader.service")

      with subtest("both secrets are served with their owners and modes"):
          fstype = machine.succeed("findmnt -n -o FSTYPE /run/secrets").strip()
          assert fstype.startswith("fuse"), f"/run/secrets is {fstype}, not a FUSE mount"
          assert mode_of("/run/secrets/service/token") == "reader 400"
          assert mode_of("/run/secrets/other") == "other 400"
          assert read_as("reader", "/run/secrets/service/token") == "token-one"
          assert read_as("other", "/run/secrets/other") == "other-secret"

      with subtest("the units that use secrets are ordered after the daemon and want it"):
          for unit in ["token-reader.service", "other-reader.service"]:
              after = machine.succeed(f"systemctl show -p After --value {unit}").split()
              wants = machine.succeed(f"systemctl show -p Wants --value {unit}").split()
              assert "secretfs.service" in after, f"{unit} After={after}"
              assert "secretfs.service" in wants, f"{unit} Wants={wants}"
          # Every service with default dependencies comes after both, links included.
          for unit in ["secretfs.service", "secretfs-activate.service"]:
              before = machine.succeed(f"systemctl show -p Before --value {unit}").split()
              assert "sysinit.target" in before, f"{unit} Before={before}"

      with subtest("a service reads its secret, through its link too"):
          machine.wait_until_succeeds("test -s /var/lib/token-reader/seen")
          assert machine.succeed("cat /var/lib/token-reader/seen") == "token-one"
          link = machine.succeed("readlink /etc/token-reader/token").strip()
          assert link == "/run/secrets/service/token", link
          assert read_as("reader", "/etc/token-reader/token") == "token-one"

      with subtest("another user is denied"):
          denied = machine.fail("runuser -u other -- cat /run/secrets/service/token 2>&1")
          assert "Permission denied" in denied, denied
          machine.fail("runuser -u reader -- cat /run/secrets/other")

      with subtest("a switch changes the secret and restarts only its unit"):
          token_before = invocation("token-reader.service")
          other_before = invocation("other-reader.service")
          daemon_before = invocation("secretfs.service")
          switch("${toplevel}/specialisation/changed")
          assert read_as("reader", "/run/secrets/service/token") == "token-two"
          machine.wait_until_succeeds("grep -qx token-two /var/lib/token-reader/seen")
          assert invocation("token-reader.service") != token_before, "no restart"
          assert invocation("other-reader.service") == other_before, "other-reader was restarted"
          # The new generation is handed to the running daemon: restarting it would unmount.
          assert invocation("secretfs.service") == daemon_before, "the switch restarted the daemon"
          machine.fail("test -L /etc/token-reader/token")
          generations = machine.succeed("secretfs generations")
          print(generations)

      with subtest("switching back to the first system (a rollback) restores the old secret"):
          token_before = invocation("token-reader.service")
          switch("${toplevel}")
          assert read_as("reader", "/run/secrets/service/token") == "token-one"
          machine.wait_until_succeeds("grep -qx token-one /var/lib/token-reader/seen")
          assert invocation("token-reader.service") != token_before, "no restart"
          assert read_as("reader", "/etc/token-reader/token") == "token-one"

      with subtest("a neededForUsers password is root's alone and logs its user in"):
          assert mode_of("/run/secrets-for-users") == "root 700"
          assert mode_of("/run/secrets-for-users/alice-password") == "root 400"
          assert machine.succeed("findmnt -n -o FSTYPE /run/secrets-for-users").strip() == "ramfs"
          machine.wait_until_tty_matches("1", "login: ")
          machine.send_chars("alice\n")
          machine.wait_until_tty_matches("1", "Password: ")
          machine.send_chars("${alicePassword}\n")
          machine.wait_until_succeeds("pgrep -u alice bash")

      with subtest("the daemon comes back after a crash and serves again"):
          daemon_before = invocation("secretfs.service")
          machine.succeed("systemctl kill -s KILL secretfs.service")
          machine.wait_until_succeeds(
              "runuser -u reader -- cat /run/secrets/service/token | grep -qx token-one"
          )
          # A read that works proves nothing unless a new daemon is the one answering it.
          assert invocation("secretfs.service") != daemon_before, "the daemon was not restarted"
    '';
}
