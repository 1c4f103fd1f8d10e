#include "item.hpp"

#include <algorithm>
#include <cctype>

namespace secretfs::onepassword {

namespace {

// The parser's lexer keeps the token it is reading, a value included, in a string on the
// stack frame of the parse; this many bytes below the caller's frame are wiped afterwards.
constexpr std::size_t kParseStackBytes = std::size_t{32} * 1024;

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Whether `entry[key]` is a string equal to `wanted` but for case.
bool has_name(const ItemJson& entry, const char* key, std::string_view wanted) {
  const auto found = entry.find(key);
  return found != entry.end() && found->is_string() &&
         same_name(found->get_ref<const LockedString&>(), wanted);
}

// Fields and files are named by label (files: name) or by ID, whichever the reference uses.
bool named(const ItemJson& entry, const char* label_key, std::string_view wanted) {
  return entry.is_object() && (has_name(entry, label_key, wanted) || has_name(entry, "id", wanted));
}

bool in_section(const ItemJson& entry, std::string_view section) {
  if (section.empty()) {
    return true;
  }
  const auto found = entry.find("section");
  return found != entry.end() && named(*found, "label", section);
}

// The entries of `item[list]` that `reference` names, through `label_key` or their ID.
std::vector<const ItemJson*> matches(const ItemJson& item, const char* list, const char* label_key,
                                     const Reference& reference) {
  std::vector<const ItemJson*> found;
  const auto entries = item.find(list);
  if (entries == item.end() || !entries->is_array()) {
    return found;
  }
  for (const ItemJson& entry : *entries) {
    if (named(entry, label_key, reference.field) && in_section(entry, reference.section)) {
      found.push_back(&entry);
    }
  }
  return found;
}

std::string field_name(const Reference& reference) {
  std::string name = "`" + reference.field + "`";
  if (!reference.section.empty()) {
    name += " in section `" + reference.section + "`";
  }
  return name;
}

std::string item_name(const Reference& reference) {
  return "item `" + reference.vault + "/" + reference.item + "`";
}

// An empty field has no "value" in `op`'s output; that is an empty value, not an error.
std::variant<SecretBytes, Error, Attachment> value_of(const ItemJson& field,
                                                      const Reference& reference) {
  const auto value = field.find("value");
  if (value == field.end()) {
    return SecretBytes();
  }
  if (!value->is_string()) {
    return Error{Failure::failed, item_name(reference) + ": field " + field_name(reference) +
                                      " holds no text value"};
  }
  const LockedString& text = value->get_ref<const LockedString&>();
  return SecretBytes::copy_of({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

// Not inlined, so that its frames (the lexer's among them) are below the caller's and can be
// wiped once it has returned.
[[gnu::noinline]] ItemJson parse_in_locked_memory(const SecretBytes& output) {
  const char* begin = reinterpret_cast<const char*>(output.data());
  return ItemJson::parse(begin, begin + output.size(), nullptr, false);
}

}  // namespace

// A known gap: nlohmann's lexer (3.11) also copies each token's raw bytes into a std::vector
// of its own (for error messages), which uses the ordinary heap and is freed without wiping.
std::optional<ItemJson> parse_item(const SecretBytes& output) {
  ItemJson item = parse_in_locked_memory(output);
  sodium_stackzero(kParseStackBytes);
  if (!item.is_object()) {
    return std::nullopt;
  }
  return item;
}

std::variant<SecretBytes, Error, Attachment> pick_field(const ItemJson& item,
                                                        const Reference& reference) {
  const std::vector<const ItemJson*> fields = matches(item, "fields", "label", reference);
  if (fields.size() == 1) {
    return value_of(*fields.front(), reference);
  }
  if (fields.size() > 1) {
    return Error{Failure::ambiguous, item_name(reference) + " has more than one field " +
                                         field_name(reference) + "; name it by its ID"};
  }
  const std::vector<const ItemJson*> files = matches(item, "files", "name", reference);
  if (files.size() == 1) {
    return Attachment{};
  }
  if (files.size() > 1) {
    return Error{Failure::ambiguous, item_name(reference) + " has more than one file " +
                                         field_name(reference) + "; name it by its ID"};
  }
  return Error{Failure::not_found, item_name(reference) + " has no field " + field_name(reference)};
}

}  // namespace secretfs::onepassword
