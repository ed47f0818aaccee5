#include "io/mnw_tensors.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "io/byte_order.h"
#include "io/json_check.h"
#include "io/mnw_compact.h"
#include "io/zlib_codec.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

using detail::JsonField;
using nlohmann::json;

constexpr size_t kMaxRank = 32;

// Compact tensors expand on load, so their dense size is not bounded by the section's bytes.
// This bound keeps a small crafted file from requesting a giant allocation while leaving room
// for real models (a 99.9%-sparse tensor expands ~700x): the dense bytes of all compact tensors
// of a section are at most kCompactSlack + kCompactExpansion x the section's size.
constexpr uint64_t kCompactSlack = uint64_t{64} << 20;
constexpr uint64_t kCompactExpansion = 1024;

uint64_t compact_limit(uint64_t section_bytes) {
  if (section_bytes > (UINT64_MAX - kCompactSlack) / kCompactExpansion) return UINT64_MAX;
  return kCompactSlack + kCompactExpansion * section_bytes;
}

uint64_t align64(uint64_t n) { return (n + 63) / 64 * 64; }

json quant_to_json(const QuantParams& q) {
  json scale = json::array();
  for (float s : q.scale) scale.push_back(static_cast<double>(s));
  return {{"scale", std::move(scale)}, {"zero_point", q.zero_point}, {"axis", q.axis}};
}

QuantParams quant_from_json(const JsonField& f) {
  f.require_object({"scale", "zero_point", "axis"});
  QuantParams q;
  JsonField scale = f.at("scale");
  for (size_t i = 0; i < scale.array_size(); ++i) {
    double s = scale.at(i).number();
    if (!(std::fabs(s) <= FLT_MAX)) scale.at(i).fail("not a finite float");
    q.scale.push_back(static_cast<float>(s));
  }
  JsonField zp = f.at("zero_point");
  for (size_t i = 0; i < zp.array_size(); ++i) {
    int64_t z = zp.at(i).int64();
    if (z < std::numeric_limits<int32_t>::min() || z > std::numeric_limits<int32_t>::max()) {
      zp.at(i).fail("out of the int32 range");
    }
    q.zero_point.push_back(static_cast<int32_t>(z));
  }
  JsonField axis = f.at("axis");
  int64_t a = axis.int64();
  if (a < -1 || a >= static_cast<int64_t>(kMaxRank)) axis.fail("out of range");
  q.axis = static_cast<int>(a);
  return q;
}

// Bytes of a tensor of this shape, or nullopt-like false when it exceeds `limit` (which keeps
// the arithmetic far from overflow).
bool shape_bytes(const Shape& shape, size_t elem_size, uint64_t limit, uint64_t* bytes) {
  for (int64_t d : shape) {
    if (d == 0) {
      *bytes = 0;
      return true;
    }
  }
  uint64_t n = elem_size;
  for (int64_t d : shape) {
    if (n > limit / static_cast<uint64_t>(d)) return false;
    n *= static_cast<uint64_t>(d);
  }
  *bytes = n;
  return true;
}

struct IndexEntry {
  TensorRecord record;  // value not yet allocated
  DType dtype = DType::kF32;
  Shape shape;
  QuantParams quant;
  uint64_t offset = 0;
  uint64_t nbytes = 0;               // stored bytes
  uint64_t dense_bytes = 0;          // bytes once loaded
  std::optional<JsonField> compact;  // set for encoding "compact"
};

IndexEntry entry_from_json(const JsonField& f, uint64_t data_len, uint64_t compact_len) {
  f.require_object(
      {"name", "dtype", "shape", "trainable", "offset", "nbytes", "encoding", "quant", "compact"});
  IndexEntry e;
  e.record.name = f.at("name").str();
  if (e.record.name.empty()) f.at("name").fail("empty tensor name");
  JsonField dtype = f.at("dtype");
  try {
    e.dtype = dtype_from_name(dtype.str());
  } catch (const Error& err) {
    dtype.fail(err.what());
  }
  JsonField shape = f.at("shape");
  if (shape.array_size() > kMaxRank) shape.fail("more than 32 dimensions");
  e.shape = shape.ints();
  for (size_t i = 0; i < e.shape.size(); ++i) {
    if (e.shape[i] < 0) shape.at(i).fail("negative dimension " + std::to_string(e.shape[i]));
  }
  e.record.trainable = f.at("trainable").boolean();
  JsonField encoding = f.at("encoding");
  if (encoding.str() == "compact") {
    e.compact = f.at("compact");
    if (f.find("quant")) f.at("quant").fail("a compact tensor cannot carry quantization");
  } else if (encoding.str() != "raw") {
    encoding.fail("unsupported encoding '" + encoding.str() +
                  "' (this minnow reads 'raw' and 'compact')");
  } else if (f.find("compact")) {
    f.at("compact").fail("only a tensor with encoding 'compact' has this field");
  }
  JsonField offset = f.at("offset");
  e.offset = offset.uint64();
  JsonField nbytes = f.at("nbytes");
  e.nbytes = nbytes.uint64();
  uint64_t expected = 0;
  if (e.compact) {
    if (!shape_bytes(e.shape, dtype_size(e.dtype), compact_len, &expected)) {
      shape.fail("shape " + shape_str(e.shape) + " of " + std::string(dtype_name(e.dtype)) +
                 " expands to more than the " + std::to_string(compact_len) +
                 " bytes a compact tensor of this section may");
    }
  } else if (!shape_bytes(e.shape, dtype_size(e.dtype), data_len, &expected)) {
    shape.fail("shape " + shape_str(e.shape) + " of " + std::string(dtype_name(e.dtype)) +
               " needs more than the section's " + std::to_string(data_len) + " data bytes");
  }
  e.dense_bytes = expected;
  if (!e.compact && e.nbytes != expected) {
    nbytes.fail("nbytes " + std::to_string(e.nbytes) + " does not match shape " +
                shape_str(e.shape) + " of " + std::string(dtype_name(e.dtype)) + " (" +
                std::to_string(expected) + " bytes)");
  }
  if (e.offset > data_len || e.nbytes > data_len - e.offset) {
    offset.fail("data at offset " + std::to_string(e.offset) + " (" + std::to_string(e.nbytes) +
                " bytes) lies outside the section's " + std::to_string(data_len) + " data bytes");
  }
  if (e.offset % stored_alignment(e.nbytes) != 0) {
    offset.fail("offset " + std::to_string(e.offset) + " of " + std::to_string(e.nbytes) +
                " bytes is not " + std::to_string(stored_alignment(e.nbytes)) + "-byte aligned");
  }
  if (auto q = f.find("quant")) {
    e.quant = quant_from_json(*q);
    std::string problem = quant_params_problem(e.quant, e.dtype, e.shape);
    if (!problem.empty()) q->fail(problem);
  }
  return e;
}

}  // namespace

std::string quant_params_problem(const QuantParams& q, DType dtype, const Shape& shape) {
  if (q.scale.empty() && q.zero_point.empty()) return "";
  if (q.scale.size() != q.zero_point.size()) {
    return "quantization has " + std::to_string(q.scale.size()) + " scales but " +
           std::to_string(q.zero_point.size()) + " zero points";
  }
  for (size_t i = 0; i < q.scale.size(); ++i) {
    if (!std::isfinite(q.scale[i]) || q.scale[i] < 0) {
      return "quantization scale[" + std::to_string(i) + "] = " + std::to_string(q.scale[i]) +
             " is not a finite non-negative number";
    }
  }
  if (q.axis == -1) {
    if (q.scale.size() != 1) {
      return "per-tensor quantization (axis -1) needs 1 scale, got " +
             std::to_string(q.scale.size());
    }
  } else if (q.axis < 0 || q.axis >= static_cast<int>(shape.size())) {
    return "quantization axis " + std::to_string(q.axis) + " is out of range for shape " +
           shape_str(shape);
  } else if (static_cast<int64_t>(q.scale.size()) != shape[q.axis]) {
    return "per-channel quantization along axis " + std::to_string(q.axis) + " needs " +
           std::to_string(shape[q.axis]) + " scales, got " + std::to_string(q.scale.size());
  }
  int64_t lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
  if (dtype == DType::kI8) lo = -128, hi = 127;
  if (dtype == DType::kU8) lo = 0, hi = 255;
  for (size_t i = 0; i < q.zero_point.size(); ++i) {
    if (q.zero_point[i] < lo || q.zero_point[i] > hi) {
      return "quantization zero_point[" + std::to_string(i) +
             "] = " + std::to_string(q.zero_point[i]) + " is out of range for " +
             std::string(dtype_name(dtype));
    }
  }
  return "";
}

uint64_t stored_tensor_bytes(const Tensor& t) {
  std::optional<CompactTensor> c = encode_compact(t);
  return c ? c->payload.size() : t.nbytes();
}

uint64_t stored_alignment(uint64_t stored_bytes) { return stored_bytes < 64 ? 8 : 64; }

std::pair<std::string, uint64_t> store_json_text(std::string text) {
  if (text.size() < kDeflateJsonBytes) return {std::move(text), 0};
  return {zlib_deflate(text, 9), text.size()};
}

std::string load_json_text(const unsigned char* data, size_t size, uint64_t json_length,
                           const std::string& where) {
  if (json_length == 0) return std::string(reinterpret_cast<const char*>(data), size);
  if (!plausible_inflated_length(json_length, size)) {
    throw Error(where + ": JSON length " + std::to_string(json_length) + " from " +
                std::to_string(size) + " deflated bytes is more than zlib can expand");
  }
  std::string text;
  if (auto problem = zlib_inflate(data, size, json_length, text)) {
    throw Error(where + ": deflated JSON: " + *problem);
  }
  return text;
}

std::string encode_tensor_section(const std::vector<TensorRecord>& records, const std::string& what,
                                  uint64_t* index_json_length, bool compact) {
  json index = json::array();
  uint64_t data_len = 0;
  std::vector<uint64_t> offsets;
  std::vector<std::optional<CompactTensor>> packed;
  for (const TensorRecord& r : records) {
    if (r.name.empty()) throw Error(what + ": a tensor has an empty name");
    if (!r.value.defined()) throw Error(what + ": tensor '" + r.name + "' has no data");
    std::string problem = quant_params_problem(r.value.quant, r.value.dtype(), r.value.shape());
    if (!problem.empty()) throw Error(what + ": tensor '" + r.name + "': " + problem);
    json entry = {{"name", r.name},           {"dtype", std::string(dtype_name(r.value.dtype()))},
                  {"shape", r.value.shape()}, {"trainable", r.trainable},
                  {"offset", data_len},       {"nbytes", static_cast<uint64_t>(r.value.nbytes())},
                  {"encoding", "raw"}};
    if (!r.value.quant.empty()) entry["quant"] = quant_to_json(r.value.quant);
    packed.push_back(compact ? encode_compact(r.value) : std::nullopt);
    uint64_t stored = r.value.nbytes();
    if (packed.back()) {
      stored = packed.back()->payload.size();
      entry["nbytes"] = stored;
      entry["encoding"] = "compact";
      entry["compact"] = packed.back()->spec;
    }
    data_len = (data_len + stored_alignment(stored) - 1) / stored_alignment(stored) *
               stored_alignment(stored);
    entry["offset"] = data_len;
    index.push_back(std::move(entry));
    offsets.push_back(data_len);
    data_len += stored;
  }
  auto [index_text, json_length] = store_json_text(detail::dump_json(index, what));
  if (index_json_length) *index_json_length = json_length;
  std::string out;
  append_le<uint64_t>(out, index_text.size());
  out += index_text;
  size_t data_start = align64(out.size());
  out.resize(data_start + data_len, '\0');
  for (size_t i = 0; i < records.size(); ++i) {
    const Tensor& t = records[i].value;
    if (packed[i]) {
      std::copy(packed[i]->payload.begin(), packed[i]->payload.end(),
                out.begin() + static_cast<std::ptrdiff_t>(data_start + offsets[i]));
      continue;
    }
    copy_le_elements(out.data() + data_start + offsets[i], t.raw(), static_cast<size_t>(t.numel()),
                     dtype_size(t.dtype()));
  }
  return out;
}

std::vector<TensorRecord> decode_tensor_section(const unsigned char* data, size_t size,
                                                const std::string& where,
                                                uint64_t index_json_length) {
  if (size < 8) throw Error(where + ": section is " + std::to_string(size) + " bytes, too short");
  uint64_t index_len = load_le<uint64_t>(data);
  if (index_len > size - 8) {
    throw Error(where + ": index length " + std::to_string(index_len) + " exceeds the section (" +
                std::to_string(size) + " bytes)");
  }
  uint64_t data_start = align64(8 + index_len);
  if (data_start > size) {
    throw Error(where + ": section ends inside the padding after its index");
  }
  uint64_t data_len = size - data_start;
  const std::string index_text = load_json_text(data + 8, index_len, index_json_length, where);
  json index = detail::parse_json(index_text.data(), index_text.size(), where);
  JsonField root(index, where);
  std::vector<IndexEntry> entries;
  std::set<std::string> names;
  const uint64_t compact_len = compact_limit(size);
  uint64_t compact_total = 0;
  for (size_t i = 0; i < root.array_size(); ++i) {
    JsonField f = root.at(i);
    entries.push_back(entry_from_json(f, data_len, compact_len));
    if (entries.back().compact) {
      compact_total += entries.back().dense_bytes;
      if (compact_total > compact_len) {
        f.fail("compact tensors of this section expand to more than " +
               std::to_string(compact_len) + " bytes (at most " +
               std::to_string(kCompactExpansion) + "x the section's size + 64 MiB)");
      }
    }
    if (!names.insert(entries.back().record.name).second) {
      f.fail("duplicate tensor name '" + entries.back().record.name + "'");
    }
  }
  std::vector<std::pair<uint64_t, size_t>> by_offset;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].nbytes) by_offset.emplace_back(entries[i].offset, i);
  }
  std::sort(by_offset.begin(), by_offset.end());
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const IndexEntry& prev = entries[by_offset[k - 1].second];
    const IndexEntry& cur = entries[by_offset[k].second];
    if (prev.offset + prev.nbytes > cur.offset) {
      throw Error(where + ": data of tensors '" + prev.record.name + "' and '" + cur.record.name +
                  "' overlap");
    }
  }
  // Everything is checked and every size bounded by the section: now allocate.
  std::vector<TensorRecord> out;
  out.reserve(entries.size());
  for (IndexEntry& e : entries) {
    if (e.compact) {
      e.record.value =
          decode_compact(*e.compact, e.dtype, e.shape, data + data_start + e.offset, e.nbytes);
      out.push_back(std::move(e.record));
      continue;
    }
    try {
      e.record.value = Tensor(e.dtype, e.shape);
    } catch (const Error& err) {
      throw Error(where + ": tensor '" + e.record.name + "': " + err.what());
    }
    copy_le_elements(e.record.value.raw(), data + data_start + e.offset,
                     static_cast<size_t>(e.record.value.numel()), dtype_size(e.dtype));
    e.record.value.quant = std::move(e.quant);
    out.push_back(std::move(e.record));
  }
  return out;
}

}  // namespace minnow::io
