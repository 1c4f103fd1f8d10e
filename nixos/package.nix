# The secretfs package, built with meson from this repository.
{
  lib,
  stdenv,
  meson,
  ninja,
  pkg-config,
  fuse3,
  libsodium,
  tomlplusplus,
  spdlog,
  fmt,
  cli11,
  nlohmann_json,
  catch2,
  zlib,
  systemdLibs,
  age,
  openssh,
}:
let
  root = ../.;
  # Local build folders (build, build-*) are not part of the source.
  isBuildFolder =
    path: type:
    type == "directory" && dirOf path == toString root && lib.hasPrefix "build" (baseNameOf path);

  # The meson tests (tests/meson.build) that need neither root, /dev/fuse, Nix nor the network.
  sandboxTests = [
    "age"
    "ssh"
    "manifest"
    "template"
    "state"
    "rules"
    "fs"
  ];
  # Catch2 tags left out of those tests. `[system]` reads the host's passwd and group (Debian's
  # `daemon` account), which in the build sandbox hold only root, nixbld and nobody.
  hostTags = [ "[system]" ];
in
stdenv.mkDerivation {
  pname = "secretfs";
  version = "0.1.0";

  src = lib.cleanSourceWith {
    src = lib.cleanSource root;
    filter = path: type: !(isBuildFolder path type);
  };

  nativeBuildInputs = [
    meson
    ninja
    pkg-config
  ];

  # Catch2 (v2) and zlib are needed to configure, because the tests are part of the build.
  buildInputs = [
    fuse3
    libsodium
    tomlplusplus
    spdlog
    fmt
    cli11
    nlohmann_json
    systemdLibs
    catch2
    zlib
  ];

  strictDeps = true;

  # The unit tests check interoperability against age, age-keygen and ssh-keygen.
  nativeCheckInputs = [
    age
    openssh
  ];

  doCheck = true;
  # Only the tests that can run in the build sandbox, by name: the integration tests mount FUSE
  # file systems (root and /dev/fuse), `nix` needs Nix itself, and `age-vectors` reads test
  # vectors kept outside the repository. Each is a Catch2 binary: `~[a]~[b]`, one argument,
  # skips both tags (Catch2 joins separate arguments with "or").
  checkPhase = ''
    runHook preCheck
    meson test --no-rebuild --print-errorlogs \
      --test-args=${lib.escapeShellArg (lib.concatMapStrings (tag: "~${tag}") hostTags)} \
      ${lib.concatStringsSep " " sandboxTests}
    runHook postCheck
  '';

  # For tests/nix/module-eval.nix, which checks both against tests/.
  passthru = { inherit sandboxTests hostTags; };

  meta = {
    description = "Read-only FUSE file system that serves age-encrypted secrets at /run/secrets";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "secretfs";
  };
}
