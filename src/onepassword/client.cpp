// Fetching references with as few `op` runs as the CLI allows: one `op item get` per item for
// its plain fields, and `op read` only where item get cannot serve (file attachments, queries).
#include <algorithm>
#include <cctype>
#include <optional>

#include "item.hpp"
#include "process.hpp"

namespace secretfs::onepassword {

namespace {

// The references of one item, in the order they were given.
struct ItemGroup {
  std::string key;  // "vault/item" in lower case: 1Password matches names case-insensitively
  std::vector<std::size_t> references;
};

std::string lower(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

std::vector<ItemGroup> group_by_item(std::span<const Reference> references) {
  std::vector<ItemGroup> groups;
  for (std::size_t i = 0; i < references.size(); ++i) {
    const std::string key = lower(references[i].vault + "/" + references[i].item);
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const ItemGroup& candidate) { return candidate.key == key; });
    if (group == groups.end()) {
      group = groups.insert(groups.end(), ItemGroup{key, {}});
    }
    group->references.push_back(i);
  }
  return groups;
}

// An answer that every later run would get too: the token is refused, the rate limit is
// reached (and each further try spends quota), 1Password does not answer in time (each
// further item would wait as long again: a refresh of many items must not take many
// timeouts), or `op` cannot be run at all.
bool ends_the_fetch(const Error& error) {
  return error.failure == Failure::auth || error.failure == Failure::rate_limited ||
         error.failure == Failure::timeout || error.failure == Failure::unusable;
}

// One fetch: runs `op`, records each run, and stops running it after an answer that ends it.
class Fetch {
 public:
  Fetch(const Settings& settings, const SecretBytes& token, std::vector<Request>& requests)
      : settings_(settings), token_(token), requests_(requests) {}

  // Plain fields first, from one item get; then the references with a query. A failed item
  // get fails every reference of the item alike, without further runs.
  void fetch_item(std::span<const Reference> references, const ItemGroup& group,
                  std::vector<Result>& results) {
    std::optional<std::variant<Item, Error>> item;
    for (const std::size_t index : group.references) {
      if (references[index].query.empty()) {
        if (!item) {
          item = get_item(references[index]);
        }
        results[index] = from_item(*item, references[index]);
      }
    }
    for (const std::size_t index : group.references) {
      if (!references[index].query.empty()) {
        const Error* failed = item ? std::get_if<Error>(&*item) : nullptr;
        results[index] = failed != nullptr ? Result(*failed) : read(references[index]);
      }
    }
  }

 private:
  Output run(const std::string& command, const Reference& reference,
             const std::vector<std::string>& arguments, Printed printed) {
    if (final_error_) {
      return *final_error_;
    }
    requests_.push_back({command, reference.vault + "/" + reference.item});
    Output output = run_op(settings_, token_, arguments, printed);
    if (const Error* error = std::get_if<Error>(&output);
        error != nullptr && ends_the_fetch(*error)) {
      final_error_ = *error;
    }
    return output;
  }

  // `op read -n` prints the value exactly, bytes of a file attachment included.
  Result read(const Reference& reference) {
    Output output =
        run("read", reference, {"read", "--no-newline", reference.text}, Printed::value);
    if (auto* error = std::get_if<Error>(&output)) {
      return std::move(*error);
    }
    return std::move(std::get<SecretBytes>(output));
  }

  std::variant<Item, Error> get_item(const Reference& reference) {
    Output output =
        run("item get", reference,
            {"item", "get", reference.item, "--vault", reference.vault, "--format", "json"},
            Printed::item);
    if (auto* error = std::get_if<Error>(&output)) {
      return std::move(*error);
    }
    auto item = parse_item(std::get<SecretBytes>(output));
    if (const auto* reason = std::get_if<std::string>(&item)) {
      return Error{Failure::failed, "`op item get` printed something other than an item's JSON: " +
                                        *reason};
    }
    return std::move(std::get<Item>(item));
  }

  Result from_item(const std::variant<Item, Error>& item, const Reference& reference) {
    if (const Error* error = std::get_if<Error>(&item)) {
      return *error;
    }
    auto picked = pick_field(std::get<Item>(item), reference);
    if (std::holds_alternative<Attachment>(picked)) {
      return read(reference);
    }
    if (auto* error = std::get_if<Error>(&picked)) {
      return std::move(*error);
    }
    if (std::get<SecretBytes>(picked).size() > settings_.max_value_size) {
      return Error{Failure::too_large, "the value is larger than " +
                                           std::to_string(settings_.max_value_size) +
                                           " bytes (max_secret_size)"};
    }
    return std::move(std::get<SecretBytes>(picked));
  }

  const Settings& settings_;
  const SecretBytes& token_;
  std::vector<Request>& requests_;
  std::optional<Error> final_error_;  // set by an answer that ends the fetch
};

}  // namespace

Client::Client(Settings settings, SecretBytes token)
    : settings_(std::move(settings)), token_(std::move(token)) {}

std::vector<Result> Client::fetch(std::span<const Reference> references) {
  requests_.clear();
  std::vector<Result> results(references.size());
  Fetch fetch(settings_, token_, requests_);
  for (const ItemGroup& group : group_by_item(references)) {
    fetch.fetch_item(references, group, results);
  }
  return results;
}

}  // namespace secretfs::onepassword
