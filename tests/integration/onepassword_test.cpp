// Secrets read from 1Password, through a real mount, with the tests' stand-in `op`
// (tests/onepassword/fake_op.cpp, which the build names in FAKE_OP): first read, a value that
// changes while mounted, failures that keep the last good value, rate limits answered with a
// growing wait, a boot without 1Password, a reboot offline, a rollback to a reference that no
// longer resolves, binary values, and a token file that others can read.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <nlohmann/json.hpp>
#include <thread>

#include "scenario.hpp"

using namespace secretfs::test;
using nlohmann::json;

namespace {

constexpr auto kPoll = std::chrono::milliseconds(50);
constexpr int kPolls = 200;  // 10 s
const std::string kToken = "ops_throwaway-test-token";
const Reader kRoot{0, 0, {}};

std::string cli() {
  return shell_quoted(binary());
}

std::filesystem::path fake_op() {
  const char* path = std::getenv("FAKE_OP");
  REQUIRE(path != nullptr);
  return path;
}

json field(const std::string& label, const std::string& value) {
  return {{"id", label + "-id"}, {"type", "CONCEALED"}, {"label", label}, {"value", value}};
}

// A stand-in 1Password account: a vault "Prod" with the item "db" (fields password and user)
// and the item "tls" (a binary file attachment), reachable with kToken.
class Account {
 public:
  explicit Account(const Scenario& scenario) : data_(scenario.dir() / "op-data") {
    std::filesystem::create_directories(data_);
    op_ = scenario.dir() / "op";
    write_file(op_, "#!/bin/sh\nexec " + shell_quoted(fake_op()) + " " + shell_quoted(data_) +
                        " \"$@\"\n",
               0755);
    token_file_ = scenario.dir() / "op-token";
    write_file(token_file_, kToken + "\n", 0600);
    set("password", "hunter2");
  }

  // Gives `label` of item db the value `value` (written whole, as 1Password would change it).
  void set(const std::string& label, const std::string& value) {
    fields_[label] = value;
    json fields = json::array();
    for (const auto& [name, text] : fields_) {
      fields.push_back(field(name, text));
    }
    const json account = {
        {"token", kToken},
        {"vaults",
         {{{"id", "vault-prod"},
           {"name", "Prod"},
           {"items",
            {{{"id", "item-db"},
              {"title", "db"},
              {"version", 1},
              {"vault", {{"id", "vault-prod"}, {"name", "Prod"}}},
              {"category", "LOGIN"},
              {"fields", fields}},
             {{"id", "item-tls"},
              {"title", "tls"},
              {"version", 1},
              {"vault", {{"id", "vault-prod"}, {"name", "Prod"}}},
              {"category", "DOCUMENT"},
              {"fields", json::array()},
              {"files",
               {{{"id", "file-key"},
                 {"name", "key.der"},
                 {"size", 256},
                 {"content_path", "/v1/vaults/vault-prod/items/item-tls/files/file-key/content"},
                 {"content_base64", binary_base64()}}}}}}}}}}};
    const auto temporary = data_ / "account.json.new";
    write_file(temporary, account.dump(), 0644);
    std::filesystem::rename(temporary, data_ / "account.json");
  }

  void remove(const std::string& label) {
    fields_.erase(label);
    set(fields_.begin()->first, fields_.begin()->second);
  }

  // rate_limited, down, hang, revoked; "" for normal answers.
  void mode(const std::string& mode) {
    if (mode.empty()) {
      std::filesystem::remove(data_ / "mode");
    } else {
      write_file(data_ / "mode", mode + "\n", 0644);
    }
  }

  std::vector<json> calls() const {
    std::vector<json> calls;
    std::ifstream file(data_ / "calls.jsonl");
    for (std::string line; std::getline(file, line);) {
      if (!line.empty()) {
        calls.push_back(json::parse(line));
      }
    }
    return calls;
  }

  // The [onepassword] table for this account.
  std::string settings(const std::string& refresh = "1h", const std::string& retry = "1m") const {
    return "[onepassword]\ntoken_file = \"" + token_file_.string() + "\"\nop = \"" +
           op_.string() + "\"\nrefresh = \"" + refresh + "\"\nretry = \"" + retry +
           "\"\ntimeout = \"5s\"\n\n";
  }

  const std::filesystem::path& token_file() const { return token_file_; }

  // Every byte value, for a binary attachment.
  static std::string binary_value() { return pattern(256); }

 private:
  static std::string binary_base64() {
    static const char* const kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const std::string bytes = binary_value();
    std::string text;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
      const std::uint32_t chunk =
          (static_cast<std::uint8_t>(bytes[i]) << 16) |
          (i + 1 < bytes.size() ? static_cast<std::uint8_t>(bytes[i + 1]) << 8 : 0) |
          (i + 2 < bytes.size() ? static_cast<std::uint8_t>(bytes[i + 2]) : 0);
      text += kAlphabet[(chunk >> 18) & 63];
      text += kAlphabet[(chunk >> 12) & 63];
      text += i + 1 < bytes.size() ? kAlphabet[(chunk >> 6) & 63] : '=';
      text += i + 2 < bytes.size() ? kAlphabet[chunk & 63] : '=';
    }
    return text;
  }

  std::filesystem::path data_;
  std::filesystem::path op_;
  std::filesystem::path token_file_;
  std::map<std::string, std::string> fields_;
};

std::string op_secret(const std::string& name, const std::string& reference,
                      const std::string& extra = "") {
  return "[secrets.\"" + name + "\"]\nsource = \"" + reference + "\"\nowner = " +
         std::to_string(kOwner) + "\n" + extra;
}

// Reads `path` as the owner until it gives `wanted` (the refresher works in the background).
ReadResult read_until(const std::filesystem::path& path, const std::string& wanted) {
  ReadResult result = read_as(path, kOwnerReader);
  for (int i = 0; i < kPolls && (result.error != 0 || result.content != wanted); ++i) {
    std::this_thread::sleep_for(kPoll);
    result = read_as(path, kOwnerReader);
  }
  return result;
}

json status_of(const Scenario& scenario) {
  return json::parse(output_of(cli() + " status --json --state-dir " +
                               shell_quoted(scenario.state_dir())));
}

// The daemon's status once `pred` holds for it (or the last one after 10 s).
template <typename Predicate>
json status_when(const Scenario& scenario, Predicate pred) {
  json status = status_of(scenario);
  for (int i = 0; i < kPolls && !pred(status); ++i) {
    std::this_thread::sleep_for(kPoll);
    status = status_of(scenario);
  }
  return status;
}

bool warns(const json& status, const std::string& text) {
  for (const auto& warning : status.value("warnings", json::array())) {
    if (warning.get<std::string>().find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::size_t item_gets(const std::vector<json>& calls) {
  std::size_t count = 0;
  for (const auto& call : calls) {
    const auto& argv = call.at("argv");
    if (argv.size() >= 2 && argv[0] == "item" && argv[1] == "get") {
      ++count;
    }
  }
  return count;
}

// Whether any file under `folder` holds `text`.
bool any_file_holds(const std::filesystem::path& folder, const std::string& text) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(folder)) {
    if (entry.is_regular_file() && read_file(entry.path()).find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// Environment of the daemons started below: Connect variables that `op` must never see.
struct ConnectVariables {
  ConnectVariables() {
    ::setenv("OP_CONNECT_HOST", "http://connect.invalid", 1);
    ::setenv("OP_CONNECT_TOKEN", "connect-token", 1);
  }
  ~ConnectVariables() {
    ::unsetenv("OP_CONNECT_HOST");
    ::unsetenv("OP_CONNECT_TOKEN");
  }
};

}  // namespace

TEST_CASE("values from 1Password are read once per item and served to their owner",
          "[onepassword]") {
  const ConnectVariables connect;
  Scenario scenario;
  Account account(scenario);
  account.set("user", "app");
  scenario.age_file("plain.age", "from a file");
  const auto manifest = scenario.manifest(
      account.settings() + op_secret("db/password", "op://Prod/db/password") +
      op_secret("db/user", "op://prod/DB/user") +
      "[secrets.\"plain\"]\nfile = \"plain.age\"\nowner = " + std::to_string(kOwner) + "\n");
  Mount mount(manifest, scenario.mount_point());

  CHECK(read_as(mount / "plain", kOwnerReader).content == "from a file");
  CHECK(read_until(mount / "db/password", "hunter2").content == "hunter2");
  CHECK(read_until(mount / "db/user", "app").content == "app");
  CHECK(read_as(mount / "db/password", kStrangerReader).error == EACCES);

  const auto calls = account.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].at("argv") ==
        json({"item", "get", "db", "--vault", "Prod", "--format", "json"}));
  const auto env = calls[0].at("env");
  CHECK(std::find(env.begin(), env.end(), "OP_SERVICE_ACCOUNT_TOKEN") != env.end());
  CHECK(std::find(env.begin(), env.end(), "OP_CONNECT_HOST") == env.end());
  CHECK(std::find(env.begin(), env.end(), "OP_CONNECT_TOKEN") == env.end());
  CHECK(calls[0].at("stdin") == "devnull");
  CHECK(calls[0].at("config_dir_mode") == "0700");

  // Encrypted at rest: neither value is anywhere in the state directory.
  CHECK_FALSE(any_file_holds(scenario.state_dir(), "hunter2"));
  CHECK_FALSE(any_file_holds(scenario.state_dir(), kToken));
}

TEST_CASE("a value changed in 1Password reaches new opens; open files keep their bytes",
          "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  const auto systemctl_log = scenario.dir() / "systemctl.log";
  write_file(scenario.dir() / "systemctl",
             "#!/bin/sh\necho \"$@\" >> " + shell_quoted(systemctl_log) + "\n", 0755);
  ::setenv("SECRETFS_SYSTEMCTL", (scenario.dir() / "systemctl").c_str(), 1);
  const auto audit_log = scenario.dir() / "audit.jsonl";
  const auto manifest = scenario.manifest(
      "audit_log = \"" + audit_log.string() + "\"\n" + account.settings("1s", "200ms") +
      op_secret("db/password", "op://Prod/db/password",
                "restart_units = [\"app.service\"]\nreload_units = [\"proxy.service\"]\n"));
  Mount mount(manifest, scenario.mount_point());
  ::unsetenv("SECRETFS_SYSTEMCTL");
  REQUIRE(read_until(mount / "db/password", "hunter2").content == "hunter2");

  // An open file descriptor keeps what it opened.
  const int held = ::open((mount / "db/password").c_str(), O_RDONLY);
  REQUIRE(held >= 0);
  account.set("password", "correct horse");
  CHECK(read_until(mount / "db/password", "correct horse").content == "correct horse");
  char buffer[64] = {};
  CHECK(::read(held, buffer, sizeof buffer) == 7);
  CHECK(std::string(buffer) == "hunter2");
  ::close(held);

  // Once when the first value came (the service could not read it before), once for the change.
  const std::string twice =
      "--no-block try-restart -- app.service\n"
      "--no-block try-reload-or-restart -- proxy.service\n"
      "--no-block try-restart -- app.service\n"
      "--no-block try-reload-or-restart -- proxy.service\n";
  std::string units;
  for (int i = 0; i < kPolls && units != twice; ++i) {
    std::this_thread::sleep_for(kPoll);
    units = std::filesystem::exists(systemctl_log) ? read_file(systemctl_log) : "";
  }
  CHECK(units == twice);
  std::string audit;
  for (int i = 0; i < kPolls && audit.find("\"refreshed\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(kPoll);
    audit = std::filesystem::exists(audit_log) ? read_file(audit_log) : "";
  }
  CHECK(audit.find(R"("secret":"db/password","generation":1,"uid":0,"gid":0,)") !=
        std::string::npos);
  CHECK(audit.find("correct horse") == std::string::npos);
  CHECK_FALSE(any_file_holds(scenario.state_dir(), "correct horse"));
}

TEST_CASE("a rate limit keeps the last value and is retried after a doubling wait",
          "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  const auto manifest = scenario.manifest(account.settings("4s", "250ms") +
                                          op_secret("db/password", "op://Prod/db/password"));
  Mount mount(manifest, scenario.mount_point());
  REQUIRE(read_until(mount / "db/password", "hunter2").content == "hunter2");

  account.mode("rate_limited");
  const auto first = account.calls().size();
  // The next read is due within 4 s; then waits of 250, 500, 1000 and 2000 ms follow.
  std::this_thread::sleep_for(std::chrono::milliseconds(8500));
  CHECK(read_as(mount / "db/password", kOwnerReader).content == "hunter2");
  const auto status = status_of(scenario);
  CHECK(warns(status, "secret `db/password` (op://Prod/db/password): serving the value read "));
  CHECK(warns(status, "reading it again failed: rate limited: "));

  const auto calls = account.calls();
  REQUIRE(calls.size() >= first + 4);
  std::vector<double> gaps;
  for (std::size_t i = first + 1; i < calls.size(); ++i) {
    gaps.push_back(calls[i].at("time").get<double>() - calls[i - 1].at("time").get<double>());
  }
  INFO("gaps between failed reads: " << json(gaps).dump());
  // Never a tight loop: each wait at least the doubled one before it (less scheduling slack).
  double wanted = 0.25;
  for (const double gap : gaps) {
    CHECK(gap >= wanted * 0.9);
    wanted = std::min(wanted * 2, 4.0);
  }
}

TEST_CASE("without 1Password at boot the mount and age files come up; values follow later",
          "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  account.mode("down");
  scenario.age_file("plain.age", "from a file");
  const auto manifest =
      scenario.manifest(account.settings("1h", "300ms") +
                        op_secret("db/password", "op://Prod/db/password") +
                        "[secrets.\"plain\"]\nfile = \"plain.age\"\nowner = " +
                        std::to_string(kOwner) + "\n");
  Mount mount(manifest, scenario.mount_point());
  CHECK(read_as(mount / "plain", kOwnerReader).content == "from a file");
  CHECK(read_as(mount / "db/password", kOwnerReader).error == EIO);
  const auto status = status_when(scenario, [](const json& s) {
    return warns(s, "no value from 1Password yet");
  });
  CHECK(warns(status,
              "secret `db/password` (op://Prod/db/password): no value from 1Password yet, "
              "opening it fails with EIO: failed: "));
  const auto listing = json::parse(output_of(cli() + " list --json --state-dir " +
                                             shell_quoted(scenario.state_dir())));
  CHECK(listing.at("secrets").at(0).at("problems") ==
        json::array({"secret `db/password`: no value from 1Password yet, opening it fails with "
                     "EIO (see `secretfs status`)"}));

  account.mode("");
  CHECK(read_until(mount / "db/password", "hunter2").content == "hunter2");
  CHECK_FALSE(warns(status_of(scenario), "db/password"));
}

TEST_CASE("a reboot without 1Password serves the cached values at once", "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  const auto manifest = scenario.manifest(account.settings() +
                                          op_secret("tls/key", "op://Prod/tls/key.der"));
  {
    Mount mount(manifest, scenario.mount_point());
    REQUIRE(read_until(mount / "tls/key", Account::binary_value()).content ==
            Account::binary_value());
  }
  account.mode("down");
  const auto calls = account.calls().size();
  Mount again(manifest, scenario.mount_point());
  const auto result = read_as(again / "tls/key", kOwnerReader);
  CHECK(result.error == 0);
  CHECK(result.content == Account::binary_value());  // every byte value, exactly
  struct stat status {};
  REQUIRE(::stat((again / "tls/key").c_str(), &status) == 0);
  CHECK(status.st_size == 256);
  // The value is fresh (read within the hour): the restart asks 1Password nothing.
  CHECK(account.calls().size() == calls);
}

TEST_CASE("a rollback serves the last value of a reference that no longer resolves",
          "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  account.set("old", "old value");
  const auto first = scenario.manifest(account.settings("1s", "200ms") +
                                       op_secret("db/password", "op://Prod/db/old"));
  REQUIRE(run(cli() + " activate --manifest " + shell_quoted(first)) == 0);
  const auto second = scenario.manifest(account.settings("1s", "200ms") +
                                        op_secret("db/password", "op://Prod/db/password"));
  REQUIRE(run(cli() + " activate --manifest " + shell_quoted(second)) == 0);
  account.remove("old");

  Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
  CHECK(read_until(mount / "db/password", "hunter2").content == "hunter2");
  REQUIRE(run(cli() + " rollback --state-dir " + shell_quoted(scenario.state_dir())) == 0);
  CHECK(read_as(mount / "db/password", kOwnerReader).content == "old value");
  const auto status = status_when(scenario, [](const json& s) { return warns(s, "not found"); });
  CHECK(warns(status, "secret `db/password` (op://Prod/db/old): serving the value read "));
  CHECK(warns(status, "reading it again failed: not found: "));
  CHECK(read_as(mount / "db/password", kOwnerReader).content == "old value");
}

TEST_CASE("activate reads new references, and refuses one that does not exist",
          "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  const auto report = scenario.dir() / "report";
  const auto missing = scenario.manifest(account.settings() +
                                         op_secret("db/password", "op://Prod/db/nothing"));
  CHECK(run(cli() + " activate --manifest " + shell_quoted(missing) + " 2> " +
            shell_quoted(report)) == 1);
  CHECK(read_file(report).find("error: secret `db/password` (op://Prod/db/nothing): 1Password: "
                               "not found: ") == 0);
  CHECK_FALSE(std::filesystem::exists(scenario.state_dir() / "current"));

  const auto good = scenario.manifest(account.settings() +
                                      op_secret("db/password", "op://Prod/db/password"));
  CHECK(run(cli() + " check --manifest " + shell_quoted(good) + " > " + shell_quoted(report)) == 0);
  CHECK(read_file(report) == good.string() + ": 1 secret, 0 problems\n");
  CHECK(run(cli() + " activate --manifest " + shell_quoted(good)) == 0);
  CHECK(item_gets(account.calls()) == 3);  // the refused activation, check, this activation
  const auto generations = json::parse(output_of(cli() + " generations --json --state-dir " +
                                                 shell_quoted(scenario.state_dir())));
  CHECK(generations.at(0).at("secrets") == 1);
  // A second activation asks nothing: the value is cached.
  CHECK(run(cli() + " activate --manifest " + shell_quoted(good)) == 0);
  CHECK(item_gets(account.calls()) == 3);

  // An unreachable 1Password does not stop a switch that has a cached value.
  account.mode("down");
  CHECK(run(cli() + " activate --manifest " + shell_quoted(good)) == 0);
}

TEST_CASE("a token file that others can read is refused", "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  REQUIRE(::chmod(account.token_file().c_str(), 0644) == 0);
  const auto report = scenario.dir() / "report";
  const auto manifest = scenario.manifest(account.settings() +
                                          op_secret("db/password", "op://Prod/db/password"));
  const std::string refusal = "error: [onepassword]: cannot run op: token file " +
                              account.token_file().string() +
                              ": mode 0644 gives access to group or others; chmod 600 it\n";
  CHECK(run(cli() + " check --manifest " + shell_quoted(manifest) + " > " +
            shell_quoted(report)) == 1);
  CHECK(read_file(report) == refusal + manifest.string() + ": 1 secret, 1 problem\n");
  CHECK(run(cli() + " activate --manifest " + shell_quoted(manifest) + " 2> " +
            shell_quoted(report)) == 1);
  CHECK(read_file(report) == refusal +
                                 "secretfs: 1 problem; nothing was activated and the current "
                                 "generation keeps serving\n");
  CHECK(account.calls().empty());

  // Also when every value is cached and nothing has to be read: the daemon will need it.
  REQUIRE(::chmod(account.token_file().c_str(), 0600) == 0);
  REQUIRE(run(cli() + " activate --manifest " + shell_quoted(manifest) + " > /dev/null") == 0);
  REQUIRE(::chmod(account.token_file().c_str(), 0640) == 0);
  CHECK(run(cli() + " activate --manifest " + shell_quoted(manifest) + " 2> " +
            shell_quoted(report)) == 1);
  CHECK(read_file(report) == "error: [onepassword]: cannot run op: token file " +
                                 account.token_file().string() +
                                 ": mode 0640 gives access to group or others; chmod 600 it\n"
                                 "secretfs: 1 problem; nothing was activated and the current "
                                 "generation keeps serving\n");
  CHECK(account.calls().size() == 1);

  // A token file that is not there (yet) is said, not refused: references keep their form check.
  std::filesystem::remove(account.token_file());
  CHECK(run(cli() + " check --manifest " + shell_quoted(manifest) + " > " +
            shell_quoted(report)) == 0);
  CHECK(read_file(report) == "warning: [onepassword]: token file " +
                                 account.token_file().string() +
                                 " does not exist here: 1Password references were checked for "
                                 "their form only\n" +
                                 manifest.string() + ": 1 secret, 0 problems\n");
  CHECK(run(cli() + " activate --manifest " + shell_quoted(manifest) + " 2> " +
            shell_quoted(report) + " > /dev/null") == 0);
  CHECK(read_file(report).find("warning: [onepassword]: authentication failed: token file " +
                               account.token_file().string() + ": cannot open: No such file or "
                               "directory; the cached values are served") == 0);

  // `op` is judged without a token all the same.
  const auto no_op = scenario.manifest(
      std::regex_replace(account.settings(), std::regex("op = \"[^\"]*\""),
                         "op = \"/nonexistent/op\"") +
      op_secret("db/password", "op://Prod/db/password"));
  CHECK(run(cli() + " check --manifest " + shell_quoted(no_op) + " > " + shell_quoted(report)) ==
        1);
  CHECK(read_file(report).find("error: [onepassword]: cannot run op: cannot run "
                               "`/nonexistent/op`: ") != std::string::npos);
}

TEST_CASE("a value that a later activation reads is listed as changed and warned of no more",
          "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  account.mode("down");
  const auto manifest = scenario.manifest(account.settings() +
                                          op_secret("db/password", "op://Prod/db/password"));
  const std::string activate = cli() + " activate --json --manifest " + shell_quoted(manifest);
  REQUIRE(run(activate + " > /dev/null 2>&1") == 0);
  Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
  CHECK(read_as(mount / "db/password", kOwnerReader).error == EIO);
  REQUIRE(warns(status_when(scenario,
                            [](const json& s) { return warns(s, "no value from 1Password"); }),
                "no value from 1Password"));

  // The daemon would try again in a minute; this activation reads the value first.
  account.mode("");
  const json report = json::parse(output_of(activate));
  CHECK(report.at("created") == false);
  CHECK(report.at("changed") == json::array({"db/password"}));
  CHECK(read_as(mount / "db/password", kOwnerReader).content == "hunter2");
  CHECK_FALSE(warns(status_when(scenario, [](const json& s) { return !warns(s, "db/password"); }),
                    "db/password"));
}

TEST_CASE("a shorter refresh takes effect at the switch that sets it", "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  const auto slow = scenario.manifest(account.settings("1h") +
                                      op_secret("db/password", "op://Prod/db/password"));
  Mount mount(slow, scenario.mount_point());
  REQUIRE(read_until(mount / "db/password", "hunter2").content == "hunter2");
  const auto fast = scenario.manifest(account.settings("1s", "200ms") +
                                      op_secret("db/password", "op://Prod/db/password"));
  REQUIRE(run(cli() + " activate --manifest " + shell_quoted(fast) + " > /dev/null") == 0);
  account.set("password", "rotated");
  CHECK(read_until(mount / "db/password", "rotated").content == "rotated");
}

TEST_CASE("each reference of an item backs off by its own failures", "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  const auto manifest = scenario.manifest(account.settings("1h", "500ms") +
                                          op_secret("db/password", "op://Prod/db/password") +
                                          op_secret("db/gone", "op://Prod/db/gone"));
  Mount mount(manifest, scenario.mount_point());
  REQUIRE(read_until(mount / "db/password", "hunter2").content == "hunter2");
  // db/gone fails at every read of the item (0, 0.5, 1.5 s...); db/password is read with it.
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  account.mode("down");
  const auto failures = [](const json& status, const std::string& reference) {
    for (const auto& value : status.at("onepassword")) {
      if (value.at("reference") == reference) {
        return value.at("failures").get<unsigned>();
      }
    }
    return 0U;
  };
  const json status = status_when(scenario, [&](const json& s) {
    return failures(s, "op://Prod/db/password") > 0;
  });
  INFO(status.dump());
  // Shared counts would make both equal; db/gone has failed at least once before the outage.
  CHECK(failures(status, "op://Prod/db/password") == 1);
  CHECK(failures(status, "op://Prod/db/gone") >= 2);
  CHECK(read_as(mount / "db/password", kOwnerReader).content == "hunter2");
}

TEST_CASE("an interrupted command takes its op with it", "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  account.mode("hang");
  const auto manifest = scenario.manifest(account.settings() +
                                          op_secret("db/password", "op://Prod/db/password"));
  const auto pid_file = scenario.dir() / "activate.pid";
  REQUIRE(run(cli() + " activate --manifest " + shell_quoted(manifest) +
              " > /dev/null 2>&1 & echo $! > " + shell_quoted(pid_file)) == 0);
  std::vector<json> calls;
  for (int i = 0; i < kPolls && calls.empty(); ++i) {
    std::this_thread::sleep_for(kPoll);
    calls = account.calls();
  }
  REQUIRE(calls.size() == 1);
  const pid_t command = std::stoi(read_file(pid_file));
  const pid_t op = calls[0].at("pid").get<pid_t>();
  REQUIRE(::kill(command, SIGINT) == 0);

  // Gone, or a zombie waiting for init: either way no longer running with the token.
  const auto running = [](pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string fields;
    std::getline(stat, fields);
    const auto end = fields.rfind(')');
    return end != std::string::npos && end + 2 < fields.size() && fields[end + 2] != 'Z';
  };
  bool op_running = true;
  bool command_running = true;
  // Well within the 5 s timeout after which the command itself would have killed op.
  for (int i = 0; i < 40 && (op_running || command_running); ++i) {
    std::this_thread::sleep_for(kPoll);
    op_running = running(op);
    command_running = running(command);
  }
  CHECK_FALSE(op_running);
  CHECK_FALSE(command_running);
}

TEST_CASE("sync writes 1Password values into secret files, only when they changed",
          "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  write_file(scenario.dir() / "recipients.toml",
             "[users]\nhost = \"" + scenario.recipient() +
                 "\"\n[[rules]]\nfiles = \"*.age\"\nrecipients = [\"host\"]\n",
             0644);
  const auto manifest = scenario.manifest(
      account.settings() + "[secrets.\"db/password\"]\nsource = \"op://Prod/db/password\"\n"
                           "file = \"password.age\"\n");
  const auto file = scenario.dir() / "password.age";
  const std::string sync = cli() + " sync --manifest " + shell_quoted(manifest) + " -i " +
                           shell_quoted(scenario.key());
  CHECK(output_of(sync) ==
        file.string() + ": secret `db/password`: new value encrypted to 1 recipient\n");
  const std::string decrypt =
      cli() + " decrypt -i " + shell_quoted(scenario.key()) + " " + shell_quoted(file);
  CHECK(output_of(decrypt) == "hunter2");
  const std::string before = read_file(file);
  CHECK(output_of(sync) == file.string() + ": secret `db/password`: unchanged\n");
  CHECK(read_file(file) == before);

  account.set("password", "rotated");
  CHECK(output_of(sync) ==
        file.string() + ": secret `db/password`: new value encrypted to 1 recipient\n");
  CHECK(output_of(decrypt) == "rotated");
  // The host serving the file never asks 1Password: `source` with `file` serves the file.
  const auto calls = account.calls().size();
  Mount mount(manifest, scenario.mount_point());
  CHECK(read_as(mount / "db/password", kRoot).content == "rotated");
  CHECK(account.calls().size() == calls);
}

TEST_CASE("sync refuses one-time codes and files the host would refuse", "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  account.set("big", std::string(2000, 'x'));
  write_file(scenario.dir() / "recipients.toml",
             "[users]\nhost = \"" + scenario.recipient() +
                 "\"\n[[rules]]\nfiles = \"*.age\"\nrecipients = [\"host\"]\n",
             0644);
  const auto report = scenario.dir() / "report";
  const std::string options = " --token-file " + shell_quoted(account.token_file()) + " --op " +
                              shell_quoted(scenario.dir() / "op") + " -i " +
                              shell_quoted(scenario.key()) + " 2> " + shell_quoted(report);
  const auto otp = scenario.dir() / "otp.age";
  CHECK(run(cli() + " sync 'op://Prod/db/password?Attribute=OTP' " + shell_quoted(otp) +
            options) == 1);
  CHECK(read_file(report) ==
        "secretfs: op://Prod/db/password?Attribute=OTP: a one-time password changes every 30 "
        "seconds, and secretfs serves the value it read last: read the field's secret instead "
        "(no query)\n");
  CHECK_FALSE(std::filesystem::exists(otp));

  const auto manifest = scenario.manifest(
      "max_secret_size = 1024\n" + account.settings() +
      "[secrets.\"big\"]\nsource = \"op://Prod/db/big\"\nfile = \"big.age\"\n");
  CHECK(run(cli() + " sync --manifest " + shell_quoted(manifest) + options) == 1);
  CHECK(read_file(report) == "error: secret `big`: source op://Prod/db/big: too large: the "
                             "value is larger than 1024 bytes (max_secret_size)\n"
                             "secretfs: the file was not synced\n");
  CHECK_FALSE(std::filesystem::exists(scenario.dir() / "big.age"));
  CHECK(account.calls().size() == 1);  // the one-time code was never asked for
}

TEST_CASE("fields of one item share one request at every refresh", "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  account.set("user", "app");
  const auto manifest = scenario.manifest(account.settings("1s", "200ms") +
                                          op_secret("db/password", "op://Prod/db/password") +
                                          op_secret("db/user", "op://Prod/db/user"));
  Mount mount(manifest, scenario.mount_point());
  REQUIRE(read_until(mount / "db/user", "app").content == "app");
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  const auto calls = account.calls();
  REQUIRE(calls.size() >= 3);  // the first read and at least two refreshes
  for (std::size_t i = 1; i < calls.size(); ++i) {
    INFO("call " << i << ": " << calls[i].dump());
    CHECK(calls[i].at("time").get<double>() - calls[i - 1].at("time").get<double>() > 0.5);
  }
  CHECK(item_gets(calls) == calls.size());
}

TEST_CASE("check refuses what can never work: an unsafe op, a one-time password, a value too "
          "large", "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  account.set("big", std::string(2000, 'x'));
  const auto report = scenario.dir() / "report";
  const auto manifest = scenario.manifest(
      "max_secret_size = 1024\n" + account.settings() +
      op_secret("otp", "op://Prod/db/password?attribute=otp") +
      op_secret("big", "op://Prod/db/big"));
  CHECK(run(cli() + " check --manifest " + shell_quoted(manifest) + " > " +
            shell_quoted(report)) == 1);
  CHECK(read_file(report) ==
        "error: " + manifest.string() +
            ":12: secret `otp`: source: a one-time password changes every 30 seconds, and "
            "secretfs serves the value it read last: read the field's secret instead (no "
            "query)\n"
            "error: secret `big` (op://Prod/db/big): 1Password: too large: the value is larger "
            "than 1024 bytes (max_secret_size)\n" +
            manifest.string() + ": 2 secrets, 2 problems\n");

  // An op that another user could replace never runs with the token.
  const auto op = scenario.dir() / "op";
  REQUIRE(::chmod(op.c_str(), 0777) == 0);
  const auto small = scenario.manifest(account.settings() +
                                       op_secret("db/password", "op://Prod/db/password"));
  CHECK(run(cli() + " check --manifest " + shell_quoted(small) + " > " + shell_quoted(report)) ==
        1);
  CHECK(read_file(report) == "error: [onepassword]: cannot run op: refusing to run `" +
                                 op.string() + "` with the token: " + op.string() +
                                 " (mode 0777) may be changed by group or others; chmod go-w "
                                 "it\n" +
                                 small.string() + ": 1 secret, 1 problem\n");
  CHECK(account.calls().size() == 1);  // the read of `big` above, nothing since

  // Nor through a link that another user could point elsewhere.
  REQUIRE(::chmod(op.c_str(), 0755) == 0);
  const auto open = scenario.dir() / "open";
  std::filesystem::create_directory(open);
  REQUIRE(::chmod(open.c_str(), 0777) == 0);
  std::filesystem::create_symlink(op, open / "op");
  const auto linked = scenario.manifest(
      account.settings() + op_secret("db/password", "op://Prod/db/password"));
  const std::string via_link = read_file(linked);
  write_file(linked, std::regex_replace(via_link, std::regex("op = \"[^\"]*\""),
                                        "op = \"" + (open / "op").string() + "\""),
             0600);
  CHECK(run(cli() + " check --manifest " + shell_quoted(linked) + " > " + shell_quoted(report)) ==
        1);
  CHECK(read_file(report).find("cannot run op: refusing to run `" + (open / "op").string() +
                               "` with the token: " + open.string() +
                               " (mode 0777) may be changed by group or others") !=
        std::string::npos);

  // In a sticky folder, a link that another user owns is theirs to replace.
  REQUIRE(::chmod(open.c_str(), 01777) == 0);
  REQUIRE(::lchown((open / "op").c_str(), kStranger, kStrangerGroup) == 0);
  CHECK(run(cli() + " check --manifest " + shell_quoted(linked) + " > " + shell_quoted(report)) ==
        1);
  CHECK(read_file(report).find("cannot run op: refusing to run `" + (open / "op").string() +
                               "` with the token: " + (open / "op").string() +
                               " is a link that belongs to uid " + std::to_string(kStranger) +
                               ", who may point it elsewhere") != std::string::npos);
  REQUIRE(::lchown((open / "op").c_str(), 0, 0) == 0);
  CHECK(run(cli() + " check --manifest " + shell_quoted(linked) + " > " + shell_quoted(report)) ==
        0);
  CHECK(account.calls().size() == 2);
}

TEST_CASE("new identities: activate reads again what the old ones encrypted", "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  const auto first = scenario.manifest(account.settings() +
                                       op_secret("db/password", "op://Prod/db/password"));
  REQUIRE(run(cli() + " activate --manifest " + shell_quoted(first)) == 0);
  const auto other_key = scenario.dir() / "other.key";
  REQUIRE(run(cli() + " keygen -o " + shell_quoted(other_key) + " > /dev/null") == 0);
  const auto second = scenario.manifest(
      account.settings() + op_secret("db/password", "op://Prod/db/password"),
      "\"" + other_key.string() + "\"");
  CHECK(run(cli() + " activate --manifest " + shell_quoted(second)) == 0);
  CHECK(item_gets(account.calls()) == 2);
  Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
  CHECK(read_as(mount / "db/password", kOwnerReader).content == "hunter2");
}

TEST_CASE("a value stored by activate for new identities outlives the daemon's read under way",
          "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  // The daemon's `op` (its parent runs `mount`) waits 3 s, after leaving a mark; others do not.
  const auto slow_op = scenario.dir() / "slow-op";
  const auto started = scenario.dir() / "daemon-read-started";
  write_file(slow_op,
             "#!/bin/sh\nif tr '\\0' ' ' < /proc/$PPID/cmdline | grep -q ' mount '; then touch " +
                 shell_quoted(started) + "; sleep 3; fi\nexec " +
                 shell_quoted(scenario.dir() / "op") + " \"$@\"\n",
             0755);
  const auto with_slow_op = [&](const std::string& settings) {
    return std::regex_replace(settings, std::regex("op = \"[^\"]*\""),
                              "op = \"" + slow_op.string() + "\"");
  };
  const auto first = scenario.manifest(with_slow_op(account.settings("1s", "1s")) +
                                       op_secret("db/password", "op://Prod/db/password"));
  Mount mount(first, scenario.mount_point());
  REQUIRE(read_until(mount / "db/password", "hunter2").content == "hunter2");

  // A refresh starts; meanwhile an activation brings a new key and reads the value for it.
  std::filesystem::remove(started);
  for (int i = 0; i < kPolls && !std::filesystem::exists(started); ++i) {
    std::this_thread::sleep_for(kPoll);
  }
  REQUIRE(std::filesystem::exists(started));
  const auto other_key = scenario.dir() / "other.key";
  REQUIRE(run(cli() + " keygen -o " + shell_quoted(other_key) + " > /dev/null 2>&1") == 0);
  const auto second =
      scenario.manifest(with_slow_op(account.settings("1h")) +
                            op_secret("db/password", "op://Prod/db/password"),
                        "\"" + other_key.string() + "\"");
  REQUIRE(run(cli() + " activate --manifest " + shell_quoted(second) + " > /dev/null") == 0);
  CHECK(read_as(mount / "db/password", kOwnerReader).content == "hunter2");

  // The daemon's read, encrypted for the old key, ends and must not replace that value.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  const auto result = read_as(mount / "db/password", kOwnerReader);
  CHECK(result.error == 0);
  CHECK(result.content == "hunter2");
}

TEST_CASE("status and switches do not wait for a slow systemctl", "[onepassword]") {
  Scenario scenario;
  Account account(scenario);
  const auto running = scenario.dir() / "systemctl-running";
  const auto release = scenario.dir() / "systemctl-release";
  write_file(scenario.dir() / "systemctl",
             "#!/bin/sh\ntouch " + shell_quoted(running) + "\nfor i in $(seq 300); do [ -e " +
                 shell_quoted(release) + " ] && exit 0; sleep 0.1; done\n",
             0755);
  ::setenv("SECRETFS_SYSTEMCTL", (scenario.dir() / "systemctl").c_str(), 1);
  const auto manifest = scenario.manifest(
      account.settings("1s", "200ms") +
      op_secret("db/password", "op://Prod/db/password", "restart_units = [\"app.service\"]\n"));
  Mount mount(manifest, scenario.mount_point());
  ::unsetenv("SECRETFS_SYSTEMCTL");
  for (int i = 0; i < kPolls && !std::filesystem::exists(running); ++i) {
    std::this_thread::sleep_for(kPoll);
  }
  REQUIRE(std::filesystem::exists(running));  // the first value restarts app.service

  // systemctl hangs (30 s at most); the daemon still answers.
  CHECK(run(cli() + " status --state-dir " + shell_quoted(scenario.state_dir()) +
            " > /dev/null 2>&1") == 0);
  CHECK(run(cli() + " activate --manifest " + shell_quoted(manifest) + " > /dev/null 2>&1") == 0);
  write_file(release, "", 0644);
  CHECK(read_as(mount / "db/password", kOwnerReader).content == "hunter2");
}
