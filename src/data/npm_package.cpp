#include "data/npm_package.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "io/atomic_file.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool has_package(const fs::path& node_modules, const std::string& package) {
  std::error_code ec;
  return fs::is_regular_file(node_modules / package / "package.json", ec);
}

// node_modules/<package> in `start` or one of its ancestors; empty when none.
fs::path walk_up(fs::path start, const std::string& package) {
  std::error_code ec;
  start = fs::weakly_canonical(start, ec);
  if (ec || start.empty()) return {};
  for (fs::path dir = start;; dir = dir.parent_path()) {
    if (has_package(dir / "node_modules", package)) return dir / "node_modules" / package;
    if (dir == dir.parent_path()) return {};
  }
}

}  // namespace

std::string find_node_package(const std::string& package) {
  const std::string override_dir = env("MINNOW_NODE_MODULES");
  if (!override_dir.empty()) {
    if (has_package(override_dir, package)) return (fs::path(override_dir) / package).string();
    throw Error("npm package '" + package + "' not found in MINNOW_NODE_MODULES='" + override_dir +
                "' (expected " + (fs::path(override_dir) / package / "package.json").string() +
                "); run scripts/setup in the minnow repository (npm install) or fix the variable");
  }
  std::vector<fs::path> starts;
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  if (!ec) starts.push_back(cwd);
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  for (const fs::path& s : starts) {
    fs::path found = walk_up(s, package);
    if (!found.empty()) return found.string();
  }
  std::string where;
  for (const fs::path& s : starts) where += (where.empty() ? "" : " and ") + s.string();
  throw Error("npm package '" + package + "' not found in a node_modules directory above " +
              (where.empty() ? std::string("the current directory") : where) +
              "; run scripts/setup in the minnow repository (it runs npm install), or set "
              "MINNOW_NODE_MODULES to a node_modules directory holding it");
}

std::string node_package_version(const std::string& package_dir) {
  const std::string path = (fs::path(package_dir) / "package.json").string();
  nlohmann::json j = nlohmann::json::parse(io::read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("version") || !j["version"].is_string()) {
    throw Error("'" + path +
                "' is not a package.json with a string \"version\"; reinstall with "
                "scripts/setup");
  }
  return j["version"].get<std::string>();
}

std::string data_cache_dir() {
  if (std::string d = env("MINNOW_CACHE_DIR"); !d.empty()) return d;
  if (std::string d = env("XDG_CACHE_HOME"); !d.empty()) return (fs::path(d) / "minnow").string();
  if (std::string d = env("HOME"); !d.empty()) {
    return (fs::path(d) / ".cache" / "minnow").string();
  }
  throw Error("no cache directory for converted data sets: set MINNOW_CACHE_DIR (or HOME)");
}

}  // namespace minnow::data
