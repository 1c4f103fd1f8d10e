// Reads one secret's or template's table in the manifest: its file (or a template's content),
// owner, group and mode.
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "secretfs/manifest.hpp"

namespace secretfs::manifest {

// One thing wrong with a secret or template, before the manifest's source and the entry's name
// are put in front of it.
struct SecretProblem {
  int line = 0;
  std::string reason;  // "unknown user `postgress`"
};

struct SecretReading {
  Secret secret;        // complete only when there are no problems
  std::string content;  // a template's `content`
  std::vector<SecretProblem> problems;
};

// Reads the table of the secret `name`. Every problem found is reported, not only the first,
// so that one run of `secretfs check` shows all of them. `base_dir` must be absolute.
SecretReading read_secret(const std::string& name, const toml::table& table,
                          const std::filesystem::path& base_dir, const Accounts& accounts);

struct TemplateReading {
  Template template_;  // complete only when there are no problems; the text of a `file` unread
  std::vector<SecretProblem> problems;
};

// Reads the table of the template `name`: owner, group and mode as a secret's, and exactly one
// of `content` (the text itself) and `file` (a file holding it).
TemplateReading read_template(const std::string& name, const toml::table& table,
                              const std::filesystem::path& base_dir, const Accounts& accounts);

// How a TOML value's type reads in a sentence: "a string", "an integer".
std::string_view type_phrase(const toml::node& node);

// The line a key or value starts on, 0 when unknown.
int line_of(const toml::node& node);
int line_of(const toml::key& key);

}  // namespace secretfs::manifest
