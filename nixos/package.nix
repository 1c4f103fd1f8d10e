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
}:
let
  root = ../.;
  # Local build folders (build, build-*) are not part of the source.
  isBuildFolder =
    path: type:
    type == "directory" && dirOf path == toString root && lib.hasPrefix "build" (baseNameOf path);
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

  # Tests that need root, /dev/fuse or the age test vectors report themselves skipped.
  doCheck = true;

  meta = {
    description = "Read-only FUSE file system that serves age-encrypted secrets at /run/secrets";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "secretfs";
  };
}
