#include "secretfs/age/key_files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>

#include "secretfs/age/error.hpp"
#include "secretfs/age/x25519.hpp"
#include "ssh_test_support.hpp"

using namespace secretfs::age;
using secretfs::FilePermissions;
using namespace secretfs::age::test;
using Catch::Matchers::Contains;

namespace {

constexpr std::string_view kSource = "keys.txt";

// Public test keys, not secrets: the identity of the C2SP CCTV age test vectors, and the example
// key of the age specification (32 bytes of 0x42) with its recipient.
constexpr std::string_view kIdentity =
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";
constexpr std::string_view kOtherIdentity =
    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
constexpr std::string_view kOtherRecipient =
    "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

template <typename Call>
void require_error(Call call, ErrorKind kind, const std::string& detail) {
  try {
    call();
    FAIL("no error was thrown");
  } catch (const Error& error) {
    CHECK(error.kind() == kind);
    CHECK_THAT(error.what(), Contains(detail));
  }
}

void require_identities_refused(const std::string& text, ErrorKind kind,
                                const std::string& detail) {
  require_error([&] { parse_identities(text, kSource); }, kind, detail);
}

std::vector<std::string> descriptions(const Identities& identities) {
  std::vector<std::string> result;
  for (const auto& identity : identities) {
    result.push_back(identity->describe());
  }
  return result;
}

std::string x25519_description(std::string_view identity) {
  return X25519Identity::parse(identity)->describe();
}

std::filesystem::path write_key_file(const TempDir& dir, std::string_view text, mode_t mode) {
  const auto path = dir / "key.txt";
  write_text(path, text);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

}  // namespace

TEST_CASE("identity lists: comments, empty lines and CRLF as age-keygen writes them",
          "[key_files]") {
  const std::string text =
      "# created: 2024-01-01T00:00:00Z\r\n# public key: " + std::string(kOtherRecipient) +
      "\r\n\r\n" + std::string(kIdentity) + "\r\n" + std::string(kOtherIdentity);
  const auto identities = parse_identities(text, kSource);
  CHECK(descriptions(identities) ==
        std::vector<std::string>{x25519_description(kIdentity),
                                 "X25519 " + std::string(kOtherRecipient)});
}

TEST_CASE("an age-keygen identity file loads", "[key_files]") {
  TempDir dir;
  const auto path = dir / "key.txt";
  REQUIRE(run("age-keygen -o " + shell_quoted(path)) == 0);
  const std::string recipient = trim_newline(output_of("age-keygen -y " + shell_quoted(path)));

  const auto identities = load_identity_file(path);
  CHECK(descriptions(identities) == std::vector<std::string>{"X25519 " + recipient});
}

TEST_CASE("identity list errors name the source and line", "[key_files]") {
  const std::string comment = "# comment\n\n";
  SECTION("leading whitespace") {
    require_identities_refused(comment + " " + std::string(kIdentity) + "\n", ErrorKind::key,
                               "keys.txt: line 3: leading whitespace before the identity");
  }
  SECTION("lowercase identity") {
    std::string lower(kIdentity);
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    require_identities_refused(comment + lower, ErrorKind::key,
                               "keys.txt: line 3: not an AGE-SECRET-KEY-1 identity");
  }
  SECTION("trailing space") {
    require_identities_refused(std::string(kIdentity) + " \n", ErrorKind::key,
                               "keys.txt: line 1: ");
  }
  SECTION("plugin identity") {
    require_identities_refused(comment + "AGE-PLUGIN-YUBIKEY-1QQQQQQ\n", ErrorKind::unsupported,
                               "keys.txt: line 3: age plugin identities are not supported");
  }
  SECTION("post-quantum identity") {
    require_identities_refused("AGE-SECRET-KEY-PQ-1QQQQQQ\n", ErrorKind::unsupported,
                               "keys.txt: line 1: post-quantum (PQ) age identities");
  }
  SECTION("the error never quotes the secret line") {
    std::string broken(kIdentity);
    broken.back() = 'Q';
    try {
      parse_identities(broken, kSource);
      FAIL("accepted");
    } catch (const Error& error) {
      CHECK(error.kind() == ErrorKind::key);
      CHECK_THAT(error.what(), !Contains(broken.substr(16, 20)));
    }
  }
}

TEST_CASE("identity files without identities are key errors", "[key_files]") {
  require_identities_refused("", ErrorKind::key, "keys.txt: no identities found");
  require_identities_refused("# only a comment\n\n\r\n", ErrorKind::key,
                             "keys.txt: no identities found");
}

TEST_CASE("passphrase-encrypted identity files are unsupported", "[key_files]") {
  require_identities_refused("age-encryption.org/v1\n-> scrypt abc 18\n", ErrorKind::unsupported,
                             "keys.txt: passphrase-encrypted identity files are not supported");
  require_identities_refused("\n-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n", ErrorKind::unsupported,
                             "keys.txt: passphrase-encrypted identity files are not supported");
}

TEST_CASE("an OpenSSH key file yields the ssh identity and its derived X25519 identity",
          "[key_files]") {
  TempDir dir;
  const auto key = make_ssh_key(dir, "id");
  const auto identities = parse_identities("\n" + read_text(key), kSource);

  REQUIRE(identities.size() == 2);
  CHECK(identities[0]->describe() ==
        "ssh-ed25519 " + ssh_fingerprint(key.string() + ".pub") + " (test@secretfs)");
  CHECK(identities[1]->describe().starts_with("X25519 age1"));
}

TEST_CASE("SSH key files secretfs cannot use are unsupported", "[key_files]") {
  TempDir dir;
  const auto encrypted = make_ssh_key(dir, "encrypted", "ed25519", "pass");
  const auto rsa = make_ssh_key(dir, "rsa", "rsa", "", "-b 2048");
  require_identities_refused(read_text(encrypted), ErrorKind::unsupported,
                             "keys.txt: passphrase-protected OpenSSH keys are not supported");
  require_identities_refused(read_text(rsa), ErrorKind::unsupported,
                             "keys.txt: ssh-rsa keys are not supported");
}

TEST_CASE("identity files readable by group or others are refused", "[key_files]") {
  TempDir dir;
  const std::string text = std::string(kIdentity) + "\n";

  SECTION("0600 loads") {
    CHECK(load_identity_file(write_key_file(dir, text, 0600)).size() == 1);
  }
  SECTION("0400 loads") {
    CHECK(load_identity_file(write_key_file(dir, text, 0400)).size() == 1);
  }
  SECTION("0644 is refused with the exact message") {
    const auto path = write_key_file(dir, text, 0644);
    require_error([&] { load_identity_file(path); }, ErrorKind::key,
                  "identity file " + path.string() +
                      ": mode 0644 gives access to group or others; chmod 600 it");
  }
  SECTION("0640 is refused") {
    const auto path = write_key_file(dir, text, 0640);
    require_error([&] { load_identity_file(path); }, ErrorKind::key,
                  "identity file " + path.string() + ": mode 0640 gives access");
  }
  SECTION("0604 is refused") {
    const auto path = write_key_file(dir, text, 0604);
    require_error([&] { load_identity_file(path); }, ErrorKind::key, "mode 0604");
  }
  SECTION("FilePermissions::any skips the check") {
    const auto path = write_key_file(dir, text, 0644);
    CHECK(load_identity_file(path, FilePermissions::any).size() == 1);
  }
  SECTION("an SSH key with mode 0644 is refused too") {
    const auto key = make_ssh_key(dir, "id");
    REQUIRE(::chmod(key.c_str(), 0644) == 0);
    require_error([&] { load_identity_file(key); }, ErrorKind::key,
                  "identity file " + key.string() + ": mode 0644 gives access");
  }
}

TEST_CASE("identity files owned by another user are refused", "[key_files]") {
  if (::geteuid() != 0) {
    WARN("needs root to chown a file to another user; skipped");
    return;
  }
  TempDir dir;
  constexpr uid_t kOtherUid = 4242;
  const auto path = write_key_file(dir, std::string(kIdentity) + "\n", 0600);
  REQUIRE(::chown(path.c_str(), kOtherUid, kOtherUid) == 0);

  require_error([&] { load_identity_file(path); }, ErrorKind::key,
                "identity file " + path.string() + ": owned by uid 4242, want root (mode 0600)");
  CHECK(load_identity_file(path, FilePermissions::any).size() == 1);
}

TEST_CASE("a folder further up that others may write to is refused too", "[key_files]") {
  TempDir dir;
  const auto sub = dir / "sub";
  std::filesystem::create_directory(sub);
  REQUIRE(::chmod(sub.c_str(), 0700) == 0);
  const auto path = sub / "key.txt";
  write_text(path, std::string(kIdentity) + "\n");
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  REQUIRE(::chmod(dir.path().c_str(), 0777) == 0);
  // Whoever may write to dir can rename sub and put a folder of theirs in its place.
  require_error([&] { load_identity_file(path); }, ErrorKind::key,
                "identity file " + path.string() + ": the folder above it " +
                    dir.path().string() + " (owner uid " + std::to_string(::geteuid()) +
                    ", mode 0777) lets group or others replace the file; chmod go-w " +
                    dir.path().string() + ", or keep the file in a folder only root may change");
  REQUIRE(::chmod(dir.path().c_str(), 01777) == 0);
  CHECK(load_identity_file(path).size() == 1);
}

TEST_CASE("identity files in a folder group or others may write to are refused unless sticky",
          "[key_files]") {
  TempDir dir;
  const auto path = write_key_file(dir, std::string(kIdentity) + "\n", 0600);
  const auto folder_refused = [&](const std::string& mode) {
    return "identity file " + path.string() + ": its folder " + dir.path().string() +
           " (owner uid " + std::to_string(::geteuid()) + ", mode " + mode +
           ") lets group or others replace the file; chmod go-w " + dir.path().string() +
           ", or keep the file in a folder only root may change";
  };

  SECTION("0777 is refused with the exact message") {
    REQUIRE(::chmod(dir.path().c_str(), 0777) == 0);
    require_error([&] { load_identity_file(path); }, ErrorKind::key, folder_refused("0777"));
  }
  SECTION("0730 is refused") {
    REQUIRE(::chmod(dir.path().c_str(), 0730) == 0);
    require_error([&] { load_identity_file(path); }, ErrorKind::key, folder_refused("0730"));
  }
  SECTION("a sticky folder such as /tmp (1777) lets only the key's owner replace it") {
    REQUIRE(::chmod(dir.path().c_str(), 01777) == 0);
    CHECK(load_identity_file(path).size() == 1);
  }
  SECTION("0755 loads") {
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    CHECK(read_identity_file(path, FilePermissions::strict).waived.empty());
  }
  SECTION("FilePermissions::any reads it and names every rule it let through") {
    REQUIRE(::chmod(dir.path().c_str(), 0777) == 0);
    REQUIRE(::chmod(path.c_str(), 0604) == 0);
    const IdentityFile file = read_identity_file(path, FilePermissions::any);
    CHECK(file.identities.size() == 1);
    CHECK(file.waived ==
          std::vector<std::string>{"identity file " + path.string() +
                                       ": mode 0604 gives access to group or others; chmod 600 it",
                                   folder_refused("0777")});
  }
}

TEST_CASE("identity files in a folder another user owns are refused", "[key_files]") {
  if (::geteuid() != 0) {
    WARN("needs root to chown a folder to another user; skipped");
    return;
  }
  TempDir dir;
  constexpr uid_t kOtherUid = 4242;
  const auto path = write_key_file(dir, std::string(kIdentity) + "\n", 0600);
  REQUIRE(::chown(dir.path().c_str(), kOtherUid, kOtherUid) == 0);

  require_error([&] { load_identity_file(path); }, ErrorKind::key,
                "identity file " + path.string() + ": its folder " + dir.path().string() +
                    " (owner uid 4242, mode 0700) belongs to another user, who could replace "
                    "the file; want root (chown root " +
                    dir.path().string() + ")");
}

TEST_CASE("identity files that cannot be opened safely are refused", "[key_files]") {
  TempDir dir;
  const auto target = write_key_file(dir, std::string(kIdentity) + "\n", 0600);

  SECTION("missing file") {
    const auto path = dir / "missing";
    require_error([&] { load_identity_file(path); }, ErrorKind::io,
                  "identity file " + path.string() + ": cannot open: No such file or directory");
  }
  SECTION("symbolic link") {
    const auto link = dir / "link";
    std::filesystem::create_symlink(target, link);
    require_error([&] { load_identity_file(link, FilePermissions::any); }, ErrorKind::key,
                  "identity file " + link.string() + ": cannot open: is a symbolic link");
  }
  SECTION("directory") {
    require_error([&] { load_identity_file(dir.path(), FilePermissions::any); }, ErrorKind::key,
                  "identity file " + dir.path().string() + ": not a regular file");
  }
  SECTION("errors inside the file name it") {
    const auto path = write_key_file(dir, "# key\nnonsense\n", 0600);
    require_error([&] { load_identity_file(path); }, ErrorKind::key,
                  "identity file " + path.string() + ": line 2: ");
  }
}

TEST_CASE("recipients: age1 and ssh-ed25519", "[key_files]") {
  TempDir dir;
  const auto key = make_ssh_key(dir, "id");
  const std::string ssh_line = trim_newline(read_text(key.string() + ".pub"));
  const std::string ssh_without_comment = ssh_line.substr(0, ssh_line.rfind(' '));

  CHECK(parse_recipient(kOtherRecipient)->describe() == kOtherRecipient);
  CHECK(parse_recipient(ssh_line)->describe() == ssh_without_comment);

  const auto recipients =
      parse_recipients("# team\r\n" + std::string(kOtherRecipient) + "\r\n\n" + ssh_line, kSource);
  REQUIRE(recipients.size() == 2);
  CHECK(recipients[0]->describe() == kOtherRecipient);
  CHECK(recipients[1]->describe() == ssh_without_comment);
}

TEST_CASE("recipient errors have exact kinds and name the line", "[key_files]") {
  TempDir dir;
  const auto rsa = make_ssh_key(dir, "rsa", "rsa", "", "-b 2048");
  const std::string rsa_line = trim_newline(read_text(rsa.string() + ".pub"));

  require_error([&] { parse_recipient(rsa_line); }, ErrorKind::unsupported,
                "SSH key type ssh-rsa is not supported");
  require_error([&] { parse_recipient("ecdsa-sha2-nistp256 AAAA"); }, ErrorKind::unsupported,
                "ecdsa-sha2-nistp256");
  require_error([&] { parse_recipient("age1pq1qqqqqqqqqqqqqqq"); }, ErrorKind::unsupported,
                "(age1pq1...)");
  require_error([&] { parse_recipient("age1yubikey1qqqqqqqqqqqq"); }, ErrorKind::unsupported,
                "(age1yubikey1...)");
  require_error([&] { parse_recipient("age1qqqq"); }, ErrorKind::key, "age1qqqq");
  require_error([&] { parse_recipient("AGE1ZVKYG2"); }, ErrorKind::key, "unknown recipient type");
  require_error([&] { parse_recipient("hello"); }, ErrorKind::key, "unknown recipient type");

  require_error(
      [&] { parse_recipients("# ok\n" + std::string(kOtherRecipient) + "\n" + rsa_line, kSource); },
      ErrorKind::unsupported, "keys.txt: line 3: SSH key type ssh-rsa");
  require_error([&] { parse_recipients(" " + std::string(kOtherRecipient), kSource); },
                ErrorKind::key, "keys.txt: line 1: unknown recipient type");
  require_error([&] { parse_recipients("# nothing\n\n", kSource); }, ErrorKind::key,
                "keys.txt: no recipients found");
}
