// A fixed set of users and groups, so that manifest tests do not depend on the host's passwd.
#pragma once

#include <map>
#include <string>

#include "secretfs/manifest.hpp"

namespace secretfs::manifest::testing {

class FakeAccounts final : public Accounts {
 public:
  FakeAccounts() {
    add_user("root", {0, 0});
    add_user("postgres", {70, 71});
    add_user("app", {1000, 1001});
    groups_ = {{"root", 0}, {"postgres", 71}, {"keys", 96}, {"wheel", 10}};
  }

  std::optional<User> user_by_name(const std::string& name) const override {
    const auto found = users_by_name_.find(name);
    return found == users_by_name_.end() ? std::nullopt : std::optional(found->second);
  }

  std::optional<User> user_by_uid(uid_t uid) const override {
    const auto found = users_by_uid_.find(uid);
    return found == users_by_uid_.end() ? std::nullopt : std::optional(found->second);
  }

  std::optional<gid_t> group_by_name(const std::string& name) const override {
    const auto found = groups_.find(name);
    return found == groups_.end() ? std::nullopt : std::optional(found->second);
  }

 private:
  void add_user(const std::string& name, User user) {
    users_by_name_.emplace(name, user);
    users_by_uid_.emplace(user.uid, user);
  }

  std::map<std::string, User> users_by_name_;
  std::map<uid_t, User> users_by_uid_;
  std::map<std::string, gid_t> groups_;
};

}  // namespace secretfs::manifest::testing
