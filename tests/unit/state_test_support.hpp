// A throwaway state directory beside a throwaway "repository" of manifest and ciphertexts.
#pragma once

#include <sodium.h>
#include <stdlib.h>

#include <array>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fake_accounts.hpp"
#include "secretfs/manifest.hpp"
#include "secretfs/state.hpp"

namespace secretfs::state::testing {

namespace fs = std::filesystem;

// The unprivileged user tests give files to, or become.
inline constexpr uid_t kNobody = 65534;

// The message of the StateError `action` throws; fails the test when it throws none.
inline std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const StateError& error) {
    return error.what();
  }
  FAIL("no StateError");
  return {};
}

inline const manifest::testing::FakeAccounts& fake_accounts() {
  static const manifest::testing::FakeAccounts accounts;
  return accounts;
}

inline std::string read_text(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

inline std::string sha256_hex(const std::string& bytes) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest;
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size());
  std::array<char, crypto_hash_sha256_BYTES * 2 + 1> hex;
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return hex.data();
}

// <tmp>/repo holds manifest.toml and the ciphertexts; <tmp>/state is the state directory.
class Sandbox {
 public:
  Sandbox() {
    std::string pattern = (fs::temp_directory_path() / "secretfs-state-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    root_ = pattern;
    fs::create_directory(repo());
  }
  ~Sandbox() { fs::remove_all(root_); }
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  const fs::path& root() const { return root_; }
  fs::path repo() const { return root_ / "repo"; }
  fs::path state() const { return root_ / "state"; }
  fs::path manifest_path() const { return repo() / "manifest.toml"; }

  StateDir open() const { return StateDir::open(state(), Ownership::any); }

  // Writes the manifest and stores it.
  Stored store(StateDir& state_dir, const std::string& manifest_text) const {
    write_text(manifest_path(), manifest_text);
    const auto manifest = manifest::load(manifest_path(), fake_accounts());
    return state_dir.store(manifest, manifest_text);
  }

  // Writes one ciphertext ("a.age") per secret name, then a manifest listing them, and stores.
  Stored store_files(StateDir& state_dir,
                     const std::vector<std::pair<std::string, std::string>>& contents) const {
    std::string text;
    for (const auto& [name, content] : contents) {
      write_text(repo() / (name + ".age"), content);
      text += "[secrets." + name + "]\nfile = \"" + name + ".age\"\n";
    }
    return store(state_dir, text);
  }

  std::set<std::string> blobs() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(state() / "blobs")) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

 private:
  fs::path root_;
};

inline std::vector<Number> numbers_of(const std::vector<GenerationInfo>& infos) {
  std::vector<Number> numbers;
  for (const auto& info : infos) {
    numbers.push_back(info.number);
  }
  return numbers;
}

}  // namespace secretfs::state::testing
