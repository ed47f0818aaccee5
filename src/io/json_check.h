// Checked access to untrusted JSON: every accessor verifies the type and throws minnow::Error
// naming the file, section and field path ("model.mnw: section GRAPH: nodes[3].attrs.axis").
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace minnow::io::detail {

using nlohmann::json;

// Parses JSON text; malformed text, invalid UTF-8 or nesting deeper than `max_depth` is an Error
// prefixed with `where`. The depth limit keeps hostile input from exhausting the stack in code
// that walks the result recursively.
json parse_json(const char* text, size_t size, const std::string& where, int max_depth = 64);
// Serializes; strings that are not valid UTF-8 are an Error (nlohmann would throw its own type).
std::string dump_json(const json& j, const std::string& what);

class JsonField {
 public:
  JsonField(const json& j, std::string where, std::string path = "")
      : j_(&j), where_(std::move(where)), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& what) const;
  const json& raw() const { return *j_; }
  const std::string& path() const { return path_; }

  // Requires an object whose keys are all in `allowed`.
  void require_object(std::initializer_list<const char*> allowed) const;
  // A required member of an object.
  JsonField at(const char* key) const;
  std::optional<JsonField> find(const char* key) const;
  // Requires an array; its elements.
  size_t array_size() const;
  JsonField at(size_t index) const;

  std::string str() const;
  bool boolean() const;
  int64_t int64() const;
  uint64_t uint64() const;
  // Any JSON number, or the strings "nan", "inf", "-inf" (JSON has no literal for them).
  double number() const;
  std::vector<int64_t> ints() const;
  std::vector<double> numbers() const;

 private:
  const json* j_;
  std::string where_;
  std::string path_;
};

// The encoder's counterpart of JsonField::number(): non-finite doubles become strings.
json number_to_json(double v);

}  // namespace minnow::io::detail
