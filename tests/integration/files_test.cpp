// Managing secret files end to end: recipients.toml, encrypt by rule, edit (with an editor
// replaced by a script), view, rekey, rotate and the shell completions. After every edit no
// plaintext may be left in a temporary or runtime folder.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <set>
#include <string>

#include "scenario.hpp"

using namespace secretfs::test;

namespace {

// Any text as one shell word, even one that holds single quotes itself.
std::string quoted(const std::string& text) {
  std::string word = "'";
  for (const char c : text) {
    word += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return word + "'";
}

std::string trimmed(std::string text) {
  while (!text.empty() && text.back() == '\n') {
    text.pop_back();
  }
  return text;
}

// A throwaway key made by the reference age-keygen, and its recipient.
struct Key {
  std::filesystem::path file;
  std::string recipient;
};

Key make_key(const TempDir& dir, const std::string& name) {
  const auto file = dir / name;
  REQUIRE(run("age-keygen -o " + shell_quoted(file) + " 2>/dev/null") == 0);
  return {file, trimmed(output_of("age-keygen -y " + shell_quoted(file)))};
}

// A secrets repository: keys for an admin and a host, rules, a private runtime folder on
// /dev/shm (tmpfs) standing in for $XDG_RUNTIME_DIR.
class Repository {
 public:
  Repository() : admin_(make_key(dir_, "admin.txt")), host_(make_key(dir_, "host.txt")) {
    std::filesystem::create_directories(dir_ / "secrets" / "web1");
    std::string pattern = "/dev/shm/secretfs-test-runtime.XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    runtime_ = pattern;
    write_rules("");
    stamp_ = dir_ / "stamp";
    write_file(stamp_, "");
    // Scratch folders of edits running elsewhere on the machine are not this test's.
    for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
      elsewhere_.insert(entry.path());
    }
  }
  ~Repository() {
    std::error_code ignored;
    std::filesystem::remove_all(runtime_, ignored);
  }

  // Rules: web1's files to the host and the admins group, everything else to the admins.
  void write_rules(const std::string& extra_admin) {
    std::string users = "ops1 = \"" + admin_.recipient + "\"\n";
    std::string admins = "\"ops1\"";
    if (!extra_admin.empty()) {
      users += "ops2 = \"" + extra_admin + "\"\n";
      admins += ", \"ops2\"";
    }
    write_file(dir_ / "secrets" / "recipients.toml",
               "[hosts]\nweb1 = \"" + host_.recipient + "\"\n\n[users]\n" + users +
                   "\n[groups]\nadmins = [" + admins +
                   "]\n\n[[rules]]\nfiles = \"web1/*.age\"\nrecipients = [\"web1\", \"admins\"]\n"
                   "\n[[rules]]\nfiles = \"*.age\"\nrecipients = [\"admins\"]\n");
  }

  // Any rules text; "ADMIN" and "HOST" stand for the two recipients.
  void write_rules_text(std::string text) const {
    for (const auto& [name, key] : {std::pair{"ADMIN", &admin_}, std::pair{"HOST", &host_}}) {
      for (auto at = text.find(name); at != std::string::npos; at = text.find(name)) {
        text.replace(at, std::string_view(name).size(), key->recipient);
      }
    }
    write_file(dir_ / "secrets" / "recipients.toml", text);
  }

  std::filesystem::path secret(const std::string& name) const { return dir_ / "secrets" / name; }
  const Key& admin() const { return admin_; }
  const Key& host() const { return host_; }
  const TempDir& dir() const { return dir_; }
  const std::filesystem::path& runtime() const { return runtime_; }

  // `secretfs ARGS` run in the secrets folder with the admin's key, the runtime folder and
  // `editor` as $EDITOR. A subshell, so that a pipe into it reaches secretfs.
  std::string command(const std::string& args, const std::string& editor = "true",
                      const std::filesystem::path& runtime = {}) const {
    return "(cd " + shell_quoted(dir_ / "secrets") +
           " && SECRETFS_IDENTITY=" + shell_quoted(admin_.file) +
           " XDG_RUNTIME_DIR=" + shell_quoted(runtime.empty() ? runtime_ : runtime) +
           " EDITOR=" + shell_quoted(editor) + " " + shell_quoted(binary()) + " " + args + ")";
  }

  std::string decrypted(const std::filesystem::path& file, const Key& key) const {
    return output_of("age -d -i " + shell_quoted(key.file) + " " + shell_quoted(file));
  }

  // An executable script in the repository folder, for $EDITOR.
  std::filesystem::path script(const std::string& name, const std::string& body) const {
    const auto path = dir_ / name;
    write_file(path, "#!/bin/sh\n" + body, 0700);
    return path;
  }

  // No scratch folder is left, and no file written since the repository was made holds
  // `marker`, in /tmp, /dev/shm or the runtime folder.
  void expect_no_plaintext(const std::string& marker) const {
    for (const std::filesystem::path& folder : {runtime_, std::filesystem::path("/dev/shm")}) {
      for (const auto& entry : std::filesystem::directory_iterator(folder)) {
        if (elsewhere_.contains(entry.path())) {
          continue;
        }
        INFO("left over: " << entry.path());
        CHECK(entry.path().filename().string().rfind("secretfs-edit.", 0) != 0);
      }
    }
    const std::string found =
        output_of("find /tmp /dev/shm " + shell_quoted(runtime_) + " -xdev -type f -newer " +
                  shell_quoted(stamp_) + " -print0 2>/dev/null | xargs -0 -r grep -lF " +
                  shell_quoted(marker) + " 2>/dev/null; true");
    CHECK(found == "");
  }

 private:
  TempDir dir_;
  Key admin_;
  Key host_;
  std::filesystem::path runtime_;
  std::filesystem::path stamp_;
  std::set<std::filesystem::path> elsewhere_;
};

// The editor scripts print the plaintext from two halves, so that the script file itself never
// holds the marker the leftover scan looks for.
std::string marker_script(const std::string& first, const std::string& second) {
  return "printf '%s%s\\n' '" + first + "' '" + second + "' > \"$1\"\n";
}

// The secretfs process, from inside the editor: the editor's parent, or its grandparent when a
// shell sits in between.
const char* kFindSecretfs =
    "target=$PPID\n"
    "[ \"$(cat /proc/$target/comm)\" = secretfs ] || "
    "target=$(awk '{print $4}' /proc/$target/stat)\n";

}  // namespace

TEST_CASE("edit creates, changes and keeps a secret, leaving no plaintext behind", "[files]") {
  Repository repo;
  const auto file = repo.secret("web1/db-password.age");
  const auto log = repo.dir() / "editor.log";
  const auto create = repo.script(
      "create.sh",
      "stat -c '%a' \"$1\" > " + shell_quoted(log) + "\nstat -c '%a' \"$(dirname \"$1\")\" >> " +
          shell_quoted(log) + "\nstat -f -c '%T' \"$1\" >> " + shell_quoted(log) +
          "\nbasename \"$1\" >> " + shell_quoted(log) + "\n" + marker_script("zebra", "-first"));
  REQUIRE(run(repo.command("edit web1/db-password.age", create.string())) == 0);
  CHECK(read_file(log) == "600\n700\ntmpfs\ndb-password\n");
  CHECK(repo.decrypted(file, repo.host()) == "zebra-first\n");
  CHECK(repo.decrypted(file, repo.admin()) == "zebra-first\n");
  repo.expect_no_plaintext("zebra-first");

  SECTION("an editor that changes nothing leaves the file byte-identical") {
    const std::string before = read_file(file);
    REQUIRE(run(repo.command("edit web1/db-password.age", "true")) == 0);
    CHECK(read_file(file) == before);
    repo.expect_no_plaintext("zebra-first");
  }
  SECTION("a changed value is encrypted again, and view shows it") {
    const auto change = repo.script("change.sh", marker_script("zebra", "-second"));
    REQUIRE(run(repo.command("edit web1/db-password.age", change.string())) == 0);
    CHECK(output_of(repo.command("view web1/db-password.age")) == "zebra-second\n");
    repo.expect_no_plaintext("zebra-second");
  }
  SECTION("a failing editor changes nothing") {
    const std::string before = read_file(file);
    const auto fail = repo.script("fail.sh", marker_script("zebra", "-failed") + "exit 3\n");
    const auto errors = repo.dir() / "errors";
    CHECK(run(repo.command("edit web1/db-password.age", fail.string()) + " 2> " +
              shell_quoted(errors)) == 1);
    CHECK(read_file(errors).find("exited with status 3") != std::string::npos);
    CHECK(read_file(file) == before);
    repo.expect_no_plaintext("zebra-failed");
  }
  for (const char* signal : {"TERM", "INT"}) {
    SECTION(std::string("SIG") + signal + " during the edit wipes the file and changes nothing") {
      const std::string before = read_file(file);
      const auto killer =
          repo.script("kill.sh", marker_script("zebra", std::string("-") + signal) + kFindSecretfs +
                                     "kill -" + signal + " $target\nsleep 30\n");
      CHECK(run(repo.command("edit web1/db-password.age", killer.string())) != 0);
      CHECK(read_file(file) == before);
      repo.expect_no_plaintext(std::string("zebra-") + signal);
    }
  }
}

TEST_CASE("edit refuses a runtime folder on a disk and a file no rule matches", "[files]") {
  Repository repo;
  const auto errors = repo.dir() / "errors";
  const auto write = repo.script("write.sh", marker_script("zebra", "-disk"));

  CHECK(run(repo.command("edit web1/x.age", write.string(), repo.dir().path()) + " 2> " +
            shell_quoted(errors)) == 1);
  CHECK(read_file(errors).find("not a memory-backed file system") != std::string::npos);
  CHECK(read_file(errors).find("XDG_RUNTIME_DIR names it") == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(repo.secret("web1/x.age")));

  CHECK(run(repo.command("edit web1/notes/x.age", write.string()) + " 2> " +
            shell_quoted(errors)) == 1);
  CHECK(read_file(errors).find("no rule in") != std::string::npos);
  repo.expect_no_plaintext("zebra-disk");
}

TEST_CASE("encrypt without -r takes the recipients of the rule matching -o", "[files]") {
  Repository repo;
  REQUIRE(run(repo.command("encrypt -o web1/token.age < /dev/null")) == 0);
  CHECK(repo.decrypted(repo.secret("web1/token.age"), repo.host()) == "");
  const auto input = repo.dir() / "input";
  write_file(input, "token\n");
  REQUIRE(run(repo.command("encrypt -a -o shared.age " + shell_quoted(input))) == 0);
  CHECK(read_file(repo.secret("shared.age")).rfind("-----BEGIN AGE ENCRYPTED FILE-----", 0) == 0);
  CHECK(repo.decrypted(repo.secret("shared.age"), repo.admin()) == "token\n");
  CHECK(run("age -d -i " + shell_quoted(repo.host().file) + " " +
            shell_quoted(repo.secret("shared.age")) + " 2>/dev/null") != 0);
}

TEST_CASE("view finds the caller's identity and refuses binary output on a terminal", "[files]") {
  Repository repo;
  const auto input = repo.dir() / "input";
  write_file(input, std::string("bin\0ary\x1b[2J", 11));
  REQUIRE(run(repo.command("encrypt -o binary.age " + shell_quoted(input))) == 0);

  SECTION("from ~/.config/secretfs/key.txt when nothing else is given") {
    const auto home = repo.dir() / "home";
    std::filesystem::create_directories(home / ".config" / "secretfs");
    std::filesystem::copy_file(repo.admin().file, home / ".config" / "secretfs" / "key.txt");
    const std::string view = "HOME=" + shell_quoted(home) + " " + shell_quoted(binary()) +
                             " view " + shell_quoted(repo.secret("binary.age"));
    CHECK(output_of("env -u SECRETFS_IDENTITY " + view) == std::string("bin\0ary\x1b[2J", 11));

    REQUIRE(::chmod((home / ".config" / "secretfs" / "key.txt").c_str(), 0644) == 0);
    const auto errors = repo.dir() / "errors";
    CHECK(run("env -u SECRETFS_IDENTITY " + view + " > /dev/null 2> " + shell_quoted(errors)) == 1);
    CHECK(read_file(errors).find("key.txt") != std::string::npos);
  }
  SECTION("binary content is refused on a terminal unless asked") {
    const auto transcript = repo.dir() / "transcript";
    CHECK(run("script -qec " + quoted(repo.command("view binary.age")) + " /dev/null > " +
              shell_quoted(transcript)) == 1);
    CHECK(read_file(transcript).find("refusing to write it to a terminal") != std::string::npos);
    CHECK(run("script -qec " + quoted(repo.command("view --binary binary.age")) +
              " /dev/null > /dev/null") == 0);
  }
}

TEST_CASE("rekey re-encrypts to the rules, all or nothing, and leaves matching files alone",
          "[files]") {
  Repository repo;
  // Files made by the reference age: their recipients cannot be known, so rekey rewrites them.
  for (const char* name : {"web1/a.age", "b.age"}) {
    REQUIRE(run("printf 'value %s' " + std::string(name) + " | age -r " + repo.admin().recipient +
                " -o " + shell_quoted(repo.secret(name))) == 0);
  }
  CHECK(output_of(repo.command("rekey")) ==
        "rekeyed   " + repo.secret("b.age").string() + " (1 recipient)\nrekeyed   " +
            repo.secret("web1/a.age").string() +
            " (2 recipients)\n2 files: 2 rekeyed, 0 unchanged\n");
  CHECK(repo.decrypted(repo.secret("web1/a.age"), repo.host()) == "value web1/a.age");

  const std::string a = read_file(repo.secret("web1/a.age"));
  const std::string b = read_file(repo.secret("b.age"));
  CHECK(output_of(repo.command("rekey")).find("2 files: 0 rekeyed, 2 unchanged\n") !=
        std::string::npos);
  CHECK(read_file(repo.secret("web1/a.age")) == a);
  CHECK(read_file(repo.secret("b.age")) == b);

  SECTION("a new admin gets every file") {
    const Key newcomer = make_key(repo.dir(), "newcomer.txt");
    repo.write_rules(newcomer.recipient);
    CHECK(output_of(repo.command("rekey")).find("2 files: 2 rekeyed, 0 unchanged\n") !=
          std::string::npos);
    CHECK(repo.decrypted(repo.secret("web1/a.age"), newcomer) == "value web1/a.age");
    CHECK(repo.decrypted(repo.secret("b.age"), newcomer) == "value b.age");
  }
  SECTION("one file nobody here can open stops the whole run") {
    const Key stranger = make_key(repo.dir(), "stranger.txt");
    REQUIRE(run("printf x | age -r " + stranger.recipient + " -o " +
                shell_quoted(repo.secret("web1/c.age"))) == 0);
    const Key newcomer = make_key(repo.dir(), "newcomer.txt");
    repo.write_rules(newcomer.recipient);
    const auto errors = repo.dir() / "errors";
    CHECK(run(repo.command("rekey") + " > /dev/null 2> " + shell_quoted(errors)) == 1);
    const std::string report = read_file(errors);
    CHECK(report.find(repo.secret("web1/c.age").string() + ": no match: ") != std::string::npos);
    CHECK(report.find("1 of 3 files cannot be rekeyed; nothing was rewritten") !=
          std::string::npos);
    CHECK(read_file(repo.secret("web1/a.age")) == a);
    CHECK(read_file(repo.secret("b.age")) == b);
  }
  SECTION("named files only") {
    const Key newcomer = make_key(repo.dir(), "newcomer.txt");
    repo.write_rules(newcomer.recipient);
    CHECK(output_of(repo.command("rekey b.age")).find("1 file: 1 rekeyed") != std::string::npos);
    CHECK(read_file(repo.secret("web1/a.age")) == a);
  }
}

TEST_CASE("rotate draws a value of the asked length and charset, or reads it", "[files]") {
  Repository repo;

  const auto is_made_of = [](const std::string& text, const std::string& charset) {
    return text.find_first_not_of(charset) == std::string::npos;
  };
  const std::string alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

  REQUIRE(run(repo.command("rotate --generate web1/db.age > /dev/null")) == 0);
  const std::string first = output_of(repo.command("view web1/db.age"));
  CHECK(first.size() == 32);
  CHECK(is_made_of(first, alphanumeric));
  CHECK(repo.decrypted(repo.secret("web1/db.age"), repo.host()) == first);

  REQUIRE(run(repo.command("rotate -g --length 200 --charset 'a-f0-9' web1/db.age > /dev/null")) ==
          0);
  const std::string hex = output_of(repo.command("view web1/db.age"));
  CHECK(hex.size() == 200);
  CHECK(is_made_of(hex, "abcdef0123456789"));
  // 200 draws from 16 characters miss one of them with probability below 16 * (15/16)^200.
  CHECK(hex.find_first_of("a") != std::string::npos);
  CHECK(hex.find_first_of("9") != std::string::npos);

  REQUIRE(run("printf 'typed value' | " + repo.command("rotate web1/db.age > /dev/null")) == 0);
  CHECK(output_of(repo.command("view web1/db.age")) == "typed value");

  CHECK(run(repo.command("rotate -g --charset 'aa' web1/db.age 2> /dev/null")) == 1);
  CHECK(run(repo.command("rotate -g --length 0 web1/db.age 2> /dev/null")) == 1);
  CHECK(run(repo.command("rotate web1/db.age < /dev/null 2> /dev/null")) == 1);
  CHECK(output_of(repo.command("view web1/db.age")) == "typed value");

  SECTION("--manifest names the secrets that use the file") {
    const auto manifest = repo.dir() / "manifest.toml";
    write_file(manifest, "identities = [\"" + repo.host().file.string() +
                             "\"]\n\n[secrets.\"db/password\"]\nfile = \"" +
                             repo.secret("web1/db.age").string() +
                             "\"\n\n[secrets.\"other\"]\nfile = \"" +
                             repo.secret("b.age").string() + "\"\n");
    const std::string report =
        output_of(repo.command("rotate -g web1/db.age --manifest " + shell_quoted(manifest)));
    CHECK(report.find("used by secret `db/password` (" + manifest.string() + ":3)") !=
          std::string::npos);
    CHECK(report.find("`other`") == std::string::npos);
  }
}

std::string load_completions() {
  return "source <(" + shell_quoted(binary()) + " completions bash); ";
}

// What bash's completion of secretfs offers for `words` with the cursor on word `current`,
// run in the repository's secrets folder and shown by `show`.
std::string completed(const Repository& repo, const std::string& words, int current,
                      const std::string& show) {
  const std::string script = load_completions() + "cd " + shell_quoted(repo.secret("")) +
                             "; COMP_WORDS=(" + words + "); COMP_CWORD=" + std::to_string(current) +
                             "; _secretfs; " + show;
  return output_of("bash -c " + quoted(script));
}

TEST_CASE("completions load into a real bash and complete commands and .age files", "[files]") {
  Repository repo;
  CHECK(output_of("bash -c " + quoted(load_completions() + "complete -p secretfs")) ==
        "complete -F _secretfs secretfs\n");

  const auto complete = [&](const std::string& words, int current) {
    return completed(repo, words, current, "echo \"${COMPREPLY[*]}\"");
  };
  write_file(repo.secret("a.age"), "");
  write_file(repo.secret("notes.txt"), "");
  CHECK(complete("secretfs re", 1) == "rekey\n");
  CHECK(complete("secretfs ro", 1) == "rollback rotate\n");
  CHECK(complete("secretfs rotate --ch", 2) == "--charset\n");
  CHECK(complete("secretfs edit ''", 2) == "a.age web1\n");
  CHECK(complete("secretfs completions ''", 2) == "bash zsh fish\n");

  CHECK(output_of(shell_quoted(binary()) + " completions zsh").rfind("#compdef secretfs\n", 0) ==
        0);
  CHECK(
      output_of(shell_quoted(binary()) + " completions fish")
          .find("complete -c secretfs -n '__fish_seen_subcommand_from rotate' -l manifest -r -F") !=
      std::string::npos);
}

TEST_CASE("every command's help ends with an example", "[files]") {
  for (const char* command :
       {"keygen", "encrypt", "decrypt", "mount", "check", "activate", "rollback", "generations",
        "status", "edit", "view", "rekey", "rotate", "sync", "completions"}) {
    INFO("secretfs " << command << " --help");
    const std::string help = output_of(shell_quoted(binary()) + " " + command + " --help");
    const auto example = help.find("Example");
    REQUIRE(example != std::string::npos);
    CHECK(help.find("secretfs ", example) != std::string::npos);
  }
}

TEST_CASE("rules that resolve to no key stop every command before it writes", "[files]") {
  Repository repo;
  REQUIRE(run(repo.command("rotate -g web1/db.age > /dev/null")) == 0);
  const std::string before = read_file(repo.secret("web1/db.age"));
  repo.write_rules_text(
      "[users]\nops1 = \"ADMIN\"\n[groups]\nleavers = []\n"
      "admins = [\"leavers\"]\n[[rules]]\nfiles = \"**/*.age\"\n"
      "recipients = [\"admins\"]\n");
  const auto errors = repo.dir() / "errors";
  const auto change = repo.script("change.sh", marker_script("zebra", "-empty"));
  for (const std::string& command :
       {std::string("rekey"), std::string("rekey web1/db.age"), std::string("edit web1/db.age"),
        std::string("rotate -g web1/db.age")}) {
    INFO(command);
    CHECK(run(repo.command(command, change.string()) + " > /dev/null 2> " + shell_quoted(errors)) ==
          1);
    CHECK(read_file(errors).find("recipients.toml:6: rule 1: recipients resolve to no key") !=
          std::string::npos);
    CHECK(read_file(errors).find("`leavers` (line 4), `admins` (line 5)") != std::string::npos);
    CHECK(read_file(repo.secret("web1/db.age")) == before);
  }
  repo.expect_no_plaintext("zebra-empty");
}

TEST_CASE("rules mistakes are all named, and a shadowed rule is warned about", "[files]") {
  Repository repo;
  const auto errors = repo.dir() / "errors";
  repo.write_rules_text(
      "[users]\nops1 = \"ADMIN\"\n[[rules]]\nfiles = \"**/*.age\"\n"
      "recipients = [\"ops1\"]\n[[rules]]\nfiles = \"web1/*.age\"\n"
      "recipients = [\"ops1\"]\n");
  REQUIRE(run(repo.command("rotate -g web1/db.age") + " > /dev/null 2> " + shell_quoted(errors)) ==
          0);
  CHECK(read_file(errors) == "warning: " + repo.secret("recipients.toml").string() +
                                 ":6: rule 2 can never match: rule 1 (line 3, files = "
                                 "\"**/*.age\") comes first and matches every file it would\n");

  repo.write_rules_text(
      "[users]\nops1 = \"ADMIN\"\n[[rules]]\nfiles = \"/srv/*.age\"\n"
      "recipients = [\"ops1\"]\n[[rules]]\nfiles = \"web1/\"\n"
      "recipients = [\"ghost\"]\n");
  CHECK(run(repo.command("rotate -g web1/db.age") + " > /dev/null 2> " + shell_quoted(errors)) ==
        1);
  const std::string report = read_file(errors);
  CHECK(report.find("recipients.toml:4: rule 1: files = \"/srv/*.age\" can never match") !=
        std::string::npos);
  CHECK(report.find("recipients.toml:7: rule 2: files = \"web1/\" can never match") !=
        std::string::npos);
  CHECK(report.find("recipients.toml:6: rule 2: unknown name `ghost`") != std::string::npos);
}

TEST_CASE("edit wipes what the editor leaves in subfolders and refuses odd read-backs", "[files]") {
  Repository repo;
  const auto file = repo.secret("web1/db.age");
  const auto errors = repo.dir() / "errors";

  SECTION("a backup copy in a subfolder of the scratch folder is wiped") {
    const auto backup = repo.script(
        "backup.sh", marker_script("zebra", "-backup") +
                         "mkdir -p \"$(dirname \"$1\")/bk/deeper\"\ncp \"$1\" "
                         "\"$(dirname \"$1\")/bk/\"\ncp \"$1\" \"$(dirname \"$1\")/bk/deeper/\"\n"
                         "chmod 0400 \"$(dirname \"$1\")/bk/db\"\n");
    REQUIRE(run(repo.command("edit web1/db.age", backup.string())) == 0);
    CHECK(repo.decrypted(file, repo.admin()) == "zebra-backup\n");
    repo.expect_no_plaintext("zebra-backup");
  }
  SECTION("a folder in place of the file changes nothing and leaves nothing") {
    const auto folder =
        repo.script("folder.sh", marker_script("zebra", "-folder") +
                                     "mkdir \"$1.d\"\nmv \"$1\" \"$1.d/\"\nmv \"$1.d\" \"$1\"\n");
    CHECK(run(repo.command("edit web1/db.age", folder.string()) + " 2> " + shell_quoted(errors)) ==
          1);
    CHECK(read_file(errors).find("other than a regular file") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(file));
    repo.expect_no_plaintext("zebra-folder");
  }
  SECTION("a link in place of the file is not followed") {
    const auto target = repo.dir() / "not-a-secret.txt";
    write_file(target, "zebra-target\n");
    const auto link =
        repo.script("link.sh", "rm \"$1\"\nln -s " + shell_quoted(target) + " \"$1\"\n");
    CHECK(run(repo.command("edit web1/db.age", link.string()) + " 2> " + shell_quoted(errors)) ==
          1);
    CHECK(read_file(errors).find("web1/db.age was not created") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(file));
    CHECK(read_file(target) == "zebra-target\n");
  }
}

TEST_CASE("edit does not lose a concurrent change, links or the file's owner", "[files]") {
  Repository repo;
  const auto file = repo.secret("web1/db.age");
  const auto errors = repo.dir() / "errors";
  REQUIRE(run(repo.command("rotate -g web1/db.age > /dev/null")) == 0);

  SECTION("a change made while the editor is open is kept, and the edit is refused") {
    const auto racer = repo.script("racer.sh", "printf 'other value' | " +
                                                   repo.command("rotate web1/db.age > /dev/null") +
                                                   "\n" + marker_script("zebra", "-lost"));
    CHECK(run(repo.command("edit web1/db.age", racer.string()) + " 2> " + shell_quoted(errors)) ==
          1);
    CHECK(read_file(errors).find("changed while the editor was open; your changes were not "
                                 "saved") != std::string::npos);
    CHECK(repo.decrypted(file, repo.admin()) == "other value");
    repo.expect_no_plaintext("zebra-lost");
  }
  SECTION("a symbolic link is refused and stays a link") {
    std::filesystem::create_symlink("web1/db.age", repo.secret("link.age"));
    const auto change = repo.script("change.sh", marker_script("zebra", "-link"));
    for (const char* command : {"edit link.age", "rotate -g link.age", "rekey link.age"}) {
      INFO(command);
      CHECK(run(repo.command(command, change.string()) + " > /dev/null 2> " +
                shell_quoted(errors)) == 1);
      CHECK(read_file(errors).find("link.age: is a symbolic link to web1/db.age") !=
            std::string::npos);
      CHECK(std::filesystem::is_symlink(repo.secret("link.age")));
    }
    // rekey of the whole repository skips the link and rekeys the file itself.
    CHECK(output_of(repo.command("rekey")).find("1 file: 0 rekeyed, 1 unchanged\n") !=
          std::string::npos);
  }
  SECTION("the owner, group and mode are kept") {
    REQUIRE(::chown(file.c_str(), 4001, 4002) == 0);
    REQUIRE(::chmod(file.c_str(), 0640) == 0);
    const auto change = repo.script("change.sh", marker_script("zebra", "-owner"));
    REQUIRE(run(repo.command("edit web1/db.age", change.string())) == 0);
    struct stat status {};
    REQUIRE(::stat(file.c_str(), &status) == 0);
    CHECK(status.st_uid == 4001u);
    CHECK(status.st_gid == 4002u);
    CHECK((status.st_mode & 07777) == 0640u);
  }
  SECTION("a write that fails says the changes were not saved") {
    const auto folder = repo.secret("web1");
    REQUIRE(run("mount --bind " + shell_quoted(folder) + " " + shell_quoted(folder)) == 0);
    const auto readonly =
        repo.script("readonly.sh", "mount -o remount,ro,bind " + shell_quoted(folder) + "\n" +
                                       marker_script("zebra", "-readonly"));
    const int status =
        run(repo.command("edit web1/db.age", readonly.string()) + " 2> " + shell_quoted(errors));
    run("umount " + shell_quoted(folder));
    CHECK(status == 1);
    CHECK(read_file(errors).find("your changes were not saved") != std::string::npos);
    repo.expect_no_plaintext("zebra-readonly");
  }
}

TEST_CASE("view treats terminal-steering text as binary", "[files]") {
  Repository repo;
  const auto input = repo.dir() / "input";
  const auto shown_on_terminal = [&](const std::string& plaintext) {
    write_file(input, plaintext);
    REQUIRE(run(repo.command("encrypt -o text.age " + shell_quoted(input))) == 0);
    return run("script -qec " + quoted(repo.command("view text.age")) + " /dev/null > /dev/null");
  };
  CHECK(shown_on_terminal("plain line\r\nnext\tcolumn\n") == 0);
  CHECK(shown_on_terminal("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\n") == 0);
  for (const std::string& sneaky :
       {std::string("real\rfake\n"),
        std::string("abc\xe2\x80\xae"
                    "cba\n"),
        std::string("x\xe2\x81\xa6y\n"),
        std::string("\xc2\x9b"
                    "2J\n"),
        std::string("\xff\n"), std::string("\xc0\xaf\n"), std::string("cut \xe2\x82")}) {
    INFO(sneaky);
    CHECK(shown_on_terminal(sneaky) == 1);
  }
}

TEST_CASE("rotate and edit refuse unsafe inputs with a useful message", "[files]") {
  Repository repo;
  const auto transcript = repo.dir() / "transcript";
  CHECK(run("script -qec " + quoted(repo.command("rotate web1/db.age")) + " /dev/null > " +
            shell_quoted(transcript)) == 1);
  CHECK(read_file(transcript).find("standard input is a terminal") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(repo.secret("web1/db.age")));

  const auto errors = repo.dir() / "errors";
  CHECK(run(repo.command("edit web1/x.age", "true", repo.dir() / "missing") + " 2> " +
            shell_quoted(errors)) == 1);
  CHECK(read_file(errors) == "secretfs: " + (repo.dir() / "missing").string() +
                                 ": does not exist (XDG_RUNTIME_DIR names it); the plaintext "
                                 "needs a folder on a memory-backed file system (tmpfs or ramfs): "
                                 "point XDG_RUNTIME_DIR at one\n");
}

TEST_CASE("bash completion keeps odd file names whole and offers no files for values", "[files]") {
  Repository repo;
  const auto complete = [&](const std::string& words, int current) {
    return completed(repo, words, current, "printf '<%s>' \"${COMPREPLY[@]}\"");
  };
  write_file(repo.secret("sp ace.age"), "");
  CHECK(complete("secretfs view sp", 2) == "<sp ace.age>");
  CHECK(complete("secretfs rotate --length ''", 3) == "<>");
  CHECK(complete("secretfs rotate --charset ''", 3) == "<>");
  CHECK(complete("secretfs encrypt -r ''", 3) == "<>");
  CHECK(complete("secretfs rollback --to ''", 3) == "<>");
  CHECK(complete("secretfs rotate --manifest sp", 3) == "<sp ace.age>");
  CHECK(output_of(shell_quoted(binary()) + " completions fish")
            .find("complete -c secretfs -n '__fish_seen_subcommand_from rotate' -l length -x\n") !=
        std::string::npos);
}

TEST_CASE("names with terminal escapes are printed escaped; encrypt by rule refuses links",
          "[files]") {
  TempDir dir;
  const auto key = dir / "key.txt";
  REQUIRE(run("age-keygen -o " + shell_quoted(key) + " 2>/dev/null") == 0);
  const std::string recipient = output_of("age-keygen -y " + shell_quoted(key));
  write_file(dir / "recipients.toml",
             "[users]\nme = \"" + recipient.substr(0, recipient.find('\n')) +
                 "\"\n\n[[rules]]\nfiles = \"*.age\"\nrecipients = [\"me\"]\n",
             0644);
  const std::string cli = "cd " + shell_quoted(dir.path()) + " && " + shell_quoted(binary());

  const std::string evil = "evil\x1b]0;x\x07.age";
  const std::string said =
      output_of("printf v | (" + cli + " encrypt -o " + shell_quoted(dir / evil) + " && " + cli +
                " rotate --generate " + shell_quoted(dir / evil) + ") 2>&1");
  CHECK(said.find('\x1b') == std::string::npos);
  CHECK(said.find("\\x1b") != std::string::npos);

  REQUIRE(::symlink("target.age", (dir / "link.age").c_str()) == 0);
  const std::string log = (dir / "log").string();
  CHECK(run("printf v | (" + cli + " encrypt -o link.age) 2> " + shell_quoted(log)) == 1);
  CHECK(read_file(log).find("link.age is a symbolic link") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "target.age"));
}

TEST_CASE("rekey by default takes only the age files a broad rule matches", "[files]") {
  TempDir dir;
  const auto key = dir / "key.txt";
  REQUIRE(run("age-keygen -o " + shell_quoted(key) + " 2>/dev/null") == 0);
  const std::string recipient = output_of("age-keygen -y " + shell_quoted(key));
  write_file(dir / "recipients.toml",
             "[users]\nme = \"" + recipient.substr(0, recipient.find('\n')) +
                 "\"\n\n[[rules]]\nfiles = \"**\"\nrecipients = [\"me\"]\n",
             0644);
  write_file(dir / "README", "not a secret\n", 0644);
  const std::string cli = "cd " + shell_quoted(dir.path()) + " && " + shell_quoted(binary());
  REQUIRE(run("printf v | (" + cli + " encrypt -o a.age)") == 0);
  const std::string said = output_of("(" + cli + " rekey -i " + shell_quoted(key) + ") 2>&1");
  CHECK(said.find("1 file: 0 rekeyed, 1 unchanged") != std::string::npos);
  CHECK(read_file(dir / "README") == "not a secret\n");
}
