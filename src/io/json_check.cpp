#include "io/json_check.h"

#include <cmath>
#include <limits>

#include "minnow/error.h"

namespace minnow::io::detail {
namespace {

// nlohmann messages start with "[json.exception.parse_error.101] "; the id helps nobody.
std::string strip_exception_id(const std::string& msg) {
  if (!msg.empty() && msg[0] == '[') {
    size_t close = msg.find("] ");
    if (close != std::string::npos) return msg.substr(close + 2);
  }
  return msg;
}

void check_depth(const char* text, size_t size, const std::string& where, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < size; ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        throw Error(where + ": JSON nested deeper than " + std::to_string(max_depth) + " levels");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

std::string describe(const json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number_float()) return "number";
  return j.type_name();
}

}  // namespace

json parse_json(const char* text, size_t size, const std::string& where, int max_depth) {
  check_depth(text, size, where, max_depth);
  try {
    return json::parse(text, text + size);
  } catch (const json::exception& e) {
    throw Error(where + ": malformed JSON: " + strip_exception_id(e.what()));
  }
}

std::string dump_json(const json& j, const std::string& what) {
  try {
    return j.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::exception& e) {
    throw Error(what + ": " + strip_exception_id(e.what()));
  }
}

void JsonField::fail(const std::string& what) const {
  throw Error(where_ + ": " + (path_.empty() ? std::string() : path_ + ": ") + what);
}

void JsonField::require_object(std::initializer_list<const char*> allowed) const {
  if (!j_->is_object()) fail("expected an object, got " + describe(*j_));
  for (const auto& [key, value] : j_->items()) {
    bool known = false;
    for (const char* a : allowed) known |= key == a;
    if (!known) fail("unexpected field '" + key + "'");
  }
}

JsonField JsonField::at(const char* key) const {
  std::optional<JsonField> f = find(key);
  if (!f) fail(std::string("missing field '") + key + "'");
  return *f;
}

std::optional<JsonField> JsonField::find(const char* key) const {
  if (!j_->is_object()) fail("expected an object, got " + describe(*j_));
  auto it = j_->find(key);
  if (it == j_->end()) return std::nullopt;
  return JsonField(*it, where_, path_.empty() ? std::string(key) : path_ + "." + key);
}

size_t JsonField::array_size() const {
  if (!j_->is_array()) fail("expected an array, got " + describe(*j_));
  return j_->size();
}

JsonField JsonField::at(size_t index) const {
  if (index >= array_size()) fail("index " + std::to_string(index) + " out of range");
  return JsonField((*j_)[index], where_, path_ + "[" + std::to_string(index) + "]");
}

std::string JsonField::str() const {
  if (!j_->is_string()) fail("expected a string, got " + describe(*j_));
  return j_->get<std::string>();
}

bool JsonField::boolean() const {
  if (!j_->is_boolean()) fail("expected true or false, got " + describe(*j_));
  return j_->get<bool>();
}

int64_t JsonField::int64() const {
  if (j_->is_number_unsigned()) {
    uint64_t u = j_->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail("integer " + std::to_string(u) + " is out of range");
    }
    return static_cast<int64_t>(u);
  }
  if (!j_->is_number_integer()) fail("expected an integer, got " + describe(*j_));
  return j_->get<int64_t>();
}

uint64_t JsonField::uint64() const {
  if (j_->is_number_unsigned()) return j_->get<uint64_t>();
  if (j_->is_number_integer()) fail("expected a non-negative integer, got " + j_->dump());
  fail("expected a non-negative integer, got " + describe(*j_));
}

double JsonField::number() const {
  if (j_->is_number()) return j_->get<double>();
  if (j_->is_string()) {
    const std::string& s = j_->get_ref<const std::string&>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  fail("expected a number, got " + describe(*j_));
}

std::vector<int64_t> JsonField::ints() const {
  std::vector<int64_t> out(array_size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = at(i).int64();
  return out;
}

std::vector<double> JsonField::numbers() const {
  std::vector<double> out(array_size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = at(i).number();
  return out;
}

json number_to_json(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

}  // namespace minnow::io::detail
