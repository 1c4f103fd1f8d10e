// Secret names: what check_name() accepts and refuses, and conflicts between names.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "manifest/names.hpp"
#include "secretfs/manifest.hpp"

using secretfs::manifest::check_name;
using secretfs::manifest::find_conflicts;
using secretfs::manifest::printable_name;

TEST_CASE("check_name accepts ordinary names, with or without folders", "[names]") {
  for (const std::string name : {"password", "db/password", "a/b/c/d", ".hidden", "..a", "a..",
                                 "a.b", "x y", "p\xc3\xa4sswort", "-rf", "a/.b/c"}) {
    INFO(name);
    CHECK(check_name(name) == std::nullopt);
  }
}

TEST_CASE("check_name accepts a segment of 255 bytes and refuses one of 256", "[names]") {
  CHECK(check_name("a/" + std::string(255, 'x')) == std::nullopt);
  CHECK(check_name("a/" + std::string(256, 'x')) ==
        "name has a segment of 256 bytes, longer than 255");
}

TEST_CASE("check_name refuses names that could leave the mount or alias another", "[names]") {
  struct Case {
    std::string name;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"", "name is empty"},
      {"/etc/shadow", "name is absolute (starts with `/`)"},
      {"/", "name is absolute (starts with `/`)"},
      {"db/", "name ends with `/`"},
      {"a//b", "name has an empty segment (`//`)"},
      {".", "name has a `.` segment"},
      {"..", "name has a `..` segment"},
      {"a/./b", "name has a `.` segment"},
      {"a/../b", "name has a `..` segment"},
      {"../etc/shadow", "name has a `..` segment"},
      {"a/..", "name has a `..` segment"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(check_name(c.name) == c.reason);
  }
}

TEST_CASE("check_name refuses NUL and control characters, saying which and where", "[names]") {
  CHECK(check_name(std::string("a\0b", 3)) == "name has control character \\x00 at byte 1");
  CHECK(check_name("db\n") == "name has control character \\x0a at byte 2");
  CHECK(check_name("\x1f") == "name has control character \\x1f at byte 0");
  CHECK(check_name("a/\x7f") == "name has control character \\x7f at byte 2");
  CHECK(check_name("tab\there") == "name has control character \\x09 at byte 3");
  CHECK(check_name("a\xc2\x85"
                   "b") == "name has control character U+0085 at byte 1");
  CHECK(check_name("x/\xc2\x9f") == "name has control character U+009f at byte 2");
  CHECK(check_name("caf\xc3\xa9/\xc2\xa0") == std::nullopt);  // é and a no-break space
  // Control characters are reported before the shape of the name, which quotes parts of it.
  CHECK(check_name("/\x01") == "name has control character \\x01 at byte 1");
}

// They reorder what follows them on screen, so that one name can be shown as another: U+202A to
// U+202E (embeddings and overrides) and U+2066 to U+2069 (isolates).
TEST_CASE("check_name refuses bidirectional controls, saying which and where", "[names]") {
  CHECK(check_name("a\xe2\x80\xae"
                   "b") == "name has bidirectional control character U+202e at byte 1");
  CHECK(check_name("x/\xe2\x80\xaa") ==
        "name has bidirectional control character U+202a at byte 2");
  CHECK(check_name("\xe2\x81\xa6"
                   "a") == "name has bidirectional control character U+2066 at byte 0");
  CHECK(check_name("ab\xe2\x81\xa9") ==
        "name has bidirectional control character U+2069 at byte 2");
  // Their neighbours are not controls: U+202F (a narrow no-break space), U+2065, U+206A and the
  // euro sign pass.
  CHECK(check_name("a\xe2\x80\xaf") == std::nullopt);
  CHECK(check_name("a\xe2\x81\xa5") == std::nullopt);
  CHECK(check_name("a\xe2\x81\xaa") == std::nullopt);
  CHECK(check_name("price/\xe2\x82\xac") == std::nullopt);
  // Before the shape of the name, as for other control characters.
  CHECK(check_name("/\xe2\x80\xae") == "name has bidirectional control character U+202e at byte 1");
}

TEST_CASE("printable_name escapes control characters only", "[names]") {
  CHECK(printable_name("db/password") == "db/password");
  CHECK(printable_name("a\nb") == "a\\x0ab");
  CHECK(printable_name(std::string("\0\x7f", 2)) == "\\x00\\x7f");
  CHECK(printable_name("p\xc3\xa4ss") == "p\xc3\xa4ss");
  CHECK(printable_name("a\xc2\x85") == "a\\xc2\\x85");
  CHECK(printable_name("a\xe2\x80\xae"
                       "b") == "a\\xe2\\x80\\xaeb");
  CHECK(printable_name("\xe2\x81\xa9\xe2\x82\xac") == "\\xe2\\x81\\xa9\xe2\x82\xac");
}

TEST_CASE("find_conflicts pairs every file with each secret under it", "[names]") {
  const auto conflicts = find_conflicts({"a/b/c", "ab", "a", "b/c", "a/b"});
  REQUIRE(conflicts.size() == 3);
  CHECK(conflicts[0].file == "a");
  CHECK(conflicts[0].directory == "a/b");
  CHECK(conflicts[1].file == "a");
  CHECK(conflicts[1].directory == "a/b/c");
  CHECK(conflicts[2].file == "a/b");
  CHECK(conflicts[2].directory == "a/b/c");
}

TEST_CASE("find_conflicts finds none among siblings and look-alike prefixes", "[names]") {
  CHECK(find_conflicts({"a/b", "a/c", "ab", "a.b", "b", "c/a"}).empty());
  CHECK(find_conflicts({}).empty());
}
