#include "fs/validation.hpp"

#include "fs/keyring.hpp"
#include "fs/secret_set.hpp"
#include "secretfs/age/age.hpp"

namespace secretfs::fs {

ManifestFile read_manifest(const std::filesystem::path& path) {
  std::vector<std::uint8_t> bytes;
  try {
    bytes = age::read_file(path);
  } catch (const age::Error& error) {
    throw manifest::ManifestError(std::string("cannot read manifest: ") + error.what());
  }
  ManifestFile file;
  file.text.assign(bytes.begin(), bytes.end());
  const auto absolute = std::filesystem::absolute(path).lexically_normal();
  file.manifest = manifest::parse(file.text, absolute.parent_path(), path.native());
  file.manifest.path = absolute;
  return file;
}

std::vector<std::string> header_problems(std::span<const manifest::Secret> secrets,
                                         const Keyring& keyring) {
  std::vector<std::string> problems;
  const auto identities = keyring.pointers();
  for (const auto& secret : secrets) {
    try {
      inspect_size(secret.file);
      age::verify_header(age::read_file(secret.file), identities);
    } catch (const age::Error& error) {
      problems.push_back("secret `" + secret.name + "`: file " + secret.file.string() + ": " +
                         std::string(age::to_string(error.kind())) + ": " + error.what());
    }
  }
  return problems;
}

std::vector<std::string> validate(const manifest::Manifest& manifest,
                                  age::FilePermissions permissions) {
  std::vector<std::string> problems;
  for (const auto& problem : manifest.problems) {
    problems.push_back(problem.message);
  }
  const Keyring keyring = load_keyring(manifest.identities, permissions);
  problems.insert(problems.end(), keyring.problems.begin(), keyring.problems.end());
  const auto files = header_problems(manifest.secrets, keyring);
  problems.insert(problems.end(), files.begin(), files.end());
  return problems;
}

}  // namespace secretfs::fs
