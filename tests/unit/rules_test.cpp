// recipients.toml: parsing, errors with file and line, glob matching, groups, and the
// recipients record that lets rekey leave matching files alone.
#include <sodium.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>

#include "rules/rules.hpp"
#include "rules/sealing.hpp"
#include "secretfs/age/x25519.hpp"

using secretfs::rules::ErrorKind;
using secretfs::rules::RecipientsState;
using secretfs::rules::Rules;
using secretfs::rules::RulesError;

namespace {

namespace age = secretfs::age;

void append_string(std::vector<unsigned char>& wire, std::span<const unsigned char> bytes) {
  const std::uint32_t size = static_cast<std::uint32_t>(bytes.size());
  for (const int shift : {24, 16, 8, 0}) {
    wire.push_back(static_cast<unsigned char>(size >> shift));
  }
  wire.insert(wire.end(), bytes.begin(), bytes.end());
}

// An authorized_keys line for a fresh Ed25519 key: string "ssh-ed25519", string key, base64.
std::string fresh_ssh_recipient() {
  secretfs::initialize_sodium();
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> public_key{};
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> secret_key{};
  crypto_sign_keypair(public_key.data(), secret_key.data());
  sodium_memzero(secret_key.data(), secret_key.size());
  const std::string type = "ssh-ed25519";
  std::vector<unsigned char> wire;
  append_string(wire, {reinterpret_cast<const unsigned char*>(type.data()), type.size()});
  append_string(wire, public_key);
  std::string text(sodium_base64_encoded_len(wire.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(text.data(), text.size(), wire.data(), wire.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  text.resize(text.find('\0'));
  return type + " " + text + " root@web1";
}

const std::string kHostKey = fresh_ssh_recipient();

std::string fresh_recipient() {
  return age::X25519Identity::generate()->recipient()->describe();
}

ErrorKind kind_of_failure(const std::string& text) {
  try {
    Rules::parse(text, "/srv/secrets/recipients.toml");
  } catch (const RulesError& error) {
    return error.kind();
  }
  FAIL("the rules parsed: " << text);
  return ErrorKind::syntax;
}

std::string message_of_failure(const std::string& text) {
  try {
    Rules::parse(text, "/srv/secrets/recipients.toml");
  } catch (const RulesError& error) {
    return error.what();
  }
  FAIL("the rules parsed: " << text);
  return "";
}

}  // namespace

TEST_CASE("globs match within segments, ** across them", "[rules]") {
  using secretfs::rules::glob_matches;
  CHECK(glob_matches("web1/*.age", "web1/db.age"));
  CHECK_FALSE(glob_matches("web1/*.age", "web1/old/db.age"));
  CHECK_FALSE(glob_matches("web1/*.age", "web2/db.age"));
  CHECK_FALSE(glob_matches("web1/*.age", "web1/db.age.bak"));
  CHECK(glob_matches("**/*.age", "db.age"));
  CHECK(glob_matches("**/*.age", "a/b/c/db.age"));
  CHECK(glob_matches("web?/db.age", "web7/db.age"));
  CHECK_FALSE(glob_matches("web?/db.age", "web10/db.age"));
  CHECK(glob_matches("web[12]/x", "web2/x"));
  CHECK_FALSE(glob_matches("web[12]/x", "web3/x"));
  CHECK(glob_matches("web[!12]/x", "web3/x"));
  CHECK(glob_matches("db-[a-c].age", "db-b.age"));
  CHECK_FALSE(glob_matches("db-[a-c].age", "db-d.age"));
  CHECK(glob_matches("./shared/*", "shared/token.age"));
  CHECK(glob_matches("a/**/z.age", "a/z.age"));
  CHECK(glob_matches("a/**/z.age", "a/b/c/z.age"));
  CHECK(glob_matches("[x", "[x"));
}

TEST_CASE("the first matching rule decides, groups expand, each key once", "[rules]") {
  const std::string ops1 = fresh_recipient();
  const std::string ops2 = fresh_recipient();
  const auto rules = Rules::parse("[hosts]\nweb1 = \"" + kHostKey + "\"\n\n[users]\nops1 = \"" +
                                      ops1 + "\"\nops2 = \"" + ops2 +
                                      "\"\n\n[groups]\n"
                                      "admins = [\"ops1\", \"seniors\"]\nseniors = [\"ops2\"]\n\n"
                                      "[[rules]]\nfiles = \"web1/*.age\"\n"
                                      "recipients = [\"web1\", \"admins\", \"ops1\"]\n\n"
                                      "[[rules]]\nfiles = \"**/*.age\"\nrecipients = [\"ops2\"]\n",
                                  "/srv/secrets/recipients.toml");
  REQUIRE(rules.rules().size() == 2);
  CHECK(rules.rules()[0].line == 12);
  CHECK(rules.base_dir() == "/srv/secrets");

  const auto* web = rules.match("/srv/secrets/web1/db.age");
  REQUIRE(web == &rules.rules()[0]);
  CHECK(rules.recipients_of(*web) == std::vector<std::string>{kHostKey, ops1, ops2});

  const auto* other = rules.match("/srv/secrets/web2/deep/db.age");
  REQUIRE(other == &rules.rules()[1]);
  CHECK(rules.recipients_of(*other) == std::vector<std::string>{ops2});

  CHECK(rules.match("/srv/secrets/web1/notes.txt") == nullptr);
  CHECK(rules.match("/srv/elsewhere/db.age") == nullptr);
  CHECK(rules.match("/srv/secrets/../secrets/web1/db.age") == web);
}

TEST_CASE("a file no rule matches is named", "[rules]") {
  const auto rules = Rules::parse("[users]\nops = \"" + fresh_recipient() +
                                      "\"\n[[rules]]\nfiles = \"*.age\"\nrecipients = [\"ops\"]\n",
                                  "/srv/secrets/recipients.toml");
  try {
    rules.rule_for("/srv/secrets/sub/x.age");
    FAIL("a rule matched");
  } catch (const RulesError& error) {
    CHECK(error.kind() == ErrorKind::no_rule);
    CHECK(std::string(error.what()) ==
          "/srv/secrets/sub/x.age: no rule in /srv/secrets/recipients.toml matches this file");
  }
}

TEST_CASE("mistakes in the rules name the file and the line", "[rules]") {
  const std::string user = "[users]\nops = \"" + fresh_recipient() + "\"\n";

  SECTION("an unknown name in a rule") {
    const std::string text = user + "\n[[rules]]\nfiles = \"*.age\"\nrecipients = [\"web9\"]\n";
    CHECK(kind_of_failure(text) == ErrorKind::unknown_name);
    CHECK(message_of_failure(text) ==
          "/srv/secrets/recipients.toml:4: rule 1: unknown name `web9` in recipients (not a "
          "host, user or group)");
  }
  SECTION("an unknown name in a group") {
    const std::string text = user + "[groups]\nadmins = [\"ops\", \"ghost\"]\n";
    CHECK(kind_of_failure(text) == ErrorKind::unknown_name);
    CHECK(message_of_failure(text).starts_with("/srv/secrets/recipients.toml:4: group `admins`"));
  }
  SECTION("a group that names itself") {
    const std::string text = "[groups]\nadmins = [\"admins\"]\n";
    CHECK(kind_of_failure(text) == ErrorKind::group_cycle);
    CHECK(message_of_failure(text) ==
          "/srv/secrets/recipients.toml:2: group `admins` contains itself (admins -> admins)");
  }
  SECTION("a group that contains itself through another") {
    const std::string text = user + "[groups]\na = [\"ops\", \"b\"]\nb = [\"a\"]\n";
    CHECK(kind_of_failure(text) == ErrorKind::group_cycle);
    CHECK(message_of_failure(text) ==
          "/srv/secrets/recipients.toml:4: group `a` contains itself (a -> b -> a)");
  }
  SECTION("a key that does not parse") {
    const std::string text = "[hosts]\nweb1 = \"ssh-ed25519 AAAA\"\n";
    CHECK(kind_of_failure(text) == ErrorKind::bad_key);
    CHECK(message_of_failure(text).starts_with(
        "/srv/secrets/recipients.toml:2: host `web1`: key does not parse: "));
  }
  SECTION("an ssh-rsa key is refused") {
    CHECK(kind_of_failure("[users]\nold = \"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\"\n") ==
          ErrorKind::bad_key);
  }
  SECTION("a name used twice") {
    const std::string text = user + "[hosts]\nops = \"" + kHostKey + "\"\n";
    CHECK(kind_of_failure(text) == ErrorKind::duplicate);
  }
  SECTION("a rule without files, without recipients or with an unknown key") {
    CHECK(kind_of_failure(user + "[[rules]]\nrecipients = [\"ops\"]\n") == ErrorKind::syntax);
    CHECK(kind_of_failure(user + "[[rules]]\nfiles = \"*\"\nrecipients = []\n") ==
          ErrorKind::syntax);
    CHECK(message_of_failure(user + "[[rules]]\nfiles = \"*\"\nrecipients = [\"ops\"]\nx = 1\n") ==
          "/srv/secrets/recipients.toml:6: rule 1: unexpected key `x` (want files = \"glob\" "
          "and recipients = [names])");
  }
  SECTION("an unknown top-level key and broken TOML") {
    CHECK(message_of_failure("[people]\n") ==
          "/srv/secrets/recipients.toml:1: unknown key `people` (want hosts, users, groups or "
          "rules)");
    CHECK(message_of_failure("[users]\nops = \n")
              .starts_with("/srv/secrets/recipients.toml:2: TOML syntax error: "));
  }
}

TEST_CASE("a rule whose recipients resolve to no key is refused", "[rules]") {
  const std::string user = "[users]\nops = \"" + fresh_recipient() + "\"\n";

  SECTION("through a nested empty group, naming the rule's line and every empty group") {
    const std::string text = user +
                             "[groups]\nleavers = []\nadmins = [\"leavers\"]\n"
                             "[[rules]]\nfiles = \"**/*.age\"\nrecipients = [\"admins\"]\n";
    CHECK(kind_of_failure(text) == ErrorKind::no_recipients);
    CHECK(message_of_failure(text) ==
          "/srv/secrets/recipients.toml:6: rule 1: recipients resolve to no key, so its files "
          "could never be decrypted; empty groups: `leavers` (line 4), `admins` (line 5)");
  }
  SECTION("an empty group beside a key is fine") {
    const auto rules = Rules::parse(user +
                                        "[groups]\nleavers = []\n"
                                        "[[rules]]\nfiles = \"*.age\"\n"
                                        "recipients = [\"leavers\", \"ops\"]\n",
                                    "/srv/secrets/recipients.toml");
    CHECK(rules.recipients_of(rules.rules()[0]).size() == 1);
  }
  SECTION("sealing to no recipients is refused whatever the caller") {
    const std::string text = "x";
    const std::span<const std::uint8_t> plaintext(
        reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    try {
      secretfs::rules::seal(plaintext, {}, age::Output::binary);
      FAIL("sealed to nobody");
    } catch (const RulesError& error) {
      CHECK(error.kind() == ErrorKind::no_recipients);
    }
  }
}

TEST_CASE("globs that can never match are refused", "[rules]") {
  const std::string user = "[users]\nops = \"" + fresh_recipient() + "\"\n";
  const auto rule_with = [&](const std::string& glob) {
    return user + "[[rules]]\nfiles = \"" + glob + "\"\nrecipients = [\"ops\"]\n";
  };
  for (const char* glob : {"/srv/secrets/*.age", "../other/*.age", "web1/../x.age", "web1/",
                           "web[12/x.age", "x[!.age", "", "./."}) {
    INFO(glob);
    CHECK(kind_of_failure(rule_with(glob)) == ErrorKind::bad_glob);
  }
  CHECK(message_of_failure(rule_with("web1/")) ==
        "/srv/secrets/recipients.toml:4: rule 1: files = \"web1/\" can never match a file: it "
        "ends with '/'; globs match files, not folders");
  CHECK(message_of_failure(rule_with("a/b[x")) ==
        "/srv/secrets/recipients.toml:4: rule 1: files = \"a/b[x\" can never match a file: it "
        "has a `[` that no `]` closes in `b[x`");
  CHECK(Rules::parse(rule_with("web[]1]/x.age"), "/srv/secrets/recipients.toml").rules().size() ==
        1);
}

TEST_CASE("every mistake in the rules file is reported, not only the first", "[rules]") {
  const std::string text =
      "[hosts]\nweb1 = \"ssh-ed25519 AAAA\"\n"
      "[groups]\nadmins = [\"ghost\"]\n"
      "[[rules]]\nfiles = \"/abs\"\nrecipients = [\"web1\"]\n"
      "[[rules]]\nfiles = \"*.age\"\nrecipients = [\"nobody\"]\n";
  CHECK(kind_of_failure(text) == ErrorKind::bad_key);
  const std::string message = message_of_failure(text);
  CHECK(message.starts_with("/srv/secrets/recipients.toml:2: host `web1`: key does not parse: "));
  CHECK(message.find("\n/srv/secrets/recipients.toml:4: group `admins`: unknown name `ghost`") !=
        std::string::npos);
  CHECK(message.find("\n/srv/secrets/recipients.toml:6: rule 1: files = \"/abs\"") !=
        std::string::npos);
  CHECK(
      message.ends_with("\n/srv/secrets/recipients.toml:8: rule 2: unknown name `nobody` in "
                        "recipients (not a host, user or group)"));
  // The broken key is known by name: no rule that names it gets a second message.
  CHECK(message.find("unknown name `web1`") == std::string::npos);
}

TEST_CASE("a rule that an earlier glob covers is warned about", "[rules]") {
  using secretfs::rules::glob_covers;
  CHECK(glob_covers("**/*.age", "web1/*.age"));
  CHECK(glob_covers("**", "a/**/b"));
  CHECK(glob_covers("**/*", "x.txt"));
  CHECK(glob_covers("web1/**", "web1/db-*.age"));
  CHECK(glob_covers("web1/*.age", "./web1/*.age"));
  CHECK(glob_covers("*.age", "db.age"));
  CHECK_FALSE(glob_covers("*.age", "web1/*.age"));
  CHECK_FALSE(glob_covers("**/*.age", "web1/*"));
  CHECK_FALSE(glob_covers("web2/**", "web1/*.age"));
  CHECK_FALSE(glob_covers("**/db.age", "web1/*.age"));

  const std::string text = "[users]\nops = \"" + fresh_recipient() +
                           "\"\n"
                           "[[rules]]\nfiles = \"**/*.age\"\nrecipients = [\"ops\"]\n"
                           "[[rules]]\nfiles = \"web1/*.age\"\nrecipients = [\"ops\"]\n"
                           "[[rules]]\nfiles = \"notes/*.txt\"\nrecipients = [\"ops\"]\n";
  const auto rules = Rules::parse(text, "/srv/secrets/recipients.toml");
  CHECK(rules.warnings() ==
        std::vector<std::string>{
            "/srv/secrets/recipients.toml:6: rule 2 can never match: rule 1 (line 3, files = "
            "\"**/*.age\") comes first and matches every file it would"});
}

TEST_CASE("the nearest recipients.toml is found by walking up", "[rules]") {
  const auto root =
      std::filesystem::temp_directory_path() / ("secretfs-rules-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "a" / "b");
  std::ofstream(root / "recipients.toml") << "[users]\nops = \"" << fresh_recipient()
                                          << "\"\n[[rules]]\nfiles = \"a/**/*.age\"\n"
                                             "recipients = [\"ops\"]\n";
  std::ofstream(root / "a" / "b" / "x.age") << "x";
  std::ofstream(root / "a" / "note.txt") << "x";

  CHECK(secretfs::rules::find_rules_file(root / "a" / "b") == root / "recipients.toml");
  const auto rules = secretfs::rules::rules_for_file(root / "a" / "b" / "new.age", std::nullopt);
  CHECK(rules.path() == root / "recipients.toml");
  CHECK(rules.matching_files() == std::vector<std::filesystem::path>{root / "a" / "b" / "x.age"});
  std::filesystem::remove_all(root);

  try {
    secretfs::rules::rules_for_file("/proc/self/x.age", std::nullopt);
    FAIL("rules found above /proc/self");
  } catch (const RulesError& error) {
    CHECK(error.kind() == ErrorKind::not_found);
  }
}

TEST_CASE("the recipients record tells a matching file from one to rekey", "[rules]") {
  const auto alice = age::X25519Identity::generate();
  const auto bob = age::X25519Identity::generate();
  const std::string a = alice->recipient()->describe();
  const std::string b = bob->recipient()->describe();
  const std::vector<const age::Identity*> identities{alice.get()};
  const std::string text = "secret value";
  const std::span<const std::uint8_t> plaintext(reinterpret_cast<const std::uint8_t*>(text.data()),
                                                text.size());

  const auto sealed = secretfs::rules::seal(plaintext, {a, b}, age::Output::binary);
  const auto opened = secretfs::rules::open_sealed(sealed, identities, {b, a, a});
  CHECK(opened.plaintext.view() == text);
  CHECK(opened.output == age::Output::binary);
  CHECK(opened.recipients == RecipientsState::match);

  CHECK(secretfs::rules::open_sealed(sealed, identities, {a}).recipients ==
        RecipientsState::differ);
  CHECK(secretfs::rules::open_sealed(sealed, identities, {a, b, fresh_recipient()}).recipients ==
        RecipientsState::differ);

  const auto armored = secretfs::rules::seal(plaintext, {a}, age::Output::armored);
  const auto opened_armored = secretfs::rules::open_sealed(armored, identities, {a});
  CHECK(opened_armored.output == age::Output::armored);
  CHECK(opened_armored.recipients == RecipientsState::match);

  // A file written without the rules has no record: its X25519 recipients cannot be known.
  const auto recipient = alice->recipient();
  const std::vector<const age::Recipient*> plain{recipient.get()};
  const auto ordinary = age::encrypt(plaintext, plain);
  CHECK(secretfs::rules::open_sealed(ordinary, identities, {a}).recipients ==
        RecipientsState::unknown);

  // The record is one stanza of its own type, which other age implementations skip.
  const auto header = age::parse_header(sealed);
  REQUIRE(header.stanzas.size() == 3);
  CHECK(header.stanzas[2].type == secretfs::rules::kRecordStanzaType);
  CHECK(header.stanzas[2].args.size() == 1);
  CHECK(header.stanzas[2].body.empty());
}

TEST_CASE("a file others hold cannot be opened, and says so", "[rules]") {
  const auto alice = age::X25519Identity::generate();
  const auto bob = age::X25519Identity::generate();
  const std::string text = "x";
  const std::span<const std::uint8_t> plaintext(reinterpret_cast<const std::uint8_t*>(text.data()),
                                                text.size());
  const auto sealed =
      secretfs::rules::seal(plaintext, {bob->recipient()->describe()}, age::Output::binary);
  const std::vector<const age::Identity*> identities{alice.get()};
  try {
    secretfs::rules::open_sealed(sealed, identities, {});
    FAIL("opened");
  } catch (const age::Error& error) {
    CHECK(error.kind() == age::ErrorKind::no_match);
  }
}
