#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "fs/tree.hpp"

using secretfs::fs::InodeRegistry;
using secretfs::fs::kDirectoryMode;
using secretfs::fs::kRootInode;
using secretfs::fs::Tree;
using secretfs::manifest::Secret;

namespace {

Secret secret(const std::string& name, uid_t uid = 0, mode_t mode = 0400) {
  Secret result;
  result.name = name;
  result.file = "/secrets/" + name + ".age";
  result.uid = uid;
  result.gid = uid;
  result.mode = mode;
  return result;
}

std::vector<std::string> names(const Tree& tree, secretfs::fs::Inode directory) {
  std::vector<std::string> result;
  for (const auto& entry : tree.node(directory)->children) {
    result.push_back(entry.name);
  }
  return result;
}

}  // namespace

TEST_CASE("names with slashes become directories, children sorted by name", "[tree]") {
  InodeRegistry inodes;
  const Tree tree({secret("b"), secret("a-x"), secret("a/c", 7, 0440), secret("a/b/deep")}, inodes);

  const auto* root = tree.node(kRootInode);
  REQUIRE(root != nullptr);
  CHECK(root->mode == (S_IFDIR | kDirectoryMode));
  CHECK(names(tree, kRootInode) == std::vector<std::string>{"a", "a-x", "b"});
  CHECK(root->subdirectories == 1);

  const auto* a = tree.child(kRootInode, "a");
  REQUIRE(a != nullptr);
  CHECK(a->is_directory());
  CHECK(a->parent == kRootInode);
  CHECK(names(tree, a->inode) == std::vector<std::string>{"b", "c"});

  const auto* c = tree.child(a->inode, "c");
  REQUIRE(c != nullptr);
  CHECK(c->mode == (S_IFREG | 0440));
  CHECK(c->uid == 7);
  CHECK(tree.secret(*c).name == "a/c");

  const auto* deep = tree.child(tree.child(a->inode, "b")->inode, "deep");
  REQUIRE(deep != nullptr);
  CHECK(tree.secret(*deep).file == "/secrets/a/b/deep.age");
  CHECK(tree.size() == 7);  // root, the directories a and a/b, four secrets
}

TEST_CASE("lookups of absent names and inodes find nothing", "[tree]") {
  InodeRegistry inodes;
  const Tree tree({secret("only")}, inodes);
  CHECK(tree.child(kRootInode, "other") == nullptr);
  CHECK(tree.child(kRootInode, "onl") == nullptr);
  CHECK(tree.node(0) == nullptr);
  CHECK(tree.node(3) == nullptr);
  CHECK(tree.node(12345) == nullptr);
  const auto* only = tree.child(kRootInode, "only");
  REQUIRE(only != nullptr);
  CHECK(tree.child(only->inode, "x") == nullptr);
}

TEST_CASE("an empty manifest is an empty root", "[tree]") {
  InodeRegistry inodes;
  const Tree tree({}, inodes);
  CHECK(tree.size() == 1);
  CHECK(tree.node(kRootInode)->children.empty());
}

TEST_CASE("a hundred thousand secrets in one directory are all found", "[tree]") {
  constexpr int kCount = 100000;
  std::vector<Secret> secrets;
  secrets.reserve(kCount);
  for (int i = kCount - 1; i >= 0; --i) {
    secrets.push_back(secret("many/" + std::to_string(i)));
  }
  InodeRegistry inodes;
  const Tree tree(std::move(secrets), inodes);
  const auto* many = tree.child(kRootInode, "many");
  REQUIRE(many != nullptr);
  CHECK(many->children.size() == kCount);
  for (const int probe : {0, 1, 4242, kCount - 1}) {
    const auto* found = tree.child(many->inode, std::to_string(probe));
    REQUIRE(found != nullptr);
    CHECK(tree.secret(*found).name == "many/" + std::to_string(probe));
  }
}

TEST_CASE("trees built from one registry give a path the same inode", "[tree]") {
  InodeRegistry inodes;
  const Tree first({secret("a/x"), secret("b"), secret("gone")}, inodes);
  const Tree second({secret("new"), secret("b"), secret("a/x"), secret("b2/deeper")}, inodes);

  const auto* a_first = first.child(kRootInode, "a");
  const auto* a_second = second.child(kRootInode, "a");
  REQUIRE(a_first != nullptr);
  REQUIRE(a_second != nullptr);
  CHECK(a_first->inode == a_second->inode);
  CHECK(first.child(a_first->inode, "x")->inode == second.child(a_second->inode, "x")->inode);
  CHECK(first.child(kRootInode, "b")->inode == second.child(kRootInode, "b")->inode);

  const auto gone = first.child(kRootInode, "gone")->inode;
  CHECK(second.node(gone) == nullptr);
  CHECK(second.child(kRootInode, "new")->inode != gone);
}

TEST_CASE("a path that turns from file into directory gets a new inode", "[tree]") {
  InodeRegistry inodes;
  const Tree before({secret("a")}, inodes);
  const Tree after({secret("a/b")}, inodes);
  const auto file = before.child(kRootInode, "a");
  const auto directory = after.child(kRootInode, "a");
  REQUIRE(file != nullptr);
  REQUIRE(directory != nullptr);
  CHECK(file->inode != directory->inode);
  CHECK(directory->is_directory());
  CHECK(after.node(file->inode) == nullptr);
}

TEST_CASE("templates are files of the tree beside secrets, each placeholder bound to its secret",
          "[tree]") {
  secretfs::manifest::Template env;
  env.name = "app/env";
  env.text = "A={{ db/password | chomp }} B={{ api }} C={{ db/password }}";
  env.uid = 7;
  env.gid = 8;
  env.mode = 0440;
  env.file = "/state/blobs/abc";
  env.sha256 = "abc";
  InodeRegistry inodes;
  const Tree tree({secret("api"), secret("app/key"), secret("db/password")}, inodes, {env});

  const auto* app = tree.child(kRootInode, "app");
  REQUIRE(app != nullptr);
  CHECK(names(tree, app->inode) == std::vector<std::string>{"env", "key"});
  const auto* node = tree.child(app->inode, "env");
  REQUIRE(node != nullptr);
  CHECK(node->is_template());
  CHECK(node->mode == (S_IFREG | 0440));
  CHECK(node->uid == 7);
  CHECK(node->gid == 8);
  CHECK(tree.name(*node) == "app/env");
  CHECK_FALSE(tree.child(app->inode, "key")->is_template());
  CHECK(tree.name(*tree.child(app->inode, "key")) == "app/key");

  const auto& served = tree.template_of(*node);
  CHECK(served.file == "/state/blobs/abc");
  CHECK(served.sha256 == "abc");
  CHECK(served.parsed.literals == std::vector<std::string>{"A=", " B=", " C=", ""});
  // Secrets are sorted by name: api, app/key, db/password.
  CHECK(served.secrets == std::vector<std::size_t>{2, 0, 2});
  REQUIRE(tree.templates().size() == 1);
}
