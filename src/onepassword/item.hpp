// An item as `op item get --format json` prints it, read in locked memory, and the field a
// reference names in it.
//
// The JSON is read by a small reader of our own rather than a general JSON library: a library
// keeps copies of the text it lexes (values included) in ordinary heap memory, and a value read
// from 1Password must never be anywhere but in a SecretBytes. Every string is decoded straight
// into one; only the parts of an item secretfs uses are kept.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "secretfs/onepassword.hpp"

namespace secretfs::onepassword {

struct ItemField {
  SecretBytes id;
  SecretBytes label;
  std::optional<SecretBytes> value;  // absent for an empty field
  bool value_is_text = true;         // false when "value" is not a string
  SecretBytes section_id;
  SecretBytes section_label;
};

struct ItemFile {
  SecretBytes id;
  SecretBytes name;
};

struct Item {
  std::vector<ItemField> fields;
  std::vector<ItemFile> files;
};

// The item in `output`, or why it is not one (a sentence without any of its text).
std::variant<Item, std::string> parse_item(const SecretBytes& output);

// The reference names a file attachment of the item; `op read` fetches its bytes.
struct Attachment {};

// The value of the field `reference` names in `item`, why there is none, or an Attachment.
std::variant<SecretBytes, Error, Attachment> pick_field(const Item& item,
                                                        const Reference& reference);

}  // namespace secretfs::onepassword
