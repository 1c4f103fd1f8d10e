#include "scenario.hpp"

#include <catch2/catch.hpp>

namespace secretfs::test {

namespace {

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.pop_back();
  }
  return text;
}

}  // namespace

Scenario::Scenario() : key_(dir_ / "key.txt") {
  REQUIRE(run("age-keygen -o '" + key_.string() + "' 2>/dev/null") == 0);
  recipient_ = trim(output_of("age-keygen -y '" + key_.string() + "'"));
}

std::filesystem::path Scenario::age_file(const std::string& file, const std::string& plaintext,
                                         const std::string& flags) {
  const auto input = dir_ / (file + ".plain");
  const auto output = dir_ / file;
  write_file(input, plaintext);
  REQUIRE(run("age -r " + recipient_ + " " + flags + " -o '" + output.string() + "' '" +
              input.string() + "'") == 0);
  std::filesystem::remove(input);
  return output;
}

std::filesystem::path Scenario::foreign_age_file(const std::string& file,
                                                 const std::string& plaintext) {
  TempDir elsewhere;
  const auto key = elsewhere / "foreign.txt";
  REQUIRE(run("age-keygen -o " + shell_quoted(key) + " 2>/dev/null") == 0);
  const auto input = elsewhere / "plain";
  write_file(input, plaintext);
  const auto output = dir_ / file;
  REQUIRE(run("age -e -i " + shell_quoted(key) + " -o " + shell_quoted(output) + " " +
              shell_quoted(input)) == 0);
  return output;
}

std::filesystem::path Scenario::manifest(const std::string& secrets,
                                         const std::string& identities) const {
  const auto path = dir_ / "manifest.toml";
  const std::string identity_list = identities.empty() ? "\"" + key_.string() + "\"" : identities;
  // Each test keeps its generations in its own folder, never in /var/lib/secretfs.
  write_file(path,
             "state_dir = \"" + (dir_ / "state").string() + "\"\nidentities = [" + identity_list +
                 "]\n\n" + secrets,
             0644);
  return path;
}

std::string pattern(std::size_t size) {
  std::string text(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    text[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  }
  return text;
}

}  // namespace secretfs::test
