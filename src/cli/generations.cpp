// activate, rollback, generations, status and list: changing and showing what the daemon serves.
#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/io.hpp"
#include "cli/onepassword.hpp"
#include "fs/control.hpp"
#include "fs/keyring.hpp"
#include "fs/validation.hpp"
#include "secretfs/counted.hpp"
#include "secretfs/state.hpp"

namespace secretfs::cli {

namespace {

using namespace std::chrono_literals;
// Loading a generation reads every secret's header; thousands of secrets take a moment.
constexpr auto kSwitchTimeout = 120s;
constexpr auto kStatusTimeout = 10s;
constexpr std::size_t kShortHash = 12;

std::string iso_time(std::int64_t seconds) {
  const auto time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  ::gmtime_r(&time, &utc);
  char text[sizeof "2006-01-02T15:04:05Z"];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::filesystem::path state_path(const std::optional<std::string>& flag) {
  return flag ? std::filesystem::path(*flag) : std::filesystem::path(manifest::kDefaultStateDir);
}

struct Switched {
  bool daemon = false;      // a running daemon now serves it
  std::size_t secrets = 0;  // how many it serves

  std::string describe(state::Number number) const {
    if (!daemon) {
      return "generation " + std::to_string(number) +
             " is current; no daemon is running, the next `secretfs mount` serves it";
    }
    return "generation " + std::to_string(number) + " is being served (" +
           counted(secrets, "secret") + ")";
  }
};

// Records `number` as current, then asks the running daemon, if any, to serve it. `current`
// moves first so that a crash between the two steps leaves the state directory naming what the
// admin asked for, and the next start serving it. A daemon that refuses puts `current` back.
Switched make_current(state::StateDir& state, state::Number number) {
  const auto previous = state.current();
  state.set_current(number);

  std::optional<nlohmann::json> answer;
  try {
    answer = fs::ask_daemon(state.control_socket(), {{"command", "switch"}, {"generation", number}},
                            kSwitchTimeout);
  } catch (const std::exception& error) {
    throw Failure("the daemon did not confirm generation " + std::to_string(number) + " (" +
                  error.what() + "); it is recorded as current and is served once the daemon " +
                  "takes it or restarts");
  }
  if (answer && !answer->value("ok", false)) {
    if (previous) {
      state.set_current(*previous);
    }
    throw Failure("the daemon refused generation " + std::to_string(number) + ": " +
                  answer->value("error", std::string("no reason given")) +
                  "; the previous generation keeps serving");
  }
  if (answer && answer->contains("warning")) {
    std::fprintf(stderr, "warning: %s\n", (*answer)["warning"].get<std::string>().c_str());
  }
  return answer ? Switched{true, answer->value("secrets", std::size_t{0})} : Switched{};
}

// Removing old generations is housekeeping: its failure is reported, and does not undo or fail
// the activation that came before it.
std::vector<state::Number> prune(state::StateDir& state, std::size_t keep) {
  try {
    return state.prune(keep);
  } catch (const state::StateError& error) {
    std::fprintf(stderr, "warning: old generations were not pruned: %s\n", error.what());
    return {};
  }
}

// The secrets that switching from `from` to `to` changes for their readers. Without a readable
// `from`, every secret of `to` counts as changed.
std::vector<std::string> changes(const state::StateDir& state, std::optional<state::Number> from,
                                 state::Number to) {
  if (from == to) {
    return {};
  }
  manifest::Manifest previous;
  if (from) {
    try {
      previous = state.load(*from);
    } catch (const state::StateError&) {
      // An unreadable previous generation is compared as an empty one.
    }
  }
  return state::changed_secrets(previous, state.load(to));
}

struct ActivateFlags {
  std::string manifest;
  std::optional<std::string> state_dir;
  bool json = false;
};

int activate(const ActivateFlags& flags) {
  fs::ManifestFile file;
  try {
    file = fs::read_manifest(flags.manifest);
  } catch (const manifest::ManifestError& error) {
    throw Failure(std::string(error.what()) + "; nothing was activated");
  }
  const std::filesystem::path state_dir =
      flags.state_dir ? std::filesystem::path(*flags.state_dir) : file.manifest.state_dir;
  // Values from 1Password are read, and cached, before the generation that serves them is
  // checked and stored; a manifest without any creates nothing before it is checked.
  std::vector<std::string> problems;
  std::vector<std::string> new_values;
  std::optional<state::StateDir> state;
  std::optional<state::Lock> lock;
  if (!references_of(file.manifest).empty()) {
    state.emplace(state::StateDir::open(state_dir));
    lock.emplace(state->lock());
    auto values = read_new_values(*state, file.manifest);
    problems = std::move(values.problems);
    new_values = std::move(values.changed);
    state->attach_values(file.manifest);
  }
  for (auto& problem : fs::validate(file.manifest, FilePermissions::strict)) {
    problems.push_back(std::move(problem));
  }
  if (!problems.empty()) {
    for (const auto& problem : problems) {
      std::fprintf(stderr, "error: %s\n", problem.c_str());
    }
    throw Failure(counted(problems.size(), "problem") +
                  "; nothing was activated and the current generation keeps serving");
  }

  if (!state) {
    state.emplace(state::StateDir::open(state_dir));
    lock.emplace(state->lock());
  }
  const auto previous = state->current();
  const state::Stored stored = state->store(file.manifest, file.text);
  auto changed = changes(*state, previous, stored.number);
  changed.insert(changed.end(), new_values.begin(), new_values.end());
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  const Switched switched = make_current(*state, stored.number);
  const auto pruned = prune(*state, file.manifest.keep_generations);

  if (flags.json) {
    const nlohmann::json report = {{"generation", stored.number},
                                   {"created", stored.created},
                                   {"served", switched.daemon},
                                   {"changed", changed},
                                   {"pruned", pruned}};
    std::printf("%s\n", report.dump().c_str());
    return 0;
  }
  if (!stored.created) {
    std::printf("%s is identical to generation %llu\n", file.manifest.path.c_str(),
                static_cast<unsigned long long>(stored.number));
  }
  std::printf("%s\n", switched.describe(stored.number).c_str());
  for (const auto& name : changed) {
    std::printf("changed: %s\n", name.c_str());
  }
  for (const auto number : pruned) {
    std::printf("pruned generation %llu\n", static_cast<unsigned long long>(number));
  }
  return 0;
}

struct RollbackFlags {
  std::optional<state::Number> to;
  std::optional<std::string> state_dir;
};

int rollback(const RollbackFlags& flags) {
  auto state = state::StateDir::open_existing(state_path(flags.state_dir));
  const auto lock = state.lock();
  const auto current = state.current();
  std::optional<state::Number> target = flags.to;
  if (!target) {
    for (const auto& generation : state.generations()) {
      if (current && generation.number < *current) {
        target = generation.number;
      }
    }
  }
  if (!target) {
    throw Failure("no generation before the current one in " + state.path().string());
  }
  if (!state.generation(*target)) {
    throw Failure("no generation " + std::to_string(*target) + " in " + state.path().string());
  }
  // Checked here too, for when no daemon runs to refuse it: an identity file or a stored
  // ciphertext may have gone since the generation was stored.
  const auto problems = fs::validate(state.load(*target), FilePermissions::strict);
  if (!problems.empty()) {
    for (const auto& problem : problems) {
      std::fprintf(stderr, "error: %s\n", problem.c_str());
    }
    throw Failure("generation " + std::to_string(*target) + " has " +
                  counted(problems.size(), "problem") + "; the current generation keeps serving");
  }
  std::printf("%s\n", make_current(state, *target).describe(*target).c_str());
  return 0;
}

struct ListFlags {
  std::optional<std::string> state_dir;
  bool json = false;
};

int generations(const ListFlags& flags) {
  const auto state = state::StateDir::open_existing(state_path(flags.state_dir));
  const auto all = state.generations();
  if (flags.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& generation : all) {
      list.push_back(
          {{"number", generation.number},
           {"created", iso_time(generation.created)},
           {"manifest", generation.manifest.string()},
           {"manifest_sha256", generation.manifest_sha256},
           {"secrets", generation.secrets},
           {"current", generation.current},
           {"problem", generation.problem.empty() ? nlohmann::json(nullptr)
                                                  : nlohmann::json(generation.problem)}});
    }
    std::printf("%s\n", list.dump(2).c_str());
    return 0;
  }
  std::printf("%-10s %-20s %-12s %7s  %s\n", "generation", "created", "manifest", "secrets", "");
  for (const auto& generation : all) {
    if (!generation.problem.empty()) {
      std::printf("%-10llu damaged: %s%s\n", static_cast<unsigned long long>(generation.number),
                  generation.problem.c_str(), generation.current ? " (current)" : "");
      continue;
    }
    std::printf("%-10llu %-20s %-12s %7zu  %s\n",
                static_cast<unsigned long long>(generation.number),
                iso_time(generation.created).c_str(),
                generation.manifest_sha256.substr(0, kShortHash).c_str(), generation.secrets,
                generation.current ? "current" : "");
  }
  return 0;
}

// The status a daemon would give, worked out from the state directory alone.
nlohmann::json offline_status(const state::StateDir& state) {
  nlohmann::json status = {{"ok", true},
                           {"daemon", false},
                           {"state_dir", state.path().string()},
                           {"generation", nullptr}};
  const auto current = state.current();
  if (!current) {
    return status;
  }
  const auto manifest = state.load(*current);
  const fs::Keyring keyring = fs::load_keyring(manifest.identities, FilePermissions::strict);
  nlohmann::json identities = nlohmann::json::array();
  for (const auto& identity : keyring.identities) {
    identities.push_back(identity->describe());
  }
  status["generation"] = *current;
  status["mount_point"] = manifest.mount_point.string();
  status["secrets"] = manifest.secrets.size();
  status["templates"] = manifest.templates.size();
  status["identities"] = identities;
  status["problems"] = fs::validate(manifest, FilePermissions::strict);
  return status;
}

void print_status(const nlohmann::json& status) {
  if (status.value("daemon", true)) {
    std::printf("daemon:      running, pid %d\n", status.value("pid", 0));
  } else {
    std::printf("daemon:      not running\n");
  }
  std::printf("state dir:   %s\n", status.value("state_dir", std::string()).c_str());
  const bool daemon = status.value("daemon", true);
  if (status["generation"].is_null() && !daemon) {
    std::printf("generation:  none\n");
    return;
  }
  std::printf("mount point: %s\n", status.value("mount_point", std::string()).c_str());
  if (status["generation"].is_null()) {
    std::printf("generation:  none (a manifest served as it is, not stored)\n");
  } else {
    std::printf("generation:  %llu\n", status["generation"].get<unsigned long long>());
  }
  std::printf("secrets:     %zu\n", status.value("secrets", std::size_t{0}));
  std::printf("templates:   %zu\n", status.value("templates", std::size_t{0}));
  for (const auto& identity : status.value("identities", nlohmann::json::array())) {
    std::printf("identity:    %s\n", identity.get<std::string>().c_str());
  }
  for (const auto& value : status.value("onepassword", nlohmann::json::array())) {
    std::printf("1password:   %s: %s\n", value.value("reference", std::string()).c_str(),
                value["fetched"].is_null()
                    ? "no value yet"
                    : ("read " + value["fetched"].get<std::string>()).c_str());
  }
  for (const auto& warning : status.value("warnings", nlohmann::json::array())) {
    std::printf("warning:     %s\n", warning.get<std::string>().c_str());
  }
  for (const auto& problem : status.value("problems", nlohmann::json::array())) {
    std::printf("problem:     %s\n", problem.get<std::string>().c_str());
  }
}

int status(const ListFlags& flags) {
  const auto state = state::StateDir::open_existing(state_path(flags.state_dir));
  auto answer = fs::ask_daemon(state.control_socket(), {{"command", "status"}}, kStatusTimeout);
  nlohmann::json status = answer ? *answer : offline_status(state);
  if (answer) {
    status["daemon"] = true;
    // An activation that died between recording and switching leaves the two apart.
    const auto current = state.current();
    if (current && status.contains("generation") && status["generation"] != *current) {
      status["problems"].push_back("the daemon serves generation " + status["generation"].dump() +
                                   " but generation " + std::to_string(*current) +
                                   " is current; run `secretfs rollback --to " +
                                   std::to_string(*current) + "` to serve it");
    }
  }
  if (!status.value("ok", false)) {
    throw Failure("the daemon did not answer: " + status.value("error", std::string()));
  }
  status.erase("ok");
  if (flags.json) {
    std::printf("%s\n", status.dump(2).c_str());
  } else {
    print_status(status);
  }
  return 0;
}

// A user's or group's name, or its number when the system has no name for it.
std::string user_name(uid_t uid) {
  const passwd* entry = ::getpwuid(uid);
  return entry != nullptr ? entry->pw_name : std::to_string(uid);
}

std::string group_name(gid_t gid) {
  const group* entry = ::getgrgid(gid);
  return entry != nullptr ? entry->gr_name : std::to_string(gid);
}

int list(const ListFlags& flags) {
  const auto state = state::StateDir::open_existing(state_path(flags.state_dir));
  const auto answer = fs::ask_daemon(state.control_socket(), {{"command", "list"}}, kStatusTimeout);
  if (!answer) {
    throw Failure("no daemon serves " + state.path().string() +
                  "; `secretfs status` shows the stored generations");
  }
  nlohmann::json listing = *answer;
  if (!listing.value("ok", false)) {
    throw Failure("the daemon did not answer: " + listing.value("error", std::string()));
  }
  listing.erase("ok");
  // A daemon from before templates existed lists none.
  if (!listing.contains("templates")) {
    listing["templates"] = nlohmann::json::array();
  }
  for (const char* kind : {"secrets", "templates"}) {
    for (auto& entry : listing[kind]) {
      entry["owner"] = user_name(entry.at("uid").get<uid_t>());
      entry["group"] = group_name(entry.at("gid").get<gid_t>());
    }
  }
  if (flags.json) {
    std::printf("%s\n", listing.dump(2).c_str());
    return 0;
  }
  const std::string generation =
      listing["generation"].is_null() ? "-" : listing["generation"].dump();
  std::printf("%-40s %-12s %-12s %-4s %10s %-10s %s\n", "path", "owner", "group", "mode", "size",
              "generation", "problems");
  for (const char* kind : {"secrets", "templates"}) {
    for (const auto& entry : listing[kind]) {
      std::string problems;
      for (const auto& problem : entry["problems"]) {
        problems += (problems.empty() ? "" : "; ") + problem.get<std::string>();
      }
      // A template that chomps shows at most this many bytes until it is first rendered.
      const std::string size = (entry.value("size_exact", true) ? "" : "<=") +
                               std::to_string(entry["size"].get<unsigned long long>());
      std::printf(
          "%-40s %-12s %-12s %-4s %10s %-10s %s\n", entry["path"].get<std::string>().c_str(),
          entry["owner"].get<std::string>().c_str(), entry["group"].get<std::string>().c_str(),
          entry["mode"].get<std::string>().c_str(), size.c_str(), generation.c_str(),
          problems.empty() ? "none" : problems.c_str());
    }
  }
  for (const auto& problem : listing["problems"]) {
    std::printf("problem: %s\n", problem.get<std::string>().c_str());
  }
  return 0;
}

void add_state_dir(CLI::App* command, std::optional<std::string>& state_dir) {
  command->add_option("--state-dir", state_dir,
                      "Where generations live (default: /var/lib/secretfs)");
}

}  // namespace

void add_activate(CLI::App& app, Command& selected) {
  auto flags = std::make_shared<ActivateFlags>();
  auto* command = app.add_subcommand(
      "activate", "Validate a manifest, store it as a generation and have the daemon serve it");
  command->add_option("-m,--manifest", flags->manifest, "Manifest file (TOML)")->required();
  command->add_option("--state-dir", flags->state_dir,
                      "Where generations live (default: the manifest's state_dir)");
  command->add_flag("--json", flags->json,
                    "Print {generation, created, served, changed, pruned} as JSON");
  command->callback([&selected, flags] { selected = [flags] { return activate(*flags); }; });
}

void add_rollback(CLI::App& app, Command& selected) {
  auto flags = std::make_shared<RollbackFlags>();
  auto* command =
      app.add_subcommand("rollback", "Serve the previous generation again (or the one given)");
  command->add_option("--to", flags->to, "Generation number to return to")
      ->check(CLI::PositiveNumber);
  add_state_dir(command, flags->state_dir);
  command->callback([&selected, flags] { selected = [flags] { return rollback(*flags); }; });
}

void add_generations(CLI::App& app, Command& selected) {
  auto flags = std::make_shared<ListFlags>();
  auto* command = app.add_subcommand("generations", "List the stored generations");
  add_state_dir(command, flags->state_dir);
  command->add_flag("--json", flags->json, "Print JSON");
  command->callback([&selected, flags] { selected = [flags] { return generations(*flags); }; });
}

void add_status(CLI::App& app, Command& selected) {
  auto flags = std::make_shared<ListFlags>();
  auto* command = app.add_subcommand("status", "Show what the daemon serves and its problems");
  add_state_dir(command, flags->state_dir);
  command->add_flag("--json", flags->json, "Print JSON");
  command->callback([&selected, flags] { selected = [flags] { return status(*flags); }; });
}

}  // namespace secretfs::cli

namespace secretfs::cli {

void add_list(CLI::App& app, Command& selected) {
  auto flags = std::make_shared<ListFlags>();
  auto* command = app.add_subcommand(
      "list",
      "List every served secret and template: path, owner, group, mode, size, generation, "
      "problems");
  add_state_dir(command, flags->state_dir);
  command->add_flag("--json", flags->json, "Print JSON");
  command->callback([&selected, flags] { selected = [flags] { return list(*flags); }; });
}

}  // namespace secretfs::cli
