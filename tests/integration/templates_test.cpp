// Templates through a real mount: rendered at open from the served generation's secrets, byte
// for byte, all or nothing, under their own owner and mode, and refused by check and activate
// with the template and the placeholder named.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "scenario.hpp"

using namespace secretfs::test;
using nlohmann::json;

namespace {

const Reader kRoot{0, 0, {}};

std::string cli() {
  return shell_quoted(binary());
}

std::string read_root(const Mount& mount, const std::string& name) {
  const auto result = read_as(mount / name, kRoot);
  INFO("reading " << name);
  REQUIRE(result.error == 0);
  return result.content;
}

std::uint64_t size_of(const std::filesystem::path& path) {
  struct stat status {};
  REQUIRE(::stat(path.c_str(), &status) == 0);
  return static_cast<std::uint64_t>(status.st_size);
}

std::string secret_table(const std::string& name, const std::string& file) {
  return "[secrets.\"" + name + "\"]\nfile = \"" + file + "\"\n";
}

std::string template_table(const std::string& name, const std::string& content,
                           const std::string& extra = "") {
  return "[templates.\"" + name + "\"]\ncontent = " + json(content).dump() + "\n" + extra;
}

// Runs `command`, expecting exit status 1, and returns what it printed on both streams.
std::string refused_output(const Scenario& scenario, const std::string& command) {
  const auto report = scenario.dir() / "report";
  CHECK(run(command + " > " + shell_quoted(report) + " 2>&1") == 1);
  return read_file(report);
}

// The daemon logs an open's failure as it answers; give it a moment to reach the file.
std::string log_with(const Mount& mount, const std::string& wanted) {
  std::string log = mount.log();
  for (int tries = 0; tries < 100 && log.find(wanted) == std::string::npos; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    log = mount.log();
  }
  return log;
}

}  // namespace

TEST_CASE("a template renders byte for byte from several secrets", "[templates]") {
  Scenario scenario;
  scenario.age_file("user.age", "app\n");
  scenario.age_file("pass.age", "s3cr3t");
  scenario.age_file("token.age", "tok\r\n");
  write_file(scenario.dir() / "app.conf.tmpl",
             "# \\{{ escaped }} stays a literal, so do } and }}\n"
             "user = {{user|chomp}}\npass = {{ pass | chomp }}\ntoken = \"{{ token | chomp }}\"\n"
             "raw = [{{ user }}][{{ pass }}]\n",
             0644);
  const auto manifest = scenario.manifest(
      secret_table("db/user", "user.age") + secret_table("db/pass", "pass.age") +
      secret_table("token", "token.age") +
      "[secrets.\"user\"]\nfile = \"user.age\"\n[secrets.\"pass\"]\nfile = \"pass.age\"\n" +
      template_table("app/env",
                     "DATABASE_URL=postgres://{{ db/user | chomp }}:{{db/pass}}@db/app\n") +
      "[templates.\"app/conf\"]\nfile = \"app.conf.tmpl\"\n");
  Mount mount(manifest, scenario.mount_point());

  CHECK(read_root(mount, "app/env") == "DATABASE_URL=postgres://app:s3cr3t@db/app\n");
  CHECK(read_root(mount, "app/conf") ==
        "# {{ escaped }} stays a literal, so do } and }}\n"
        "user = app\npass = s3cr3t\ntoken = \"tok\"\nraw = [app\n][s3cr3t]\n");
  // Rendered again at every open, the same bytes.
  CHECK(read_root(mount, "app/env") == "DATABASE_URL=postgres://app:s3cr3t@db/app\n");

  std::set<std::string> listed;
  for (const auto& entry : std::filesystem::directory_iterator(mount / "app")) {
    listed.insert(entry.path().filename().string());
  }
  CHECK(listed == std::set<std::string>{"conf", "env"});
}

TEST_CASE("base64 and hex insert any bytes; chains apply left to right", "[templates]") {
  Scenario scenario;
  scenario.age_file("bin.age", std::string("\x00\x01\xfe\xff", 4));
  scenario.age_file("pass.age", "hunter2\n");
  Mount mount(
      scenario.manifest(secret_table("bin", "bin.age") + secret_table("pass", "pass.age") +
                        template_table("encoded",
                                       "B={{ bin | base64 }} H={{bin|hex}}\n"
                                       "P={{ pass | chomp | base64 }} Q={{ pass | base64 }} "
                                       "R={{ pass | chomp | hex | base64 }}\n")),
      scenario.mount_point());
  CHECK(read_root(mount, "encoded") ==
        "B=AAH+/w== H=0001feff\n"
        "P=aHVudGVyMg== Q=aHVudGVyMgo= R=Njg3NTZlNzQ2NTcyMzI=\n");
}

TEST_CASE("a secret that is not text is inserted only encoded; others are never inspected",
          "[templates]") {
  Scenario scenario;
  const std::string binary("\x00\x01\xfe\xff", 4);
  scenario.age_file("bin.age", binary);
  scenario.age_file("latin.age", "caf\xe9\n");
  scenario.age_file("text.age", "plain\n");
  Mount mount(
      scenario.manifest(secret_table("bin", "bin.age") + secret_table("latin", "latin.age") +
                        secret_table("text", "text.age") +
                        template_table("unrelated", "T={{ text | chomp }}\n") +
                        template_table("raw", "R={{ bin }}\n") +
                        template_table("latin-raw", "L={{ latin | chomp }}\n")),
      scenario.mount_point());

  CHECK(read_root(mount, "unrelated") == "T=plain\n");
  CHECK(read_root(mount, "bin") == binary);

  for (const auto& [name, placeholder, secret] :
       {std::tuple{"raw", "{{ bin }}", "bin"}, {"latin-raw", "{{ latin | chomp }}", "latin"}}) {
    INFO(name);
    const auto result = read_as(mount / name, kRoot);
    CHECK(result.error == EIO);
    CHECK(result.content.empty());
    const std::string message = std::string("template `") + name + "`: placeholder `" +
                                placeholder + "`: secret `" + secret +
                                "` has a NUL byte or is not UTF-8, so it cannot be inserted as it "
                                "is; insert it with `| base64` or `| hex`";
    CHECK(log_with(mount, message).find(message) != std::string::npos);
  }
  CHECK(mount.log().find("caf") == std::string::npos);
}

TEST_CASE("a referenced secret that fails gives EIO naming the template and the secret",
          "[templates]") {
  Scenario scenario;
  scenario.age_file("good.age", "good\n");

  SECTION("a file no identity opens, in a manifest served as it is") {
    scenario.foreign_age_file("other.age", "other\n");
    Mount mount(
        scenario.manifest(secret_table("good", "good.age") + secret_table("other", "other.age") +
                          template_table("fine", "G={{ good }}") +
                          template_table("app/env", "G={{ good }}O={{ other }}\n")),
        scenario.mount_point());
    const auto result = read_as(mount / "app/env", kRoot);
    CHECK(result.error == EIO);
    CHECK(result.content.empty());
    const std::string message = "template `app/env`: secret `other`: file " +
                                (scenario.dir() / "other.age").string() + ": no match:";
    CHECK(log_with(mount, message).find(message) != std::string::npos);
    CHECK(read_root(mount, "fine") == "G=good\n");
  }

  SECTION("a stored ciphertext changed in the state directory") {
    scenario.age_file("db.age", "db\n");
    Mount mount(scenario.manifest(secret_table("good", "good.age") + secret_table("db", "db.age") +
                                  template_table("fine", "G={{ good }}") +
                                  template_table("app/env", "G={{ good }}D={{ db }}\n")),
                scenario.mount_point());
    REQUIRE(read_root(mount, "app/env") == "G=good\nD=db\n\n");
    // Secrets are recorded by name: `db` comes before `good`.
    const json record =
        json::parse(read_file(scenario.state_dir() / "generations/1/generation.json"));
    REQUIRE(record.at("secrets").at(0).at("name") == "db");
    const auto db_blob =
        scenario.state_dir() / "blobs" / record.at("secrets").at(0).at("blob").get<std::string>();
    std::string bytes = read_file(db_blob);
    bytes.back() = static_cast<char>(bytes.back() ^ 0x01);
    write_file(db_blob, bytes);

    const auto result = read_as(mount / "app/env", kRoot);
    CHECK(result.error == EIO);
    CHECK(result.content.empty());
    const std::string message = "template `app/env`: secret `db`: file " + db_blob.string() +
                                ": I/O error: " + db_blob.string() +
                                ": stored ciphertext does not match its SHA-256 name";
    CHECK(log_with(mount, message).find(message) != std::string::npos);
    CHECK(read_root(mount, "fine") == "G=good\n");
  }
}

TEST_CASE("a template's owner, group and mode are enforced, and every open is audited",
          "[templates]") {
  Scenario scenario;
  TempDir logs;
  const auto audit = logs / "audit.jsonl";
  scenario.age_file("token.age", "tok\n");
  Mount mount(scenario.manifest("audit_log = \"" + audit.string() + "\"\n" +
                                secret_table("token", "token.age") +
                                template_table("svc/conf", "T={{ token | chomp }}\n",
                                               "owner = 4001\ngroup = 4100\nmode = \"0440\"\n") +
                                template_table("root-only", "R={{ token }}")),
              scenario.mount_point());

  struct stat status {};
  REQUIRE(::stat((mount / "svc/conf").c_str(), &status) == 0);
  CHECK((status.st_mode & 07777) == 0440);
  CHECK(S_ISREG(status.st_mode));
  CHECK(status.st_uid == kOwner);
  CHECK(status.st_gid == kSharedGroup);

  CHECK(read_as(mount / "svc/conf", kOwnerReader).content == "T=tok\n");
  CHECK(read_as(mount / "svc/conf", kMemberReader).content == "T=tok\n");
  CHECK(read_as(mount / "svc/conf", kStrangerReader).error == EACCES);
  CHECK(read_as(mount / "root-only", kOwnerReader).error == EACCES);
  CHECK(read_as(mount / "root-only", kRoot).content == "R=tok\n");
  // The secret itself stays root's alone.
  CHECK(read_as(mount / "token", kOwnerReader).error == EACCES);

  std::vector<json> records;
  for (int tries = 0; tries < 100 && records.size() < 6; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    records.clear();
    std::istringstream lines(read_file(audit));
    for (std::string line; std::getline(lines, line);) {
      records.push_back(json::parse(line));
    }
  }
  REQUIRE(records.size() == 6);
  const std::vector<std::tuple<std::string, uid_t, std::string>> expected = {
      {"svc/conf", kOwner, "granted"},   {"svc/conf", kGroupMember, "granted"},
      {"svc/conf", kStranger, "denied"}, {"root-only", kOwner, "denied"},
      {"root-only", 0, "granted"},       {"token", kOwner, "denied"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO(records[i].dump());
    CHECK(records[i].at("secret") == std::get<0>(expected[i]));
    CHECK(records[i].at("uid") == std::get<1>(expected[i]));
    CHECK(records[i].at("result") == std::get<2>(expected[i]));
    CHECK(records[i].at("generation") == 1);
  }
  // Never content: the audit trail names the template, not what it rendered.
  CHECK(read_file(audit).find("T=tok") == std::string::npos);
  CHECK(read_file(audit).find("tok\\n") == std::string::npos);
}

TEST_CASE("check and activate refuse each faulty template, naming it and its placeholder",
          "[templates]") {
  Scenario scenario;
  scenario.age_file("db.age", "pw\n");
  const std::string good = secret_table("db/password", "db.age") +
                           template_table("good", "ok={{ db/password | chomp }}");
  Mount mount(scenario.manifest(good), scenario.mount_point());
  REQUIRE(read_root(mount, "good") == "ok=pw");

  // Scenario::manifest puts three lines before these; the first table is on line 4, and each
  // table takes two.
  const auto manifest = scenario.manifest(
      good + template_table("app/env", "URL=postgres://app:{{ db/pasword }}@db/app\n") +
      template_table("unterminated", "A={{ db/password\nB=2\n") +
      template_table("nested", "{{ good }}") +
      template_table("encoding", "{{ db/password | base32 }}"));
  const std::string path = manifest.string();
  const std::string problems =
      "error: " + path +
      ":8: template `app/env`: placeholder `{{ db/pasword }}` names no "
      "secret\n"
      "error: " +
      path +
      ":10: template `unterminated`: placeholder `{{ db/password` has no `}}` "
      "on its line\n"
      "error: " +
      path +
      ":12: template `nested`: placeholder `{{ good }}` names a template; a "
      "template inserts secrets only\n"
      "error: " +
      path +
      ":14: template `encoding`: placeholder `{{ db/password | base32 }}`: "
      "unknown filter `base32` (expected chomp, base64 or hex)\n";

  CHECK(refused_output(scenario, cli() + " check --manifest " + shell_quoted(manifest)) ==
        problems + path + ": 1 secret, 5 templates, 4 problems\n");
  CHECK(refused_output(scenario, cli() + " activate --manifest " + shell_quoted(manifest)) ==
        problems +
            "secretfs: 4 problems; nothing was activated and the current generation keeps "
            "serving\n");
  CHECK(read_root(mount, "good") == "ok=pw");
  CHECK(read_as(mount / "app/env", kRoot).error == ENOENT);
}

// check and activate decrypt every secret anyway: a template that no open could ever render is
// named then, not when its service fails to start.
TEST_CASE("check and activate name a template that can never render", "[templates]") {
  Scenario scenario;
  scenario.age_file("bin.age", std::string("\x00\xff", 2));
  scenario.age_file("long.age", std::string(1000, 'l'));
  const auto manifest = scenario.manifest(
      "max_secret_size = 2048\n" + secret_table("bin", "bin.age") +
      secret_table("long", "long.age") + template_table("raw", "R={{ bin }}") +
      template_table("encoded", "E={{ bin | hex }}") +
      template_table("huge", "{{ long }}{{ long }}{{ long }}{{ long }}{{ long }}{{ long }}"
                             "{{ long }}{{ long }}{{ long }}"));
  const std::string problems =
      "error: template `huge`: the rendered text would be over the limit of 8192 bytes\n"
      "error: template `raw`: placeholder `{{ bin }}`: secret `bin` has a NUL byte or is not "
      "UTF-8, so it cannot be inserted as it is; insert it with `| base64` or `| hex`\n";
  CHECK(refused_output(scenario, cli() + " check --manifest " + shell_quoted(manifest)) ==
        problems + manifest.string() + ": 2 secrets, 3 templates, 2 problems\n");
  CHECK(refused_output(scenario, cli() + " activate --manifest " + shell_quoted(manifest)) ==
        problems +
            "secretfs: 2 problems; nothing was activated and the current generation keeps "
            "serving\n");
}

TEST_CASE("a bad template is refused alone; the rest of its manifest is served", "[templates]") {
  Scenario scenario;
  scenario.age_file("db.age", "pw\n");
  Mount mount(scenario.manifest(secret_table("db", "db.age") + template_table("good", "{{ db }}") +
                                template_table("bad", "{{ nope }}")),
              scenario.mount_point());
  CHECK(read_root(mount, "db") == "pw\n");
  CHECK(read_root(mount, "good") == "pw\n");
  CHECK(read_as(mount / "bad", kRoot).error == ENOENT);
  CHECK(mount.log().find("template `bad`: placeholder `{{ nope }}` names no secret (not served)") !=
        std::string::npos);
}

TEST_CASE("a switch that changes a secret re-renders new opens; an open template keeps its bytes",
          "[templates]") {
  Scenario scenario;
  scenario.age_file("db-v1.age", "one\n");
  scenario.age_file("other.age", "x");
  write_file(scenario.dir() / "app.tmpl", "v1 {{ db | chomp }}\n", 0644);
  const std::string tables = template_table("app/env", "DB={{ db | chomp }}\n") +
                             template_table("unrelated", "X={{ other }}") +
                             "[templates.\"app/file\"]\nfile = \"app.tmpl\"\n";
  const auto v1 = scenario.manifest(secret_table("db", "db-v1.age") +
                                    secret_table("other", "other.age") + tables);
  Mount mount(v1, scenario.mount_point());
  REQUIRE(read_root(mount, "app/env") == "DB=one\n");

  const int held = ::open((mount / "app/env").c_str(), O_RDONLY);
  REQUIRE(held >= 0);

  scenario.age_file("db-v2.age", "two, longer\n");
  const auto v2 = scenario.manifest(secret_table("db", "db-v2.age") +
                                    secret_table("other", "other.age") + tables);
  CHECK(output_of(cli() + " activate --json --manifest " + shell_quoted(v2)) ==
        "{\"changed\":[\"app/env\",\"app/file\",\"db\"],\"created\":true,\"generation\":2,"
        "\"pruned\":[],\"served\":true}\n");
  CHECK(read_root(mount, "app/env") == "DB=two, longer\n");
  CHECK(read_root(mount, "app/file") == "v1 two, longer\n");
  CHECK(read_root(mount, "unrelated") == "X=x");

  std::string old(64, '\0');
  const ssize_t got = ::read(held, old.data(), old.size());
  ::close(held);
  REQUIRE(got >= 0);
  old.resize(static_cast<std::size_t>(got));
  CHECK(old == "DB=one\n");

  SECTION("a template file changed alone changes only its template, and rolls back") {
    write_file(scenario.dir() / "app.tmpl", "v2 {{ db }}", 0644);
    CHECK(output_of(cli() + " activate --json --manifest " + shell_quoted(v2)) ==
          "{\"changed\":[\"app/file\"],\"created\":true,\"generation\":3,\"pruned\":[],"
          "\"served\":true}\n");
    CHECK(read_root(mount, "app/file") == "v2 two, longer\n");

    std::filesystem::remove(scenario.dir() / "app.tmpl");
    std::filesystem::remove(scenario.dir() / "db-v1.age");
    output_of(cli() + " rollback --to 1 --state-dir " + shell_quoted(scenario.state_dir()));
    CHECK(read_root(mount, "app/file") == "v1 one\n");
    CHECK(read_root(mount, "app/env") == "DB=one\n");
  }
}

TEST_CASE("stat shows the exact size, or before a chomp's first rendering an upper bound",
          "[templates]") {
  Scenario scenario;
  scenario.age_file("pass.age", "hunter2\n");
  Mount mount(scenario.manifest(secret_table("pass", "pass.age") +
                                template_table("encoded", "P={{ pass | base64 }}\n") +
                                template_table("chomped", "P={{ pass | chomp }}\n")),
              scenario.mount_point());
  const std::string list_json =
      cli() + " list --json --state-dir " + shell_quoted(scenario.state_dir());

  CHECK(size_of(mount / "encoded") == 15);  // "P=" + 12 characters of base64 + "\n"
  CHECK(size_of(mount / "chomped") == 11);  // "P=hunter2\n\n": nothing chomped yet
  json listed = json::parse(output_of(list_json));
  CHECK(listed.at("templates").at(0).at("name") == "chomped");
  CHECK(listed.at("templates").at(0).at("size") == 11);
  CHECK(listed.at("templates").at(0).at("size_exact") == false);
  CHECK(listed.at("templates").at(1).at("size") == 15);
  CHECK(listed.at("templates").at(1).at("size_exact") == true);
  const std::string text =
      output_of(cli() + " list --state-dir " + shell_quoted(scenario.state_dir()));
  CHECK(text.find(scenario.mount_point().string() + "/chomped") != std::string::npos);
  CHECK(text.find(" 0400 " + std::string(6, ' ') + "<=11 1" + std::string(10, ' ') + "none\n") !=
        std::string::npos);

  CHECK(read_root(mount, "encoded").size() == 15);
  CHECK(read_root(mount, "chomped") == "P=hunter2\n");
  CHECK(size_of(mount / "chomped") == 10);
  const int fd = ::open((mount / "chomped").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  struct stat status {};
  CHECK(::fstat(fd, &status) == 0);
  ::close(fd);
  CHECK(status.st_size == 10);
  listed = json::parse(output_of(list_json));
  CHECK(listed.at("templates").at(0).at("size") == 10);
  CHECK(listed.at("templates").at(0).at("size_exact") == true);

  const std::string status_text =
      output_of(cli() + " status --state-dir " + shell_quoted(scenario.state_dir()));
  CHECK(status_text.find("secrets:     1\ntemplates:   2\n") != std::string::npos);
}

TEST_CASE("a rendered template and the secrets in it leave the daemon's memory at close",
          "[templates]") {
  const std::string marker = unique_marker();
  std::string encoded(sodium_base64_ENCODED_LEN(marker.size() + 1, sodium_base64_VARIANT_ORIGINAL),
                      '\0');
  const std::string plaintext = marker + "\n";
  sodium_bin2base64(encoded.data(), encoded.size(),
                    reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  encoded.resize(encoded.find('\0'));
  Scenario scenario;
  scenario.age_file("m.age", plaintext);
  Mount mount(scenario.manifest(secret_table("m", "m.age") +
                                template_table("t", "A={{ m | chomp }}\nB={{ m | base64 }}\n")),
              scenario.mount_point());

  // While a reader holds it open, the rendered text is in the daemon, and only that: the
  // secret's own plaintext and its encoded copy were wiped once it was rendered.
  const int fd = ::open((mount / "t").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  char first{};
  REQUIRE(::read(fd, &first, 1) == 1);
  CHECK(occurrences_in_memory(mount.pid(), marker) == 1);
  CHECK(occurrences_in_memory(mount.pid(), encoded) == 1);

  ::close(fd);
  // RELEASE reaches the daemon after close() returns; it is answered within milliseconds.
  std::size_t hits = 1;
  for (int i = 0; i < 100 && hits != 0; ++i) {
    ::usleep(10000);
    hits = occurrences_in_memory(mount.pid(), marker) + occurrences_in_memory(mount.pid(), encoded);
  }
  CHECK(hits == 0);
}
