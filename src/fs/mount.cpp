#include "fs/mount.hpp"

#include <fcntl.h>
#include <signal.h>
#include <malloc.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <spawn.h>
#include <sys/wait.h>
#include <string>
#include <thread>
#include <vector>

#include "fs/control.hpp"
#include "fs/detach.hpp"
#include "fs/loop.hpp"
#include "fs/mount_point.hpp"
#include "fs/operations.hpp"
#include "fs/refresher.hpp"
#include "fs/signals.hpp"
#include "fs/validation.hpp"
#include "secretfs/counted.hpp"
#include "secretfs/log.hpp"

namespace secretfs::fs {

namespace {

// ro: the kernel answers EROFS to every change before asking us. allow_other: every user may
// look; no default_permissions, because the daemon decides each open itself (operations.cpp),
// so that a refused open reaches the audit trail too. nosuid, nodev, noexec: nothing here runs.
constexpr const char* kMountOptions =
    "ro,nosuid,nodev,noexec,allow_other,fsname=secretfs,subtype=secretfs";

constexpr std::size_t kLogLineSize = 1024;
// The nice value of work that may wait for the requests of readers: the first check of files.
constexpr int kBackgroundNice = 10;
// `systemctl --no-block` returns at once; one that does not (D-Bus stuck) is killed.
constexpr std::chrono::seconds kSystemctlTimeout{30};
constexpr std::chrono::milliseconds kSystemctlPoll{20};

// A process holding plaintext must not leave it in a core dump, and must not be readable
// through /proc or ptrace by a process of the same uid.
void forbid_core_dumps() {
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0 || ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    spdlog::warn("could not disable core dumps: {}", std::strerror(errno));
  }
}

// libfuse's own messages go through our logger.
void fuse_log(enum fuse_log_level level, const char* format, va_list arguments) {
  char line[kLogLineSize];
  std::vsnprintf(line, sizeof line, format, arguments);
  std::string_view text(line);
  while (!text.empty() && text.back() == '\n') {
    text.remove_suffix(1);
  }
  spdlog::log(level <= FUSE_LOG_ERR       ? spdlog::level::err
              : level == FUSE_LOG_WARNING ? spdlog::level::warn
                                          : spdlog::level::debug,
              "fuse: {}", text);
}

// libfuse unmounts by the path it mounted, and a detached daemon moves to / once it is ready:
// a relative mount point must not be left relative.
std::filesystem::path absolute_path(const std::filesystem::path& path) {
  return std::filesystem::absolute(path).lexically_normal();
}

// Held for the daemon's whole life, so that a second daemon on the same state directory is
// refused instead of taking over its control socket.
int lock_state_for_daemon(const std::filesystem::path& state_dir) {
  const auto path = state_dir / "daemon.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    throw std::runtime_error(path.string() + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::runtime_error(
        error == EWOULDBLOCK ? "another secretfs daemon already serves " + state_dir.string() +
                                   " (see `secretfs status --state-dir " + state_dir.string() + "`)"
                             : path.string() + ": " + std::strerror(error));
  }
  return fd;
}

// Owns the FUSE session and undoes each step it took, in reverse, however it is left.
class Session {
 public:
  Session(Served& served, const std::filesystem::path& mount_point) : served_(served) {
    std::vector<const char*> argv{"secretfs", "-o", kMountOptions};
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
    session_ = fuse_session_new(&args, &operations(), sizeof(fuse_lowlevel_ops), &served);
    fuse_opt_free_args(&args);
    if (session_ == nullptr) {
      throw std::runtime_error("could not create the FUSE session");
    }
    try {
      if (fuse_set_signal_handlers(session_) != 0) {
        throw std::runtime_error("could not install signal handlers");
      }
      handlers_ = true;
      // SIGHUP reopens the audit log (log rotation) instead of stopping the daemon.
      AuditTrail::reopen_on_sighup();
      if (fuse_session_mount(session_, mount_point.c_str()) != 0) {
        throw std::runtime_error("could not mount at " + mount_point.string());
      }
    } catch (...) {
      close();
      throw;
    }
    mounted_ = true;
    served.attach(session_);
  }

  ~Session() { close(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int serve() { return serve_requests(session_); }

 private:
  void close() {
    served_.attach(nullptr);
    if (mounted_) {
      fuse_session_unmount(session_);
      mounted_ = false;
    }
    if (handlers_) {
      fuse_remove_signal_handlers(session_);
      handlers_ = false;
    }
    if (session_ != nullptr) {
      fuse_session_destroy(session_);
      session_ = nullptr;
    }
  }

  Served& served_;
  fuse_session* session_ = nullptr;
  bool handlers_ = false;
  bool mounted_ = false;
};

// The daemon: what it serves, where its generations are, and how it answers the control socket.
class Daemon {
 public:
  explicit Daemon(const MountOptions& options) : options_(options) {}
  ~Daemon() {
    if (daemon_lock_ >= 0) {
      ::close(daemon_lock_);
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Picks the set to serve first. A given manifest that validates becomes the current
  // generation; one that does not leaves the current generation serving, or, when there is
  // none yet, is served as it is so that its good secrets are available.
  void start() {
    std::optional<ManifestFile> given;
    if (options_.manifest) {
      given = read_manifest(*options_.manifest);
      give_back_memory();  // what parsing took besides the manifest itself
    }
    const std::filesystem::path state_path =
        options_.state_dir ? *options_.state_dir
        : given            ? given->manifest.state_dir
                           : std::filesystem::path(manifest::kDefaultStateDir);
    if (!given && !std::filesystem::exists(state_path)) {
      throw std::runtime_error("no state directory at " + state_path.string() +
                               ": give --manifest, or run `secretfs activate` first");
    }
    // Only an activation creates a state directory; serving what is stored creates nothing.
    state_.emplace(given ? state::StateDir::open(state_path)
                         : state::StateDir::open_existing(state_path));
    daemon_lock_ = lock_state_for_daemon(state_->path());

    if (given) {
      // Values read from 1Password earlier are served at once; the refresher reads the rest.
      state_->attach_values(given->manifest);
      // A restart finds its manifest stored already, whole, as the current generation. Its
      // files were checked when it was activated, and the set served from it checks the stored
      // copies again, so checking them here too would only double the start-up, and there is
      // nothing to store.
      const bool restart = state_->is_current(given->manifest, given->text);
      const auto problems = validate(given->manifest, options_.identity_permissions,
                                     restart ? Files::skip : Files::check);
      if (problems.empty()) {
        if (!restart) {
          activate(*given);
        }
      } else {
        for (const auto& problem : problems) {
          spdlog::error("{}", problem);
        }
        if (!state_->current()) {
          spdlog::warn(
              "{}: {} and no earlier generation to fall back on; serving "
              "its good secrets without storing a generation",
              given->manifest.path.string(), counted(problems.size(), "problem"));
          use_mount_point(options_.mount_point.value_or(given->manifest.mount_point));
          unstored_ = given->manifest;  // rebuilt from this when a 1Password value changes
          served_.emplace(build(std::move(given->manifest), 0, FileChecks::later));
          give_back_memory();
          return;
        }
        spdlog::warn("{}: not activated because of {}; serving generation {}",
                     given->manifest.path.string(), counted(problems.size(), "problem"),
                     *state_->current());
      }
    }

    given.reset();  // not needed any more: the set is built from the stored generation
    const auto current = state_->current();
    if (!current) {
      throw std::runtime_error("no generation to serve in " + state_path.string() +
                               ": give --manifest, or run `secretfs activate` first");
    }
    auto set = load_generation(*current, FileChecks::later);
    use_mount_point(options_.mount_point.value_or(set->mount_point()));
    served_.emplace(std::move(set));
    give_back_memory();
  }

  // `detacher`: the daemon's side of a detached start, nullptr in the foreground.
  int run(Detacher* detacher) {
    // Opened now rather than at the first open of a secret, so that a log that cannot be used
    // is an error on the terminal (or in the journal) of whoever starts the daemon. Before the
    // mount: this thread serves the mount, and must not wait on it for a log kept below it.
    served_->audit().use(served_->current()->audit_log());
    prepare_mount_point(mount_point_, options_.mount_point_contents);
    const auto set = served_->current();
    // After the dead mounts are detached: until then nothing under the mount point resolves.
    refuse_reading_through_mount(*set);
    Session session(*served_, mount_point_);
    const std::size_t templates = set->tree().templates().size();
    spdlog::info("mounted {}{} (generation {}) at {}",
                 counted(set->tree().secrets().size(), "secret"),
                 templates == 0 ? "" : " and " + counted(templates, "template"), set->generation(),
                 mount_point_.string());

    const ControlServer control(state_->control_socket(),
                                [this](const nlohmann::json& request) { return answer(request); });

    // Like systemd below, whoever started a background daemon goes on only once both the mount
    // and the control socket answer, so that a `secretfs status` right after finds it.
    if (detacher != nullptr) {
      detacher->ready();
    }

    // systemd (Type=notify) starts the services that need secrets only now that the mount
    // answers and activations can reach the daemon. Without NOTIFY_SOCKET this does nothing.
    sd_notifyf(0, "READY=1\nSTATUS=serving generation %llu at %s",
               static_cast<unsigned long long>(set->generation()), mount_point_.c_str());

    const std::jthread checker = check_in_background(set);

    // After the mount and the control socket: reading from 1Password never delays either.
    Refresher refresher(
        *state_, [this] { return served_->current(); },
        [this](const std::vector<std::string>& secrets) { refreshed(secrets); });
    refresher_ = &refresher;

    // The loop returns 0 when unmounted from outside or when SIGINT or SIGTERM asked it to stop,
    // and a negative errno when it failed.
    const int status = session.serve();
    sd_notify(0, "STOPPING=1");
    {
      const std::lock_guard switching(switch_mutex_);
      refresher_ = nullptr;
    }
    if (status < 0) {
      spdlog::error("serving {} failed: {}", mount_point_.string(), std::strerror(-status));
    }
    spdlog::info("unmounting {}", mount_point_.string());
    return status < 0 ? 1 : 0;
  }

 private:
  // Everything below names the mount point by its real path: the kernel mounts there, lists
  // it so in /proc/self/mountinfo, and libfuse unmounts by the path it was given, so a link
  // replaced while the daemon runs must not send the unmount, or the search for a dead
  // mount, elsewhere.
  void use_mount_point(const std::filesystem::path& configured) {
    configured_mount_point_ = absolute_path(configured);
    mount_point_ = real_mount_point(configured);
    if (mount_point_ != configured_mount_point_) {
      spdlog::info(
          "mount point {} is reached through a symbolic link; mounting on its real path {}",
          configured_mount_point_.string(), mount_point_.string());
    }
  }

  // The daemon reads the state directory, the identity files and (when serving a manifest
  // directly) the age files while it serves; one of them below its own mount point would make
  // it wait for itself forever.
  void refuse_reading_through_mount(const SecretSet& set) const {
    std::vector<std::filesystem::path> needed{state_->path()};
    needed.insert(needed.end(), set.keyring().paths.begin(), set.keyring().paths.end());
    for (const auto& secret : set.tree().secrets()) {
      if (!secret.file.empty()) {  // empty: a 1Password value not read yet
        needed.push_back(secret.file);
      }
    }
    refuse_hiding(mount_point_, needed);
  }

  // The first set is served before its files are checked (FileChecks::later): the check, one
  // X25519 unwrap per secret, is most of a start with thousands of secrets. It runs here, below
  // the request loop's priority, while services already read; an open that comes first checks
  // its own secret, as any first open does. What it finds is logged as the check at a switch
  // logs it.
  static std::jthread check_in_background(std::shared_ptr<const SecretSet> set) {
    return thread_without_loop_signals<std::jthread>([set](std::stop_token stop) {
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kBackgroundNice);
      const auto started = std::chrono::steady_clock::now();
      const auto problems = set->check_files(stop);
      for (const auto& problem : problems) {
        spdlog::error("{} (opening it fails with EIO)", problem);
      }
      if (!stop.stop_requested()) {
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
        spdlog::info("checked the files of {} in {:.2f} s: {}",
                     counted(set->tree().secrets().size(), "secret"), took.count(),
                     counted(problems.size(), "problem"));
      }
    });
  }

  // Reading manifests and records for thousands of secrets takes memory that the daemon does
  // not keep; without this the heap would keep holding it for the daemon's whole life.
  static void give_back_memory() { ::malloc_trim(0); }

  void activate(const ManifestFile& given) {
    const auto lock = state_->lock();
    const state::Stored stored = state_->store(given.manifest, given.text);
    give_back_memory();  // the record and the blobs' names, before pruning reads the others
    if (state_->current() != stored.number) {
      state_->set_current(stored.number);
      spdlog::info("activated {} as generation {}", given.manifest.path.string(), stored.number);
    }
    for (const auto number : state_->prune(given.manifest.keep_generations)) {
      spdlog::info("pruned generation {}", number);
    }
  }

  std::shared_ptr<const SecretSet> build(manifest::Manifest manifest, state::Number generation,
                                         FileChecks checks) {
    auto keyring = std::make_shared<const Keyring>(
        load_keyring(manifest.identities, options_.identity_permissions));
    for (const auto& waived : keyring->waived) {
      spdlog::warn("{}; used anyway because of --insecure-identity-permissions", waived);
    }
    auto set = std::make_shared<const SecretSet>(std::move(manifest), keyring, inodes_, generation,
                                                 checks);
    for (const auto& problem : set->problems()) {
      spdlog::error("{}", problem);
    }
    return set;
  }

  std::shared_ptr<const SecretSet> load_generation(state::Number number, FileChecks checks) {
    return build(state_->load(number), number, checks);
  }

  nlohmann::json answer(const nlohmann::json& request) {
    const std::string command = request.at("command").get<std::string>();
    if (command == "switch") {
      // nlohmann converts -1 or 1e23 to some unsigned number without a word.
      const nlohmann::json& generation = request.at("generation");
      if (!generation.is_number_unsigned()) {
        return {{"ok", false},
                {"error", "`generation` must be a generation number, not " + generation.dump()}};
      }
      return switch_to(generation.get<state::Number>());
    }
    if (command == "status") {
      return status();
    }
    if (command == "list") {
      return list();
    }
    return {{"ok", false}, {"error", "unknown command `" + command + "`"}};
  }

  // Switches only to a generation whose every secret opens: a generation whose identity file
  // or stored ciphertext has gone missing since it was stored is refused, and the current one
  // keeps serving.
  nlohmann::json switch_to(state::Number number) {
    const std::lock_guard switching(switch_mutex_);
    auto set = load_generation(number, FileChecks::now);
    const auto problems = problems_of(*set);
    if (!problems.empty()) {
      std::string reasons;
      for (const auto& problem : problems) {
        reasons += (reasons.empty() ? "" : "; ") + problem;
      }
      spdlog::error("refused to switch to generation {}: {}", number, reasons);
      return {{"ok", false},
              {"error", "generation " + std::to_string(number) + " has " +
                            counted(problems.size(), "problem") + ": " + reasons}};
    }
    nlohmann::json answer = {{"ok", true}, {"generation", number}};
    const auto named = absolute_path(set->mount_point());
    if (!options_.mount_point && named != configured_mount_point_ && named != mount_point_) {
      answer["warning"] = "generation " + std::to_string(number) + " names mount point " +
                          set->mount_point().string() + "; the daemon keeps serving at " +
                          mount_point_.string() + " until it restarts";
      spdlog::warn("{}", answer["warning"].get<std::string>());
    }
    const std::size_t count = set->tree().secrets().size();
    answer["secrets"] = count;
    const std::filesystem::path audit_log = set->audit_log();
    const auto previous = served_->replace(std::move(set));
    served_->audit().use(audit_log);
    sd_notifyf(0, "STATUS=serving generation %llu at %s", static_cast<unsigned long long>(number),
               mount_point_.c_str());
    spdlog::info("switched from generation {} to generation {} ({})", previous->generation(),
                 number, counted(count, "secret"));
    if (refresher_ != nullptr) {
      refresher_->wake();
    }
    give_back_memory();
    return answer;
  }

  // The refresher stored new values of `secrets`: the served generation is built again around
  // them, so new opens get them (open files keep the bytes they have), and the units that
  // read them are restarted or reloaded.
  void refreshed(const std::vector<std::string>& secrets) {
    manifest::Units units;
    {
      const std::lock_guard switching(switch_mutex_);
      const auto number = served_->current()->generation();
      std::shared_ptr<const SecretSet> set;
      try {
        if (number == 0 && unstored_) {
          manifest::Manifest manifest = *unstored_;
          state_->attach_values(manifest);
          set = build(std::move(manifest), 0, FileChecks::now);
        } else {
          set = load_generation(number, FileChecks::now);
        }
      } catch (const std::exception& error) {
        spdlog::error("1Password: could not serve the new values: {}", error.what());
        return;
      }
      served_->replace(set);
      for (const auto& secret : secrets) {
        AuditEvent event{secret, number, 0, 0, ::getpid(), Outcome::refreshed, 0};
        served_->audit().record(set->audit_log(), event);
      }
      units = set->units_for(secrets);
    }
    // Outside the lock: `status` and switches never wait for systemctl.
    run_systemctl("try-restart", units.restart);
    run_systemctl("try-reload-or-restart", units.reload);
    give_back_memory();
  }

  // `systemctl --no-block VERB -- UNITS`: queued, not waited for, so that a unit that takes
  // long to restart never holds the daemon; a systemctl that itself hangs is killed after
  // kSystemctlTimeout. SECRETFS_SYSTEMCTL names another program (tests).
  static void run_systemctl(const char* verb, const std::vector<std::string>& units) {
    if (units.empty()) {
      return;
    }
    const char* program = std::getenv("SECRETFS_SYSTEMCTL");
    std::vector<std::string> words{program != nullptr ? program : "systemctl", "--no-block", verb,
                                   "--"};
    words.insert(words.end(), units.begin(), units.end());
    std::vector<char*> argv;
    for (auto& word : words) {
      argv.push_back(word.data());
    }
    argv.push_back(nullptr);
    // A process group of its own, so that a timeout kills whatever it started too.
    posix_spawnattr_t attributes;
    ::posix_spawnattr_init(&attributes);
    ::posix_spawnattr_setpgroup(&attributes, 0);
    ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    pid_t child = 0;
    const int error = ::posix_spawnp(&child, argv[0], nullptr, &attributes, argv.data(), environ);
    ::posix_spawnattr_destroy(&attributes);
    if (error != 0) {
      spdlog::error("could not run {}: {}", words[0], std::strerror(error));
      return;
    }
    std::string list;
    for (const auto& unit : units) {
      list += (list.empty() ? "" : " ") + unit;
    }
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + kSystemctlTimeout;
    pid_t waited = 0;
    while ((waited = ::waitpid(child, &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(kSystemctlPoll);
    }
    if (waited == 0) {
      ::kill(-child, SIGKILL);
      while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      spdlog::error("{} {} {} did not finish within {} s and was killed", words[0], verb, list,
                    kSystemctlTimeout.count());
      return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      spdlog::info("{} {}: a 1Password value they read changed", verb, list);
    } else {
      spdlog::error("{} {} {} failed ({})", words[0], verb, list,
                    WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "killed by signal " + std::to_string(WTERMSIG(status)));
    }
  }

  // What is wrong with `set`: refused secrets, unusable identity files, and each secret that
  // the identities do not open. Checking the last unwraps every file key, which the set keeps
  // for the opens that follow.
  static std::vector<std::string> problems_of(const SecretSet& set) {
    std::vector<std::string> problems(set.setup_problems().begin(), set.setup_problems().end());
    for (auto& problem : set.check_files()) {
      problems.push_back(std::move(problem));
    }
    return problems;
  }

  // The served set's problems, and the audit log's while its records go to the daemon's log.
  std::vector<std::string> with_audit_problem(std::vector<std::string> problems,
                                              const SecretSet& set) const {
    if (auto problem = served_->audit().problem(set.audit_log())) {
      problems.push_back(std::move(*problem));
    }
    return problems;
  }

  nlohmann::json status() {
    std::vector<std::string> warnings;
    nlohmann::json values = nlohmann::json::array();
    {
      const std::lock_guard switching(switch_mutex_);  // the refresher goes under it
      if (refresher_ != nullptr) {
        warnings = refresher_->warnings();
        values = refresher_->status();
      }
    }
    const auto set = served_->current();
    nlohmann::json identities = nlohmann::json::array();
    for (const auto& identity : set->keyring().identities) {
      identities.push_back(identity->describe());
    }
    return {{"ok", true},
            {"pid", ::getpid()},
            {"mount_point", mount_point_.string()},
            {"state_dir", state_->path().string()},
            {"generation",
             set->generation() == 0 ? nlohmann::json(nullptr) : nlohmann::json(set->generation())},
            {"secrets", set->tree().secrets().size()},
            {"templates", set->tree().templates().size()},
            {"identities", identities},
            {"problems", with_audit_problem(problems_of(*set), *set)},
            {"warnings", warnings},
            {"onepassword", values}};
  }

  // One served secret or template as `list` shows it.
  template <typename Served>
  nlohmann::json listed(const Served& entry, std::uint64_t size, const std::string& problem) const {
    return {
        {"name", entry.name},
        {"path", (mount_point_ / entry.name).string()},
        {"uid", entry.uid},
        {"gid", entry.gid},
        {"mode", fmt::format("{:04o}", entry.mode)},
        {"size", size},
        {"problems", problem.empty() ? nlohmann::json::array() : nlohmann::json::array({problem})}};
  }

  // Every served secret and template as an admin audits it: where it is, who may read it, how
  // large it is, and what is wrong with it now.
  nlohmann::json list() const {
    const auto set = served_->current();
    nlohmann::json secrets = nlohmann::json::array();
    const auto all = set->tree().secrets();
    for (std::size_t index = 0; index < all.size(); ++index) {
      std::string problem = set->check_file(index);
      if (problem.empty() && all[index].file.empty()) {
        problem = "secret `" + all[index].name +
                  "`: no value from 1Password yet, opening it fails with EIO (see `secretfs "
                  "status`)";
      }
      secrets.push_back(listed(all[index], set->size_of(index), problem));
    }
    nlohmann::json templates = nlohmann::json::array();
    const auto rendered = set->tree().templates();
    for (std::size_t index = 0; index < rendered.size(); ++index) {
      templates.push_back(
          listed(rendered[index], set->template_size_of(index), set->check_template(index)));
      templates.back()["size_exact"] = set->template_size_is_exact(index);
    }
    return {{"ok", true},
            {"generation",
             set->generation() == 0 ? nlohmann::json(nullptr) : nlohmann::json(set->generation())},
            {"secrets", secrets},
            {"templates", templates},
            {"problems", with_audit_problem(
                             {set->setup_problems().begin(), set->setup_problems().end()}, *set)}};
  }

  const MountOptions& options_;
  InodeRegistry inodes_;
  std::optional<state::StateDir> state_;
  std::optional<Served> served_;
  std::filesystem::path mount_point_;             // the real path, links resolved
  std::filesystem::path configured_mount_point_;  // as the manifest or --mount-point named it
  int daemon_lock_ = -1;
  std::optional<manifest::Manifest> unstored_;  // what generation 0 serves, values unattached
  std::mutex switch_mutex_;  // one switch or refresh at a time, so neither undoes the other
  Refresher* refresher_ = nullptr;  // while serving; under switch_mutex_ when it goes
};

}  // namespace

int run_mount(const MountOptions& options) {
  try {
    // Before anything else: see detach.hpp.
    std::optional<Detacher> detacher;
    if (options.detach == Detach::yes) {
      detacher.emplace();
      if (!detacher->in_daemon()) {
        return detacher->wait_for_daemon();
      }
    }
    forbid_core_dumps();
    fuse_set_log_func(fuse_log);
    Daemon daemon(options);
    daemon.start();
    return daemon.run(detacher ? &*detacher : nullptr);
  } catch (const std::exception& error) {
    spdlog::error("{}", error.what());
    return 1;
  }
}

}  // namespace secretfs::fs
