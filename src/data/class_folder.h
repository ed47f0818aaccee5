// Class folders: a directory with one sub-directory per class, holding one file per sample.
// Shared by the image and text folder sources.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace minnow::data {

struct ClassFolder {
  std::vector<std::string> class_names;  // sub-directory names, sorted byte-wise
  std::vector<std::string> paths;        // sample files, class by class, each sorted by name
  std::vector<int64_t> labels;           // index into class_names, one per path
};

// Lists `dir`'s class sub-directories and their regular files whose extension, lower-cased, is
// one of `extensions` (e.g. {".png", ".jpg"}); other files and hidden entries (".*") are
// ignored. With `known_classes` (a test folder), each sub-directory must name one of them, labels
// index known_classes, and a missing class is allowed. Throws minnow::Error naming the folder
// when it has no class sub-directories, and naming the class directory when it holds no sample
// file (`kind` says what was expected, e.g. "PNG/JPEG images").
ClassFolder list_class_folder(const std::string& dir, const std::vector<std::string>& extensions,
                              const std::string& kind,
                              const std::vector<std::string>* known_classes = nullptr);

// Whether `dir` has a class sub-directory holding at least one file with one of `extensions`.
bool has_class_files(const std::string& dir, const std::vector<std::string>& extensions);

}  // namespace minnow::data
