#include "secretfs/secret_bytes.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using secretfs::SecretBytes;

TEST_CASE("SecretBytes copies bytes into its own memory") {
  std::vector<std::uint8_t> source = {1, 2, 3, 4};
  const auto copy = SecretBytes::copy_of(source);
  source[0] = 9;
  REQUIRE(copy.size() == 4);
  CHECK(copy.data()[0] == 1);
  CHECK(copy.view() == std::string("\x01\x02\x03\x04", 4));
}

TEST_CASE("SecretBytes of size zero is empty but has memory") {
  const SecretBytes empty(0);
  CHECK(empty.empty());
  CHECK(empty.data() != nullptr);
  CHECK(SecretBytes().empty());
}

TEST_CASE("SecretBytes moves leave the source empty") {
  auto first = SecretBytes::copy_of(std::vector<std::uint8_t>{7, 8});
  const auto* memory = first.data();
  SecretBytes second(std::move(first));
  CHECK(first.empty());
  CHECK(first.data() == nullptr);
  CHECK(second.data() == memory);

  SecretBytes third;
  third = std::move(second);
  CHECK(second.empty());
  CHECK(third.size() == 2);
  CHECK(third.data()[1] == 8);
}

TEST_CASE("SecretBytes::shrink wipes the tail and never grows") {
  auto bytes = SecretBytes::copy_of(std::vector<std::uint8_t>{1, 2, 3, 4});
  bytes.shrink(2);
  CHECK(bytes.size() == 2);
  CHECK(bytes.data()[2] == 0);
  CHECK(bytes.data()[3] == 0);
  bytes.shrink(10);
  CHECK(bytes.size() == 2);
}
