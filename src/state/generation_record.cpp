// generation.json is written by this file alone and read back strictly: a field of the wrong
// type or a blob name that is not a SHA-256 makes the whole generation unreadable, rather than
// a path built from whatever the file says.
#include "state/generation_record.hpp"

#include <fmt/format.h>

#include <iterator>
#include <nlohmann/json.hpp>

#include "manifest/names.hpp"
#include "state/entry_names.hpp"

namespace secretfs::state {

namespace {

using nlohmann::json;

class RecordReader {
 public:
  explicit RecordReader(const std::filesystem::path& source) : source_(source) {}

  GenerationRecord read(const std::string& text) const {
    const json root = json::parse(text, nullptr, false);
    if (root.is_discarded() || !root.is_object()) {
      fail("not a JSON object");
    }
    GenerationRecord record;
    record.number = number_field(root, "number");
    record.created = field(root, "created", &json::is_number_integer).get<std::int64_t>();
    record.manifest_sha256 = string_field(root, "manifest_sha256");
    if (!is_blob_name(record.manifest_sha256)) {
      fail("`manifest_sha256` is not a SHA-256 in lower-case hex");
    }
    record.manifest = string_field(root, "manifest");
    for (const json& secret : field(root, "secrets", &json::is_array)) {
      record.secrets.push_back(read_entry(secret, "secret"));
    }
    // Generations stored before 1Password values existed have none.
    if (root.contains("onepassword")) {
      record.values = number_field(root, "onepassword");
    }
    // Generations stored before templates existed have none.
    if (root.contains("templates")) {
      for (const json& stored : field(root, "templates", &json::is_array)) {
        record.templates.push_back(read_entry(stored, "template"));
      }
    }
    return record;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw StateError(source_.string() + ": " + message);
  }

  const json& field(const json& object, const char* name, bool (json::*is_type)() const) const {
    const auto found = object.find(name);
    if (found == object.end()) {
      fail("`" + std::string(name) + "` is missing");
    }
    if (!((*found).*is_type)()) {
      fail("`" + std::string(name) + "` has the wrong type");
    }
    return *found;
  }

  std::string string_field(const json& object, const char* name) const {
    return field(object, name, &json::is_string).get<std::string>();
  }

  std::uint64_t unsigned_field(const json& object, const char* name) const {
    return field(object, name, &json::is_number_unsigned).get<std::uint64_t>();
  }

  std::int64_t signed_field(const json& object, const char* name) const {
    return field(object, name, &json::is_number_integer).get<std::int64_t>();
  }

  Number number_field(const json& object, const char* name) const {
    const Number number = field(object, name, &json::is_number_unsigned).get<Number>();
    if (number == 0) {
      fail("`" + std::string(name) + "` is 0");
    }
    return number;
  }

  // An entry of `secrets` or `templates` (`kind` says which): the two have the same fields.
  StoredSecret read_entry(const json& secret, const char* kind) const {
    if (!secret.is_object()) {
      fail("an entry of `secrets` or `templates` is not an object");
    }
    StoredSecret stored{string_field(secret, "name"), string_field(secret, "file"),
                        string_field(secret, "blob"), std::nullopt};
    if (secret.contains("stamp")) {
      const json& stamp = field(secret, "stamp", &json::is_object);
      stored.stamp = FileStamp{unsigned_field(stamp, "device"), unsigned_field(stamp, "inode"),
                               unsigned_field(stamp, "size"), signed_field(stamp, "modified_ns"),
                               signed_field(stamp, "changed_ns")};
    }
    if (!is_blob_name(stored.blob)) {
      fail(std::string(kind) + " `" + manifest::printable_name(stored.name) + "`: blob `" +
           manifest::printable_name(stored.blob) + "` is not a SHA-256 name");
    }
    return stored;
  }

  const std::filesystem::path& source_;
};

}  // namespace

namespace {

bool same_blobs(const std::vector<StoredSecret>& a, const std::vector<StoredSecret>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].blob != b[i].blob) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool same_content(const GenerationRecord& a, const GenerationRecord& b) {
  return a.manifest_sha256 == b.manifest_sha256 && a.manifest == b.manifest &&
         same_blobs(a.secrets, b.secrets) && same_blobs(a.templates, b.templates);
}

// Written a secret at a time rather than built as one JSON document first: the document of a
// generation of 10,000 secrets would take more memory than the daemon needs to serve them.
std::string to_json(const GenerationRecord& record) {
  try {
    std::string text = fmt::format(
        "{{\n  \"number\": {},\n  \"created\": {},\n  \"manifest_sha256\": {},\n"
        "  \"manifest\": {},\n  \"secrets\": [",
        record.number, record.created, json(record.manifest_sha256).dump(),
        json(record.manifest.string()).dump());
    // Room for every line at once: growing the text of 10,000 secrets step by step would
    // copy it over and over.
    constexpr std::size_t kLineOverhead = 160;
    std::size_t size = text.size();
    for (const StoredSecret& secret : record.secrets) {
      size += secret.name.size() + secret.file.size() + secret.blob.size() + kLineOverhead;
    }
    text.reserve(size);
    const char* separator = "\n";
    for (const StoredSecret& secret : record.secrets) {
      fmt::format_to(std::back_inserter(text), "{}    {{\"name\": {}, \"file\": {}, \"blob\": {}",
                     separator, json(secret.name).dump(), json(secret.file).dump(),
                     json(secret.blob).dump());
      if (const auto& stamp = secret.stamp) {
        fmt::format_to(std::back_inserter(text),
                       ", \"stamp\": {{\"device\": {}, \"inode\": {}, \"size\": {}, "
                       "\"modified_ns\": {}, \"changed_ns\": {}}}",
                       stamp->device, stamp->inode, stamp->size, stamp->modified_ns,
                       stamp->changed_ns);
      }
      text += '}';
      separator = ",\n";
    }
    text += record.secrets.empty() ? "]" : "\n  ]";
    // Written only when there are some, so that a generation without templates is stored
    // exactly as before they existed.
    if (!record.templates.empty()) {
      text += ",\n  \"templates\": [";
      separator = "\n";
      for (const StoredTemplate& stored : record.templates) {
        fmt::format_to(std::back_inserter(text),
                       "{}    {{\"name\": {}, \"file\": {}, \"blob\": {}}}", separator,
                       json(stored.name).dump(), json(stored.file).dump(),
                       json(stored.blob).dump());
        separator = ",\n";
      }
      text += "\n  ]";
    }
    if (record.values > 0) {
      fmt::format_to(std::back_inserter(text), ",\n  \"onepassword\": {}", record.values);
    }
    text += "\n}\n";
    return text;
  } catch (const json::type_error&) {
    // TOML text is UTF-8, but the manifest's own folder on disk need not be.
    throw StateError("generation " + std::to_string(record.number) +
                     ": a path or secret name is not valid UTF-8, so it cannot be recorded");
  }
}

GenerationRecord parse_record(const std::string& text, const std::filesystem::path& source) {
  return RecordReader(source).read(text);
}

}  // namespace secretfs::state
