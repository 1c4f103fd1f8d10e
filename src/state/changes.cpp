// Which secrets and templates differ between two generations: what a switch changes for the
// services that read them, and so which services must restart.
#include <algorithm>
#include <map>

#include "secretfs/state.hpp"

namespace secretfs::state {

namespace {

// Stored files are named by their content's hash, so equal paths mean equal ciphertexts.
bool same(const manifest::Secret& a, const manifest::Secret& b) {
  return a.file == b.file && a.uid == b.uid && a.gid == b.gid && a.mode == b.mode;
}

template <typename Entry>
std::map<std::string, const Entry*> by_name(const std::vector<Entry>& entries) {
  std::map<std::string, const Entry*> named;
  for (const auto& entry : entries) {
    named.emplace(entry.name, &entry);
  }
  return named;
}

// The names in `after` that are new or differ by `same`, then those gone from it.
template <typename Entry, typename Same>
void add_changed(const std::vector<Entry>& before, const std::vector<Entry>& after, Same same,
                 std::vector<std::string>& changed) {
  const auto old_entries = by_name(before);
  const auto new_entries = by_name(after);
  for (const auto& [name, entry] : new_entries) {
    const auto old = old_entries.find(name);
    if (old == old_entries.end() || !same(*old->second, *entry)) {
      changed.push_back(name);
    }
  }
  for (const auto& [name, entry] : old_entries) {
    if (!new_entries.contains(name)) {
      changed.push_back(name);
    }
  }
}

}  // namespace

std::vector<std::string> changed_secrets(const manifest::Manifest& before,
                                         const manifest::Manifest& after) {
  std::vector<std::string> changed;
  add_changed(before.secrets, after.secrets, same, changed);

  // A template renders differently when its text or a secret it inserts does; who may read it
  // changes with its own owner, group and mode. A referenced secret's owner or mode changes
  // neither.
  const auto old_secrets = by_name(before.secrets);
  const auto new_secrets = by_name(after.secrets);
  const auto same_content = [&](const std::string& name) {
    const auto old = old_secrets.find(name);
    const auto now = new_secrets.find(name);
    return old != old_secrets.end() && now != new_secrets.end() &&
           old->second->file == now->second->file;
  };
  const auto same_template = [&](const manifest::Template& a, const manifest::Template& b) {
    return a.text == b.text && a.uid == b.uid && a.gid == b.gid && a.mode == b.mode &&
           std::all_of(b.references.begin(), b.references.end(), same_content);
  };
  add_changed(before.templates, after.templates, same_template, changed);

  // A secret that becomes a template of the same name (or the other way round) is named by
  // both passes, and a service is restarted once per name.
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  return changed;
}

}  // namespace secretfs::state
