{
  description = "secretfs: age-encrypted secrets at /run/secrets from a FUSE file system";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      # FUSE and the NixOS module are Linux only.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forEachSystem = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      secretfsFor = pkgs: pkgs.callPackage ./nixos/package.nix { };
    in
    {
      overlays.default = final: _prev: { secretfs = secretfsFor final; };

      packages = forEachSystem (pkgs: rec {
        secretfs = secretfsFor pkgs;
        default = secretfs;
      });

      # The module falls back to building ./nixos/package.nix when pkgs has no `secretfs`, so it
      # works with or without the overlay. A module that imports the file rather than the bare
      # path: `nix flake check` before Nix 2.13, and flake schemas, want a function or a set;
      # importing by path keeps the file's name in the module system's messages.
      nixosModules.default = {
        imports = [ ./nixos/module.nix ];
      };

      devShells = forEachSystem (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
          packages = [
            pkgs.age
            pkgs.clang-tools
            pkgs.fuse3
            pkgs.jq
          ];
        };
      });

      checks = forEachSystem (
        pkgs:
        let
          secretfs = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        in
        {
          package = secretfs;
          nixos = pkgs.testers.runNixOSTest {
            imports = [ ./tests/nixos/secretfs.nix ];
            defaults.services.secretfs.package = secretfs;
          };
        }
      );
    };
}
