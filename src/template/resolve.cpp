// Which templates of a manifest can be served: text that parses, and placeholders that each
// name a secret the manifest serves. Checked before anything is stored or served, so that
// `check` and `activate` name each fault, and so that a template the daemon serves can always
// find its secrets.
#include <algorithm>
#include <optional>
#include <set>

#include "manifest/names.hpp"
#include "secretfs/age/age.hpp"
#include "secretfs/template.hpp"

namespace secretfs::templates {

namespace {

using manifest::EntryKind;

std::set<std::string> refused_names(const manifest::Manifest& manifest, EntryKind kind) {
  std::set<std::string> names;
  for (const manifest::Problem& problem : manifest.problems) {
    if (problem.kind == kind && !problem.secret.empty()) {
      names.insert(problem.secret);
    }
  }
  return names;
}

void refuse(manifest::Manifest& manifest, std::string_view source, const manifest::Template& entry,
            const std::string& reason) {
  manifest.problems.push_back(
      {entry.name,
       manifest::entry_problem(source, entry.line, EntryKind::template_, entry.name, reason),
       EntryKind::template_});
}

class Resolver {
 public:
  explicit Resolver(const manifest::Manifest& manifest)
      : refused_secrets_(refused_names(manifest, EntryKind::secret)),
        templates_(refused_names(manifest, EntryKind::template_)) {
    for (const manifest::Secret& secret : manifest.secrets) {
      secrets_.insert(secret.name);
    }
    for (const manifest::Template& entry : manifest.templates) {
      templates_.insert(entry.name);
    }
  }

  // Why `entry` cannot be served, one reason per fault; none when it can, and then its
  // `references` are filled.
  std::vector<std::string> check(manifest::Template& entry) const {
    if (entry.text.size() > kMaxTemplateSize) {
      return {"the text is " + std::to_string(entry.text.size()) + " bytes, over the limit of " +
              std::to_string(kMaxTemplateSize)};
    }
    std::vector<std::string> reasons;
    // A mistake repeated in the template is named once, where it first appears. A set, since a
    // large template can hold tens of thousands of distinct mistakes.
    std::set<std::string> named;
    const auto add = [&](std::string reason) {
      if (named.insert(reason).second) {
        reasons.push_back(std::move(reason));
      }
    };
    const Parsed parsed = parse(entry.text);
    for (const SyntaxProblem& problem : parsed.problems) {
      add(problem.message);
    }
    std::set<std::string> references;
    for (const Placeholder& placeholder : parsed.parsed.placeholders) {
      if (placeholder.secret.empty()) {
        continue;  // parse() named it
      }
      if (auto reason = check_reference(placeholder)) {
        add(std::move(*reason));
      } else {
        references.insert(placeholder.secret);
      }
    }
    entry.references.assign(references.begin(), references.end());
    return reasons;
  }

 private:
  std::optional<std::string> check_reference(const Placeholder& placeholder) const {
    const std::string& name = placeholder.secret;
    if (secrets_.contains(name)) {
      return std::nullopt;
    }
    const std::string quoted = "placeholder `" + manifest::printable_name(placeholder.text) + "`";
    if (templates_.contains(name)) {
      return quoted + " names a template; a template inserts secrets only";
    }
    if (refused_secrets_.contains(name)) {
      return quoted + " names secret `" + manifest::printable_name(name) + "`, which is refused";
    }
    return quoted + " names no secret";
  }

  std::set<std::string> secrets_;          // served
  std::set<std::string> refused_secrets_;  // named in the manifest, but refused
  std::set<std::string> templates_;        // served or refused
};

}  // namespace

void resolve(manifest::Manifest& manifest, std::string_view source) {
  const Resolver resolver(manifest);
  std::vector<manifest::Template> kept;
  // Refused templates are named in the manifest's line order, as its other problems are.
  std::vector<std::pair<const manifest::Template*, std::vector<std::string>>> refused;
  for (manifest::Template& entry : manifest.templates) {
    auto reasons = resolver.check(entry);
    if (reasons.empty()) {
      kept.push_back(std::move(entry));
    } else {
      refused.emplace_back(&entry, std::move(reasons));
    }
  }
  std::stable_sort(refused.begin(), refused.end(),
                   [](const auto& a, const auto& b) { return a.first->line < b.first->line; });
  for (const auto& [entry, reasons] : refused) {
    for (const std::string& reason : reasons) {
      refuse(manifest, source, *entry, reason);
    }
  }
  manifest.templates = std::move(kept);
}

void read_files(manifest::Manifest& manifest, std::string_view source) {
  std::vector<manifest::Template> kept;
  for (manifest::Template& entry : manifest.templates) {
    if (!entry.file.empty()) {
      try {
        const auto bytes = age::read_regular_file(entry.file, kMaxTemplateSize).bytes;
        entry.text.assign(bytes.begin(), bytes.end());
      } catch (const age::Error& error) {
        refuse(manifest, source, entry, error.what());
        continue;
      }
    }
    kept.push_back(std::move(entry));
  }
  manifest.templates = std::move(kept);
}

}  // namespace secretfs::templates
