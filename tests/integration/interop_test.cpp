// Interoperability with Debian's reference `age` CLI, both ways, through the mount and through
// the secretfs commands.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "scenario.hpp"

using namespace secretfs::test;

namespace {

constexpr std::size_t kChunk = 65536;
constexpr std::size_t kFiveMebibytes = 5 * 1024 * 1024;

std::string ssh_keygen(const TempDir& dir, const std::string& name) {
  REQUIRE(run("ssh-keygen -q -t ed25519 -N '' -C test@host -f " + shell_quoted(dir / name)) == 0);
  return (dir / name).string();
}

}  // namespace

TEST_CASE("files from age -r, age -a and age -R host.pub read byte-exact through the mount",
          "[interop]") {
  Scenario scenario;
  const std::string host_key = ssh_keygen(scenario.dir(), "host");
  const std::filesystem::path host_pub = host_key + ".pub";

  std::string secrets;
  std::vector<std::pair<std::string, std::string>> expected;
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, kChunk, kChunk + 1}) {
    const std::string content = pattern(size);
    const std::string suffix = std::to_string(size);
    scenario.age_file("x25519-" + suffix + ".age", content);
    scenario.age_file("armored-" + suffix + ".age", content, "-a");
    scenario.age_file("ssh-" + suffix + ".age", content, "-R " + shell_quoted(host_pub));
    for (const std::string kind : {"x25519", "armored", "ssh"}) {
      const std::string name = kind + "/" + suffix;
      secrets += "[secrets.\"" + name + "\"]\nfile = \"" + kind + "-" + suffix + ".age\"\n";
      expected.emplace_back(name, content);
    }
  }

  // A 5 MiB random binary, to check chunk boundaries far from the start.
  REQUIRE(run("head -c " + std::to_string(kFiveMebibytes) + " /dev/urandom > " +
              shell_quoted(scenario.dir() / "random.bin")) == 0);
  const std::string random = read_file(scenario.dir() / "random.bin");
  REQUIRE(run("age -r " + scenario.recipient() + " -o " +
              shell_quoted(scenario.dir() / "random.age") + " " +
              shell_quoted(scenario.dir() / "random.bin")) == 0);
  secrets += "[secrets.\"random\"]\nfile = \"random.age\"\n";
  expected.emplace_back("random", random);

  const auto manifest =
      scenario.manifest(secrets, "\"" + scenario.key().string() + "\", \"" + host_key + "\"");
  Mount mount(manifest, scenario.mount_point());

  for (const auto& [name, content] : expected) {
    INFO("secret " << name);
    const auto result = read_as(mount / name, Reader{0, 0, {}});
    CHECK(result.error == 0);
    CHECK(result.content.size() == content.size());
    CHECK(result.content == content);
    struct stat status {};
    REQUIRE(::stat((mount / name).c_str(), &status) == 0);
    CHECK(static_cast<std::size_t>(status.st_size) == content.size());
  }
}

TEST_CASE("files from secretfs encrypt decrypt with age -d", "[interop]") {
  Scenario scenario;
  const auto& dir = scenario.dir();
  const std::string host_key = ssh_keygen(dir, "host");
  const std::string secretfs = shell_quoted(binary());

  for (const std::size_t size : {std::size_t{0}, std::size_t{5}, kChunk, kChunk + 1}) {
    INFO("size " << size);
    const std::string content = pattern(size);
    write_file(dir / "plain", content);

    REQUIRE(run(secretfs + " encrypt -r " + scenario.recipient() + " -o " +
                shell_quoted(dir / "x.age") + " " + shell_quoted(dir / "plain")) == 0);
    CHECK(output_of("age -d -i " + shell_quoted(scenario.key()) + " " +
                    shell_quoted(dir / "x.age")) == content);

    REQUIRE(run(secretfs + " encrypt -a -R " + shell_quoted(host_key + ".pub") + " -o " +
                shell_quoted(dir / "ssh.age") + " " + shell_quoted(dir / "plain")) == 0);
    CHECK(read_file(dir / "ssh.age").rfind("-----BEGIN AGE ENCRYPTED FILE-----\n", 0) == 0);
    CHECK(output_of("age -d -i " + shell_quoted(host_key) + " " + shell_quoted(dir / "ssh.age")) ==
          content);

    const std::string public_key = read_file(host_key + ".pub");
    REQUIRE(run(secretfs + " encrypt -r '" + public_key.substr(0, public_key.find('\n')) + "' -o " +
                shell_quoted(dir / "ssh-r.age") + " < " + shell_quoted(dir / "plain")) == 0);
    CHECK(output_of("age -d -i " + shell_quoted(host_key) + " " +
                    shell_quoted(dir / "ssh-r.age")) == content);
  }
}

TEST_CASE("identities from secretfs keygen work with age-keygen -y and age", "[interop]") {
  TempDir dir;
  const std::string secretfs = shell_quoted(binary());
  const std::string key = (dir / "key.txt").string();

  const std::string printed = output_of(secretfs + " keygen -o " + shell_quoted(key));
  const std::string recipient = printed.substr(0, printed.find('\n'));
  CHECK(recipient.rfind("age1", 0) == 0);
  CHECK(output_of("age-keygen -y " + shell_quoted(key)) == recipient + "\n");
  CHECK(output_of(secretfs + " keygen -y " + shell_quoted(key)) == recipient + "\n");

  struct stat status {};
  REQUIRE(::stat(key.c_str(), &status) == 0);
  CHECK((status.st_mode & 0777) == 0600);
  CHECK(run(secretfs + " keygen -o " + shell_quoted(key) + " 2>/dev/null") != 0);

  write_file(dir / "plain", "interop\n");
  REQUIRE(run("age -r " + recipient + " -o " + shell_quoted(dir / "a.age") + " " +
              shell_quoted(dir / "plain")) == 0);
  CHECK(output_of(secretfs + " decrypt -i " + shell_quoted(key) + " " +
                  shell_quoted(dir / "a.age")) == "interop\n");
  CHECK(output_of("age -d -i " + shell_quoted(key) + " " + shell_quoted(dir / "a.age")) ==
        "interop\n");
}
