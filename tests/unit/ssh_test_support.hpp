// Throwaway directories, keys made with ssh-keygen and age-keygen, and helpers to take an
// OpenSSH key file apart, for the ssh and key file tests.
#pragma once

#include <sodium.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace secretfs::age::test {

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "secretfs-ssh-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::string shell_quoted(const std::filesystem::path& path) {
  return "'" + path.string() + "'";
}

// Runs a shell command with its output discarded (unless it redirects it itself) and returns
// its exit status.
inline int run(const std::string& command) {
  const int status = std::system(("{ " + command + "; } >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs a shell command and returns what it printed on stdout.
inline std::string output_of(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>/dev/null").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) {
    output += buffer;
  }
  REQUIRE(::pclose(pipe) == 0);
  return output;
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path) {
  const std::string text = read_text(path);
  return {text.begin(), text.end()};
}

inline void write_bytes(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out);
}

inline void write_text(const std::filesystem::path& path, std::string_view text) {
  write_bytes(path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

inline std::string trim_newline(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.pop_back();
  }
  return text;
}

// `ssh-keygen -t <type> -N <passphrase> -f <dir>/<name>`, plus any extra arguments.
inline std::filesystem::path make_ssh_key(const TempDir& dir, std::string_view name,
                                          std::string_view type = "ed25519",
                                          std::string_view passphrase = "",
                                          std::string_view extra = "") {
  const auto path = dir / name;
  REQUIRE(run("ssh-keygen -q -t " + std::string(type) + " -N '" + std::string(passphrase) +
              "' -C 'test@secretfs' " + std::string(extra) + " -f " + shell_quoted(path)) == 0);
  return path;
}

// The "SHA256:..." fingerprint that ssh-keygen -l prints for a key.
inline std::string ssh_fingerprint(const std::filesystem::path& key) {
  std::istringstream words(output_of("ssh-keygen -l -f " + shell_quoted(key)));
  std::string bits, fingerprint;
  words >> bits >> fingerprint;
  return fingerprint;
}

inline std::vector<std::uint8_t> base64_decode(std::string_view text) {
  std::vector<std::uint8_t> bytes(text.size());
  std::size_t size = 0;
  REQUIRE(sodium_base642bin(bytes.data(), bytes.size(), text.data(), text.size(), "\r\n", &size,
                            nullptr, sodium_base64_VARIANT_ORIGINAL) == 0);
  bytes.resize(size);
  return bytes;
}

inline std::string base64_encode(std::span<const std::uint8_t> bytes) {
  std::string text(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(text.data(), text.size(), bytes.data(), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  text.pop_back();
  return text;
}

inline constexpr std::string_view kOpensshBegin = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
inline constexpr std::string_view kOpensshEnd = "-----END OPENSSH PRIVATE KEY-----\n";
inline constexpr std::size_t kOpensshLineWidth = 70;  // what ssh-keygen writes

// The binary openssh-key-v1 blob inside a PEM-wrapped key file.
inline std::vector<std::uint8_t> openssh_blob(std::string_view pem) {
  const auto begin = pem.find(kOpensshBegin);
  const auto end = pem.find("-----END");
  REQUIRE(begin != std::string_view::npos);
  REQUIRE(end != std::string_view::npos);
  const auto body_start = begin + kOpensshBegin.size();
  return base64_decode(pem.substr(body_start, end - body_start));
}

inline std::string openssh_pem(std::span<const std::uint8_t> blob) {
  const std::string body = base64_encode(blob);
  std::string pem(kOpensshBegin);
  for (std::size_t at = 0; at < body.size(); at += kOpensshLineWidth) {
    pem += body.substr(at, kOpensshLineWidth) + "\n";
  }
  return pem + std::string(kOpensshEnd);
}

// Offsets into the blob of an unencrypted ssh-ed25519 key from ssh-keygen; the layout is
// fixed up to the comment because every field before it has a fixed size.
namespace openssh_layout {
inline constexpr std::size_t kKeyCount = 15 + 8 + 8 + 4;  // magic, "none", "none", ""
inline constexpr std::size_t kPublicBlobLength = kKeyCount + 4;
inline constexpr std::size_t kPublicKeyInBlob = kPublicBlobLength + 4 + 15 + 4;
inline constexpr std::size_t kPrivateSectionLength = kPublicKeyInBlob + 32;
inline constexpr std::size_t kCheck1 = kPrivateSectionLength + 4;
inline constexpr std::size_t kCheck2 = kCheck1 + 4;
inline constexpr std::size_t kPrivatePublicKey = kCheck2 + 4 + 15 + 4;
inline constexpr std::size_t kSeed = kPrivatePublicKey + 32 + 4;
inline constexpr std::size_t kSecondPublicKey = kSeed + 32;
}  // namespace openssh_layout

}  // namespace secretfs::age::test
