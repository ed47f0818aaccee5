#include "data/class_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "minnow/error.h"

namespace minnow::data {
namespace {

namespace fs = std::filesystem;

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.empty() || name[0] == '.';
}

bool has_extension(const fs::path& p, const std::vector<std::string>& extensions) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
}

std::vector<fs::path> sorted_entries(const fs::path& dir, bool directories,
                                     const std::vector<std::string>* extensions) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw Error("cannot list the directory '" + dir.string() + "': " + ec.message());
  for (const fs::directory_entry& e : it) {
    if (hidden(e.path())) continue;
    std::error_code ec2;
    if (directories ? e.is_directory(ec2)
                    : (e.is_regular_file(ec2) && has_extension(e.path(), *extensions))) {
      out.push_back(e.path());
    }
  }
  // Byte-wise order of names: the same on every machine and file system.
  std::sort(out.begin(), out.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

ClassFolder list_class_folder(const std::string& dir, const std::vector<std::string>& extensions,
                              const std::string& kind,
                              const std::vector<std::string>* known_classes) {
  ClassFolder out;
  std::vector<fs::path> classes = sorted_entries(dir, true, nullptr);
  if (classes.empty()) {
    throw Error("folder '" + dir + "' has no class sub-directories; expected one sub-directory " +
                "per class holding " + kind + " (" + join(extensions) + ")");
  }
  if (known_classes) out.class_names = *known_classes;
  for (const fs::path& cls : classes) {
    const std::string name = cls.filename().string();
    int64_t label = static_cast<int64_t>(out.class_names.size());
    if (known_classes) {
      auto it = std::find(known_classes->begin(), known_classes->end(), name);
      if (it == known_classes->end()) {
        throw Error("class directory '" + cls.string() +
                    "' is not a training class; expected one of: " + join(*known_classes));
      }
      label = it - known_classes->begin();
    } else {
      out.class_names.push_back(name);
    }
    std::vector<fs::path> files = sorted_entries(cls, false, &extensions);
    if (files.empty()) {
      throw Error("class directory '" + cls.string() + "' holds no " + kind + " (" +
                  join(extensions) + "); every class needs at least one sample");
    }
    for (const fs::path& f : files) {
      out.paths.push_back(f.string());
      out.labels.push_back(label);
    }
  }
  return out;
}

bool has_class_files(const std::string& dir, const std::vector<std::string>& extensions) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (const fs::path& cls : sorted_entries(dir, true, nullptr)) {
    if (!sorted_entries(cls, false, &extensions).empty()) return true;
  }
  return false;
}

}  // namespace minnow::data
