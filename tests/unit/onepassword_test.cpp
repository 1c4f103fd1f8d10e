// The 1Password client against the stand-in `op` (tests/onepassword/fake_op.cpp): which runs
// it makes, what the child sees, and the exact values and errors that come back.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "onepassword/error_lines.hpp"
#include "onepassword/item.hpp"
#include "secretfs/onepassword.hpp"

using namespace secretfs;
using namespace secretfs::onepassword;

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kToken = "ops_throwaway-token-for-tests";
constexpr std::string_view kForm = "op://<vault>/<item>[/<section>]/<field>";
// Every byte that text handling would break: NUL, 0xff, line ends.
const std::string kAttachment("\x00\xff\x01\n\r binary \x00\xfe", 15);
const std::string kAttachmentBase64 = "AP8BCg0gYmluYXJ5IAD+";
const std::string kOtpSecret = "otpauth://totp/db?secret=JBSWY3DPEHPK3PXP";
const std::vector<std::string> kChildEnvironment = {"HOME", "OP_CACHE", "OP_CONFIG_DIR",
                                                    "OP_SERVICE_ACCOUNT_TOKEN", "PATH"};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "secretfs-op-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path operator/(std::string_view name) const { return path_ / name; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, std::string_view text, fs::perms mode = fs::perms(0600)) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  fs::permissions(path, mode);
}

json section(std::string_view id, std::string_view label) {
  return {{"id", id}, {"label", label}};
}

json field(std::string_view id, std::string_view type, std::string_view label,
           std::string_view value) {
  return {{"id", id}, {"type", type}, {"label", label}, {"value", value}};
}

json field_in(const json& in, std::string_view id, std::string_view label, std::string_view value) {
  json entry = field(id, "STRING", label, value);
  entry["section"] = in;
  return entry;
}

json item(std::string_view id, std::string_view title, json fields, json files = json::array()) {
  return {{"id", id},
          {"title", title},
          {"version", 1},
          {"vault", {{"id", "vltservers0000000000000000"}, {"name", "Servers"}}},
          {"category", "LOGIN"},
          {"created_at", "2026-01-01T00:00:00Z"},
          {"updated_at", "2026-01-01T00:00:00Z"},
          {"sections", json::array()},
          {"fields", std::move(fields)},
          {"files", std::move(files)}};
}

// Servers/db: plain fields, `port` in two sections, an OTP, a field without a value and a
// binary attachment; Servers/api; two items both called "twin".
json account() {
  const json primary = section("sec1primary", "primary");
  const json replica = section("sec2replica", "replica");
  json db = item("itmdb000000000000000000000", "db",
                 {field("username", "STRING", "username", "admin"),
                  field("password", "CONCEALED", "password", "s3cret pass"),
                  field("fldhost", "STRING", "host", "db.internal"),
                  field_in(primary, "fldport1", "port", "5432"),
                  field_in(replica, "fldport2", "port", "5433"),
                  field("fldotp", "OTP", "one-time password", kOtpSecret),
                  {{"id", "fldempty"}, {"type", "STRING"}, {"label", "empty"}}},
                 {{{"id", "filecert"},
                   {"name", "cert.bin"},
                   {"size", kAttachment.size()},
                   {"content_path", "/v1/vaults/x/items/y/files/filecert/content"},
                   {"content_base64", kAttachmentBase64}}});
  db["sections"] = {primary, replica};
  return {{"token", kToken},
          {"vaults",
           {{{"id", "vltservers0000000000000000"},
             {"name", "Servers"},
             {"items",
              {db,
               item("itmapi00000000000000000000", "api",
                    {field("fldkey", "CONCEALED", "key", "api-key-1")}),
               item("itmtwin1000000000000000000", "twin", json::array()),
               item("itmtwin2000000000000000000", "twin", json::array())}}}}}};
}

// A data folder for fake_op, an `op` script that runs it, and a config folder not yet created.
class FakeOp {
 public:
  FakeOp() {
    const char* fake_op = std::getenv("FAKE_OP");
    REQUIRE(fake_op != nullptr);
    fs::create_directories(data());
    save(account());
    write_file(op(),
               "#!/bin/sh\nexec '" + std::string(fake_op) + "' '" + data().string() + "' \"$@\"\n",
               fs::perms(0755));
  }

  fs::path data() const { return dir_ / "data"; }
  fs::path op() const { return dir_ / "op"; }
  fs::path config() const { return dir_ / "state" / "op-config"; }
  fs::path path(std::string_view name) const { return dir_ / name; }

  Settings settings() const {
    Settings settings;
    settings.op = op();
    settings.config_dir = config();
    settings.timeout = std::chrono::seconds(20);
    return settings;
  }

  // Written aside and renamed, as a test running against a live mount must.
  void save(const json& account) const {
    write_file(data() / "account.json.new", account.dump(2));
    fs::rename(data() / "account.json.new", data() / "account.json");
  }

  void set_mode(std::string_view mode) const { write_file(data() / "mode", mode); }

  std::vector<json> calls() const {
    std::vector<json> calls;
    std::ifstream in(data() / "calls.jsonl");
    for (std::string line; std::getline(in, line);) {
      calls.push_back(json::parse(line));
    }
    return calls;
  }

  std::vector<json> argvs() const {
    std::vector<json> argvs;
    for (const json& call : calls()) {
      argvs.push_back(call["argv"]);
    }
    return argvs;
  }

 private:
  TempDir dir_;
};

SecretBytes secret(std::string_view text) {
  return SecretBytes::copy_of({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

Reference reference(std::string_view text) {
  auto parsed = parse_reference(text);
  REQUIRE(std::holds_alternative<Reference>(parsed));
  return std::get<Reference>(parsed);
}

std::vector<Result> fetch(Client& client, const std::vector<std::string>& texts) {
  std::vector<Reference> references;
  for (const std::string& text : texts) {
    references.push_back(reference(text));
  }
  return client.fetch(references);
}

std::vector<Result> fetch(const Settings& settings, const std::vector<std::string>& texts,
                          std::string_view token = kToken) {
  Client client(settings, secret(token));
  return fetch(client, texts);
}

std::string value(const Result& result) {
  if (const Error* error = std::get_if<Error>(&result)) {
    FAIL("an error instead of a value: " << error->message);
  }
  return std::string(std::get<SecretBytes>(result).view());
}

Error error(const Result& result) {
  REQUIRE(std::holds_alternative<Error>(result));
  return std::get<Error>(result);
}

std::string refusal(std::string_view text) {
  auto parsed = parse_reference(text);
  REQUIRE(std::holds_alternative<std::string>(parsed));
  return std::get<std::string>(parsed);
}

std::vector<std::pair<std::string, std::string>> requests_of(const Client& client) {
  std::vector<std::pair<std::string, std::string>> requests;
  for (const Request& request : client.requests()) {
    requests.emplace_back(request.command, request.item);
  }
  return requests;
}

const json kItemGetDb = {"item", "get", "db", "--vault", "Servers", "--format", "json"};

// The same FNV-1a code fake_op derives from an OTP field's secret.
std::string one_time_code(std::string_view secret) {
  std::uint32_t hash = 2166136261u;
  for (const unsigned char c : secret) {
    hash = (hash ^ c) * 16777619u;
  }
  const std::string digits = std::to_string(hash % 1'000'000);
  return std::string(6 - digits.size(), '0') + digits;
}

std::string error_of_token_file(const fs::path& path) {
  try {
    read_token_file(path);
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  FAIL("the token file was accepted");
  return {};
}

}  // namespace

TEST_CASE("secret references are split into vault, item, section, field and query",
          "[onepassword]") {
  const Reference plain = reference("op://Servers/db/password");
  CHECK(plain.text == "op://Servers/db/password");
  CHECK(plain.vault == "Servers");
  CHECK(plain.item == "db");
  CHECK(plain.section.empty());
  CHECK(plain.field == "password");
  CHECK(plain.query.empty());

  const Reference sectioned = reference("op://My Vault/web.app_1/replica set/port-2");
  CHECK(sectioned.vault == "My Vault");
  CHECK(sectioned.item == "web.app_1");
  CHECK(sectioned.section == "replica set");
  CHECK(sectioned.field == "port-2");

  const Reference query = reference("op://Servers/db/key?ssh-format=openssh");
  CHECK(query.field == "key");
  CHECK(query.query == "ssh-format=openssh");
  CHECK(query.text == "op://Servers/db/key?ssh-format=openssh");
}

TEST_CASE("malformed secret references are refused with a sentence", "[onepassword]") {
  const std::string form(kForm);
  CHECK(refusal("Servers/db/password") ==
        "A secret reference starts with op:// and has the form " + form + ".");
  CHECK(refusal("op://a/b/c/d/e") == "too many '/': secret references should match " + form + ".");
  CHECK(refusal("op://a/b") == "too few '/': secret references should match " + form + ".");
  CHECK(refusal("op://a//c") == "The item is empty.");
  CHECK(refusal("op://a/b/c/") == "The field is empty.");
  CHECK(refusal("op://a/b@x/c") ==
        "The item contains '@', which a secret reference cannot hold; write the item's ID "
        "instead.");
  CHECK(refusal(std::string("op://a/b/s\tx/c")) ==
        "The section contains 0x09, which a secret reference cannot hold; write the section's "
        "ID instead.");
  CHECK(refusal("op://a/b/c?") == "The query after '?' is empty.");
  CHECK(refusal("op://a/b/c?attribute=%6ftp") ==
        "The query contains '%', which a secret reference query cannot hold; write it as "
        "attribute=value.");
  CHECK(refusal("op://a/b/c?attribute=+otp") ==
        "The query contains '+', which a secret reference query cannot hold; write it as "
        "attribute=value.");
  CHECK(refusal("op://a/b/c?attribute=otp ") ==
        "The query contains 0x20, which a secret reference query cannot hold; write it as "
        "attribute=value.");
  CHECK(refusal("op://a/-rf/c") ==
        "The item starts with '-', which `op` would take for an option; write the item's ID "
        "instead.");
}

TEST_CASE("a one-time code is recognised however its query is spelt", "[onepassword]") {
  CHECK(is_one_time_password(reference("op://v/i/f?attribute=otp")));
  CHECK(is_one_time_password(reference("op://v/i/f?attribute=totp")));
  CHECK(is_one_time_password(reference("op://v/i/f?Attribute=OTP")));
  CHECK(is_one_time_password(reference("op://v/i/f?ssh-format=openssh&attribute=otp")));
  CHECK(is_one_time_password(reference("op://v/i/f?attribute=TOTP&x=1")));
  CHECK_FALSE(is_one_time_password(reference("op://v/i/f")));
  CHECK_FALSE(is_one_time_password(reference("op://v/i/f?attribute=type")));
  CHECK_FALSE(is_one_time_password(reference("op://v/i/otp")));
  CHECK_FALSE(is_one_time_password(reference("op://v/i/f?attribute=otpx")));
}

TEST_CASE("three fields of one item take one item get", "[onepassword]") {
  const FakeOp op;
  Client client(op.settings(), secret(kToken));
  const auto results = fetch(
      client, {"op://Servers/db/username", "op://servers/DB/Password", "op://Servers/db/fldhost"});

  REQUIRE(results.size() == 3);
  CHECK(value(results[0]) == "admin");
  CHECK(value(results[1]) == "s3cret pass");
  CHECK(value(results[2]) == "db.internal");
  CHECK(requests_of(client) ==
        std::vector<std::pair<std::string, std::string>>{{"item get", "Servers/db"}});
  CHECK(op.argvs() == std::vector<json>{kItemGetDb});
}

TEST_CASE("two items take two item gets, in the order of the references", "[onepassword]") {
  const FakeOp op;
  Client client(op.settings(), secret(kToken));
  const auto results =
      fetch(client, {"op://Servers/api/key", "op://Servers/db/password", "op://Servers/api/key"});

  CHECK(value(results[0]) == "api-key-1");
  CHECK(value(results[1]) == "s3cret pass");
  CHECK(value(results[2]) == "api-key-1");
  CHECK(requests_of(client) == std::vector<std::pair<std::string, std::string>>{
                                   {"item get", "Servers/api"}, {"item get", "Servers/db"}});
  CHECK(op.argvs() ==
        std::vector<json>{{"item", "get", "api", "--vault", "Servers", "--format", "json"},
                          kItemGetDb});
}

TEST_CASE("a section picks one of two fields of the same name", "[onepassword]") {
  const FakeOp op;
  const auto results =
      fetch(op.settings(), {"op://Servers/db/replica/port", "op://Servers/db/sec1primary/port",
                            "op://Servers/db/port", "op://Servers/db/empty"});

  CHECK(value(results[0]) == "5433");
  CHECK(value(results[1]) == "5432");
  const Error ambiguous = error(results[2]);
  CHECK(ambiguous.failure == Failure::ambiguous);
  CHECK(ambiguous.message == "item `Servers/db` has more than one field `port`; name it by its ID");
  CHECK(value(results[3]).empty());
}

TEST_CASE("missing fields and items, and an ambiguous item, are told apart", "[onepassword]") {
  const FakeOp op;
  const auto results =
      fetch(op.settings(), {"op://Servers/db/nope", "op://Servers/db/replica/host",
                            "op://Servers/ghost/password", "op://Servers/twin/password"});

  CHECK(error(results[0]).failure == Failure::not_found);
  CHECK(error(results[0]).message == "item `Servers/db` has no field `nope`");
  CHECK(error(results[1]).failure == Failure::not_found);
  CHECK(error(results[1]).message == "item `Servers/db` has no field `host` in section `replica`");
  CHECK(error(results[2]).failure == Failure::not_found);
  CHECK(error(results[2]).message ==
        "\"ghost\" isn't an item in the \"Servers\" vault. Specify the item with its UUID, "
        "name, or domain.");
  CHECK(error(results[3]).failure == Failure::ambiguous);
  CHECK(error(results[3]).message == "More than one item matches \"twin\"");
}

TEST_CASE("a file attachment is read byte for byte with op read", "[onepassword]") {
  const FakeOp op;
  Client client(op.settings(), secret(kToken));
  const auto results = fetch(client, {"op://Servers/db/cert.bin"});

  CHECK(value(results[0]) == kAttachment);
  CHECK(requests_of(client) == std::vector<std::pair<std::string, std::string>>{
                                   {"item get", "Servers/db"}, {"read", "Servers/db"}});
  CHECK(op.argvs() ==
        std::vector<json>{kItemGetDb, {"read", "--no-newline", "op://Servers/db/cert.bin"}});
}

TEST_CASE("a reference with a query goes to op read alone", "[onepassword]") {
  const FakeOp op;
  Client client(op.settings(), secret(kToken));
  const auto results = fetch(client, {"op://Servers/db/one-time password?attribute=otp"});

  CHECK(value(results[0]) == one_time_code(kOtpSecret));
  CHECK(op.argvs() == std::vector<json>{{"read", "--no-newline",
                                         "op://Servers/db/one-time password?attribute=otp"}});
}

TEST_CASE("a changed value in 1Password is fetched by the next fetch", "[onepassword]") {
  const FakeOp op;
  Client client(op.settings(), secret(kToken));
  CHECK(value(fetch(client, {"op://Servers/api/key"})[0]) == "api-key-1");

  json changed = account();
  changed["vaults"][0]["items"][1]["fields"][0]["value"] = "api-key-2";
  op.save(changed);
  CHECK(value(fetch(client, {"op://Servers/api/key"})[0]) == "api-key-2");
  CHECK(requests_of(client) ==
        std::vector<std::pair<std::string, std::string>>{{"item get", "Servers/api"}});
}

TEST_CASE("a refused token fails every reference after one run", "[onepassword]") {
  const FakeOp op;
  const auto results = fetch(op.settings(), {"op://Servers/db/password", "op://Servers/api/key"},
                             "ops_not-the-right-token");

  for (const Result& result : results) {
    CHECK(error(result).failure == Failure::auth);
    CHECK(error(result).message ==
          "error initializing client: Validation: (failed to session.DecodeSACredentials), "
          "Server: (failed to DecodeSACredentials), failed to parseToken, format is invalid");
  }
  CHECK(op.calls().size() == 1);
}

TEST_CASE("a rate limit answer fails every reference after one run", "[onepassword]") {
  const FakeOp op;
  op.set_mode("rate_limited");
  const auto results = fetch(op.settings(), {"op://Servers/db/password", "op://Servers/api/key",
                                             "op://Servers/db/otp?attribute=otp"});

  for (const Result& result : results) {
    CHECK(error(result).failure == Failure::rate_limited);
    CHECK(error(result).message ==
          "(429) Too Many Requests: You've reached the maximum number of requests");
  }
  CHECK(op.calls().size() == 1);
}

TEST_CASE("a revoked token and a network failure are classified", "[onepassword]") {
  const FakeOp op;
  op.set_mode("revoked");
  CHECK(error(fetch(op.settings(), {"op://Servers/db/password"})[0]).failure == Failure::auth);

  op.set_mode("down");
  const Error down = error(fetch(op.settings(), {"op://Servers/db/password"})[0]);
  CHECK(down.failure == Failure::failed);
  CHECK(down.message ==
        "error initializing client: Post \"https://my.1password.com/api/v2/auth/start\": dial "
        "tcp: lookup my.1password.com: no such host");
}

TEST_CASE("an op that hangs is killed at the timeout and reaped", "[onepassword]") {
  const FakeOp op;
  op.set_mode("hang");
  Settings settings = op.settings();
  settings.timeout = std::chrono::milliseconds(300);

  const auto start = std::chrono::steady_clock::now();
  // Two items: the first timeout ends the fetch, so the second waits for nothing.
  const auto results = fetch(settings, {"op://Servers/db/password", "op://Servers/web/key"});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const Error timeout = error(results[0]);
  CHECK(error(results[1]).failure == Failure::timeout);

  CHECK(timeout.failure == Failure::timeout);
  CHECK(timeout.message ==
        "`" + op.op().string() + "` did not finish within 300 ms and was killed");
  CHECK(elapsed < std::chrono::seconds(5));
  const auto calls = op.calls();
  REQUIRE(calls.size() == 1);
  const pid_t pid = calls[0]["pid"].get<pid_t>();
  CHECK(::kill(pid, 0) == -1);
  CHECK(errno == ESRCH);
}

TEST_CASE("op sees only a clean environment, /dev/null and a private config folder",
          "[onepassword]") {
  const FakeOp op;
  REQUIRE(::setenv("OP_CONNECT_HOST", "http://connect.invalid", 1) == 0);
  REQUIRE(::setenv("OP_CONNECT_TOKEN", "connect-token", 1) == 0);
  const auto results = fetch(op.settings(), {"op://Servers/db/password"});
  ::unsetenv("OP_CONNECT_HOST");
  ::unsetenv("OP_CONNECT_TOKEN");

  CHECK(value(results[0]) == "s3cret pass");
  const auto calls = op.calls();
  REQUIRE(calls.size() == 1);
  auto environment = calls[0]["env"].get<std::vector<std::string>>();
  std::erase(environment, "PWD");  // the test's /bin/sh wrapper adds it on its way to fake_op
  CHECK(environment == kChildEnvironment);
  CHECK(calls[0]["stdin"] == "devnull");
  CHECK(calls[0]["config_dir_mode"] == "0700");
  CHECK((fs::status(op.config()).permissions() & fs::perms::all) == fs::perms::owner_all);
}

TEST_CASE("a config folder others can read is refused before op runs", "[onepassword]") {
  const FakeOp op;
  fs::create_directories(op.config());
  fs::permissions(op.config(), fs::perms(0750));
  const Error refused = error(fetch(op.settings(), {"op://Servers/db/password"})[0]);

  CHECK(refused.failure == Failure::failed);
  CHECK(refused.message == "`op`'s configuration folder " + op.config().string() +
                               ": mode 0750 gives access to group or others; chmod 700 it");
  CHECK(op.calls().empty());
}

TEST_CASE("a value over max_value_size is too large; an item's JSON may be larger",
          "[onepassword]") {
  const FakeOp op;
  Settings settings = op.settings();
  settings.max_value_size = 4;
  const auto results = fetch(settings, {"op://Servers/db/password", "op://Servers/db/host"});
  const Error large = error(results[0]);
  CHECK(large.failure == Failure::too_large);
  CHECK(large.message == "the value is larger than 4 bytes (max_secret_size)");
  settings.max_value_size = 11;
  CHECK(value(fetch(settings, {"op://Servers/db/host"})[0]) == "db.internal");
}

TEST_CASE("a missing op program is reported", "[onepassword]") {
  const FakeOp op;
  Settings settings = op.settings();
  settings.op = op.path("no-such-op");
  const Error absent = error(fetch(settings, {"op://Servers/db/password"})[0]);
  CHECK(absent.failure == Failure::unusable);
  CHECK(absent.message == "cannot run `" + settings.op.string() + "`: No such file or directory");

  settings.op = "secretfs-no-such-op";
  const Error missing = error(fetch(settings, {"op://Servers/db/password"})[0]);
  CHECK(missing.failure == Failure::unusable);
  CHECK(missing.message ==
        "cannot run `secretfs-no-such-op`: not found in PATH; give its full path as op");
}

TEST_CASE("an op program that others could change is never run with the token",
          "[onepassword]") {
  const FakeOp op;
  REQUIRE(::chmod(op.op().c_str(), 0775) == 0);
  const Error refused = error(fetch(op.settings(), {"op://Servers/db/password"})[0]);
  CHECK(refused.failure == Failure::unusable);
  CHECK(refused.message == "refusing to run `" + op.op().string() + "` with the token: " +
                               op.op().string() +
                               " (mode 0775) may be changed by group or others; chmod go-w it");
  CHECK(op.calls().empty());
}

TEST_CASE("op's error lines are classified by their words", "[onepassword]") {
  const std::string line = "[ERROR] 2026/12/04 12:00:00 More than one item matches \"x\"\n";
  CHECK(error_from_diagnostics(line, 1).message == "More than one item matches \"x\"");
  CHECK(error_from_diagnostics(line, 1).failure == Failure::ambiguous);
  CHECK(error_from_diagnostics("", 2).message ==
        "`op` exited with status 2 without an error line");
  // Anything but an error line could be a crash's dump of what `op` handled: never repeated.
  CHECK(error_from_diagnostics("panic: value=hunter2\n", 2).message ==
        "`op` exited with status 2 without an error line");
  // Control characters never reach a terminal or a log as they are.
  CHECK(error_from_diagnostics("[ERROR] 2026/12/04 12:00:00 a\x1b[2Jb\rc\xc2\x9b"
                               "d\n",
                               1)
            .message == "a?[2Jb?c?d");

  CHECK(classify("Too many requests. Your client has been rate limited") == Failure::rate_limited);
  CHECK(classify("(401) Unauthorized") == Failure::auth);
  CHECK(classify("the service account has expired") == Failure::auth);
  CHECK(classify("could not read secret 'op://v/db-429/x': item 'v/db-429' does not have a "
                 "field 'x'") == Failure::not_found);
  CHECK(classify("\"db-429\" isn't an item in the \"v\" vault.") == Failure::not_found);
  CHECK(classify("\"v\" isn't a vault in this account.") == Failure::not_found);
  CHECK(classify("connection reset by peer") == Failure::failed);
}

TEST_CASE("a token file is read like an identity file", "[onepassword]") {
  const TempDir dir;
  const fs::path path = dir / "token";

  write_file(path, "  ops_abc.DEF-123\n\n");
  CHECK(read_token_file(path).view() == "ops_abc.DEF-123");

  write_file(path, "ops_abc\n", fs::perms(0640));
  CHECK(error_of_token_file(path) ==
        "token file " + path.string() +
            ": mode 0640 gives access to group or others; chmod 600 it");

  write_file(path, " \n\t\n");
  CHECK(error_of_token_file(path) ==
        "token file " + path.string() +
            ": empty; write the service account token (ops_...) into it");

  write_file(path, "ops_abc\nops_def\n");
  CHECK(error_of_token_file(path) ==
        "token file " + path.string() +
            ": holds more than one line or a control character; a token is one line");

  write_file(dir / "real", "ops_abc\n");
  fs::create_symlink(dir / "real", dir / "link");
  CHECK(error_of_token_file(dir / "link") ==
        "token file " + (dir / "link").string() +
            ": cannot open: is a symbolic link, which is refused");

  // Whoever may write to its folder can rename another token over it.
  const fs::path shared = dir / "shared";
  fs::create_directory(shared);
  fs::permissions(shared, fs::perms(0777));
  write_file(shared / "token", "ops_abc\n");
  CHECK(error_of_token_file(shared / "token") ==
        "token file " + (shared / "token").string() + ": its folder " + shared.string() +
            " (owner uid " + std::to_string(::geteuid()) +
            ", mode 0777) lets group or others replace the file; chmod go-w " + shared.string() +
            ", or keep the file in a folder only root may change");
  fs::permissions(shared, fs::perms(01777));
  CHECK(read_token_file(shared / "token").view() == "ops_abc");
}

namespace {

secretfs::SecretBytes bytes_of(std::string_view text) {
  return secretfs::SecretBytes::copy_of(
      {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

std::string reason_of(std::string_view text) {
  const auto item = secretfs::onepassword::parse_item(bytes_of(text));
  const auto* reason = std::get_if<std::string>(&item);
  return reason != nullptr ? *reason : "read";
}

}  // namespace

TEST_CASE("an item's JSON is decoded in locked memory, escapes and all", "[onepassword]") {
  namespace op = secretfs::onepassword;
  const auto item = op::parse_item(bytes_of(
      R"({"id":"i","fields":[{"id":"p","label":"pass",)"
      R"("value":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"},)"
      R"({"id":"e","label":"empty"},{"id":"n","label":"num","value":12.5e-1},)"
      R"({"id":"k","label":"key","value":"in section","section":{"id":"s","label":"Admin"}}],)"
      R"("files":[{"id":"f","name":"key.der","size":3}],"urls":[true,false,null,[],{}]})"));
  REQUIRE(std::holds_alternative<op::Item>(item));
  const op::Item& parsed = std::get<op::Item>(item);
  REQUIRE(parsed.fields.size() == 4);
  CHECK(parsed.fields[0].value->view() == "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  CHECK_FALSE(parsed.fields[1].value.has_value());
  CHECK_FALSE(parsed.fields[2].value_is_text);
  CHECK(parsed.fields[3].section_label.view() == "Admin");
  REQUIRE(parsed.files.size() == 1);
  CHECK(parsed.files[0].name.view() == "key.der");

  const op::Reference in_section{"op://v/i/Admin/key", "v", "i", "Admin", "key", ""};
  const auto picked = op::pick_field(parsed, in_section);
  REQUIRE(std::holds_alternative<secretfs::SecretBytes>(picked));
  CHECK(std::get<secretfs::SecretBytes>(picked).view() == "in section");
  const op::Reference empty{"op://v/i/empty", "v", "i", "", "EMPTY", ""};
  CHECK(std::get<secretfs::SecretBytes>(op::pick_field(parsed, empty)).empty());
  const op::Reference number{"op://v/i/num", "v", "i", "", "num", ""};
  CHECK(std::get<op::Error>(op::pick_field(parsed, number)).message ==
        "item `v/i`: field `num` holds no text value");
}

TEST_CASE("what is not an item's JSON is refused with where, never with its text",
          "[onepassword]") {
  CHECK(reason_of("") == "not a JSON object");
  CHECK(reason_of("[1]") == "not a JSON object");
  CHECK(reason_of(R"({"fields":[{"value":"secret)") == "unexpected end at byte 27");
  CHECK(reason_of(R"({"fields":[{"value":"a\qb"}]})") == "a bad escape at byte 24");
  CHECK(reason_of(R"({"fields":[{"value":"\ud800"}]})") == "a lone high surrogate at byte 28");
  CHECK(reason_of(R"({"fields":[{"value":"\udc00"}]})") == "a lone low surrogate at byte 27");
  CHECK(reason_of("{\"a\":\"x\ty\"}") == "a control character inside a string at byte 8");
  CHECK(reason_of(R"({"a":01})") == "unexpected character at byte 6");
  CHECK(reason_of(R"({"a":1} x)") == "text after the item at byte 8");
  CHECK(reason_of(std::string(40, '[').insert(0, "{\"a\":")) == "nested too deeply at byte 37");
}
