#include "io/mnw_compact.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include "io/byte_order.h"
#include "io/zlib_codec.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

using detail::JsonField;
using nlohmann::json;

// Small tensors (biases, BN parameters) gain nothing: each tensor occupies whole 64-byte blocks.
constexpr int64_t kMinElements = 64;
constexpr size_t kMaxCodebook = 256;
// A LEB128 gap below 2^64 takes at most 10 bytes.
constexpr uint64_t kMaxVarintBytes = 10;
// zlib level 9 spends seconds on the long runs of equal indices in big tensors for a few bytes.
constexpr int kZlibLevel = 6;

enum class Positions { kNone, kBitmask, kGaps };

uint64_t align64(uint64_t n) { return (n + 63) / 64 * 64; }

int bits_for(size_t codebook_size) {
  int b = 1;
  while ((size_t{1} << b) < codebook_size) ++b;
  return b;
}

// Indices packed LSB first: index i occupies bits [i*b, (i+1)*b) of the byte stream, bit k being
// bit k%8 of byte k/8.
void append_packed(std::string& out, const std::vector<uint8_t>& idx, int bits) {
  const size_t start = out.size();
  out.resize(start + (idx.size() * bits + 7) / 8, '\0');
  uint64_t pos = 0;
  for (uint8_t x : idx) {
    for (int b = 0; b < bits; ++b, ++pos) {
      if ((x >> b) & 1) out[start + pos / 8] |= static_cast<char>(1 << (pos % 8));
    }
  }
}

void append_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <class U>
struct Split {
  std::vector<U> all;      // every element's bit pattern
  std::vector<U> nonzero;  // elements whose bit pattern is not +0.0
  std::vector<uint64_t> positions;
};

// Sorted distinct bit patterns of `v`, or false when there are more than kMaxCodebook.
template <class U>
bool codebook_of(const std::vector<U>& v, std::vector<U>* out) {
  std::set<U> distinct;
  for (U x : v) {
    distinct.insert(x);
    if (distinct.size() > kMaxCodebook) return false;
  }
  out->assign(distinct.begin(), distinct.end());
  return !out->empty();
}

template <class U>
std::string payload_of(const Split<U>& s, Positions positions, const std::vector<U>* codebook,
                       int index_bits) {
  const std::vector<U>& values = positions == Positions::kNone ? s.all : s.nonzero;
  std::string out;
  if (codebook) {
    for (U c : *codebook) append_le<U>(out, c);
    std::vector<uint8_t> idx(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      idx[i] = static_cast<uint8_t>(
          std::lower_bound(codebook->begin(), codebook->end(), values[i]) - codebook->begin());
    }
    append_packed(out, idx, index_bits);
  } else {
    for (U v : values) append_le<U>(out, v);
  }
  if (positions == Positions::kBitmask) {
    const size_t start = out.size();
    out.resize(start + (s.all.size() + 7) / 8, '\0');
    for (uint64_t p : s.positions) out[start + p / 8] |= static_cast<char>(1 << (p % 8));
  } else if (positions == Positions::kGaps) {
    uint64_t next = 0;  // the first position a gap of 0 would name
    for (uint64_t p : s.positions) {
      append_varint(out, p - next);
      next = p + 1;
    }
  }
  return out;
}

template <class U>
std::optional<CompactTensor> encode_typed(const Tensor& t) {
  Split<U> s;
  s.all.resize(static_cast<size_t>(t.numel()));
  std::memcpy(s.all.data(), t.raw(), t.nbytes());
  for (size_t i = 0; i < s.all.size(); ++i) {
    if (s.all[i] != 0) {
      s.nonzero.push_back(s.all[i]);
      s.positions.push_back(i);
    }
  }
  std::vector<Positions> position_options = {Positions::kNone};
  if (s.nonzero.size() * 2 < s.all.size()) {
    position_options.push_back(Positions::kBitmask);
    position_options.push_back(Positions::kGaps);
  }
  std::optional<CompactTensor> best;
  auto consider = [&](json spec, std::string payload) {
    if (!best || payload.size() < best->payload.size()) {
      best = CompactTensor{std::move(spec), std::move(payload)};
    }
  };
  for (Positions positions : position_options) {
    const std::vector<U>& values = positions == Positions::kNone ? s.all : s.nonzero;
    std::vector<U> codebook;
    const bool has_codebook = codebook_of(values, &codebook);
    // Without positions or a codebook there is nothing compact to store.
    for (int use_codebook = positions == Positions::kNone; use_codebook <= has_codebook;
         ++use_codebook) {
      // Packed to the fewest bits for raw storage; whole bytes deflate better.
      std::vector<int> widths = {0};
      if (use_codebook) widths = {bits_for(codebook.size())};
      if (use_codebook && widths[0] < 8) widths.push_back(8);
      for (int bits : widths) {
        json spec = json::object();
        if (positions != Positions::kNone) {
          spec["nnz"] = static_cast<uint64_t>(s.nonzero.size());
          spec["positions"] = positions == Positions::kBitmask ? "bitmask" : "gaps";
        }
        if (use_codebook) {
          spec["codebook"] = static_cast<uint64_t>(codebook.size());
          spec["index_bits"] = bits;
        }
        std::string payload = payload_of(s, positions, use_codebook ? &codebook : nullptr, bits);
        if (bits == widths[0]) consider(spec, payload);
        json zspec = spec;
        zspec["zlib"] = static_cast<uint64_t>(payload.size());
        consider(std::move(zspec), zlib_deflate(payload, kZlibLevel));
      }
    }
  }
  // Worth it only when the tensor takes fewer 64-byte blocks than its raw data.
  if (best && align64(best->payload.size()) >= align64(t.nbytes())) return std::nullopt;
  return best;
}

// Reads the payload of a compact tensor after its spec is validated.
template <class U>
class PayloadReader {
 public:
  PayloadReader(const JsonField& spec, const unsigned char* p, size_t len)
      : spec_(spec), p_(p), len_(len) {}

  U element() {
    need(sizeof(U), "values");
    U v = load_le<U>(p_ + at_);
    at_ += sizeof(U);
    return v;
  }
  // `count` indices of `bits` bits, each below `limit`; the padding bits must be zero.
  std::vector<uint8_t> indices(uint64_t count, int bits, size_t limit) {
    const uint64_t bytes = (count * bits + 7) / 8;
    need(bytes, "indices");
    std::vector<uint8_t> out(count);
    uint64_t pos = 0;
    for (uint64_t i = 0; i < count; ++i) {
      unsigned v = 0;
      for (int b = 0; b < bits; ++b, ++pos) v |= ((p_[at_ + pos / 8] >> (pos % 8)) & 1u) << b;
      if (v >= limit) {
        spec_.fail("index " + std::to_string(v) + " of value " + std::to_string(i) +
                   " is outside the codebook of " + std::to_string(limit) + " entries");
      }
      out[i] = static_cast<uint8_t>(v);
    }
    for (; pos < bytes * 8; ++pos) {
      if ((p_[at_ + pos / 8] >> (pos % 8)) & 1u) spec_.fail("padding bits after the indices");
    }
    at_ += bytes;
    return out;
  }
  // Positions of `nnz` stored values among `numel`, from a bitmask.
  std::vector<uint64_t> bitmask(uint64_t numel, uint64_t nnz) {
    const uint64_t bytes = (numel + 7) / 8;
    need(bytes, "bitmask");
    std::vector<uint64_t> out;
    out.reserve(nnz);
    for (uint64_t i = 0; i < bytes * 8; ++i) {
      if (!((p_[at_ + i / 8] >> (i % 8)) & 1u)) continue;
      if (i >= numel) spec_.fail("bitmask has bits set after the last element");
      if (out.size() == nnz) {
        spec_.fail("bitmask has more than nnz = " + std::to_string(nnz) + " bits set");
      }
      out.push_back(i);
    }
    if (out.size() != nnz) {
      spec_.fail("bitmask has " + std::to_string(out.size()) + " bits set, nnz is " +
                 std::to_string(nnz));
    }
    at_ += bytes;
    return out;
  }
  // Positions from LEB128 gaps: position = previous + 1 + gap, starting at gap 0 = element 0.
  std::vector<uint64_t> gaps(uint64_t numel, uint64_t nnz) {
    std::vector<uint64_t> out;
    out.reserve(nnz);
    uint64_t next = 0;
    for (uint64_t k = 0; k < nnz; ++k) {
      uint64_t gap = 0;
      for (int shift = 0;; shift += 7) {
        if (shift > 63) spec_.fail("gap " + std::to_string(k) + " is longer than 10 bytes");
        need(1, "positions");
        const unsigned b = p_[at_++];
        if (shift == 63 && (b & 0x7e)) spec_.fail("gap " + std::to_string(k) + " overflows");
        gap |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
      }
      if (next >= numel || gap > numel - 1 - next) {
        spec_.fail("position of value " + std::to_string(k) + " lies beyond the " +
                   std::to_string(numel) + " elements");
      }
      out.push_back(next + gap);
      next += gap + 1;
    }
    return out;
  }
  void finish() const {
    if (at_ != len_) {
      spec_.fail(std::to_string(len_ - at_) + " bytes left over after the tensor's data");
    }
  }

 private:
  void need(uint64_t n, const char* what) const {
    if (n > len_ - at_) {
      spec_.fail(std::string("data ends inside the ") + what + " (payload is " +
                 std::to_string(len_) + " bytes)");
    }
  }
  const JsonField& spec_;
  const unsigned char* p_;
  size_t len_;
  size_t at_ = 0;
};

struct Layout {
  Positions positions = Positions::kNone;
  uint64_t nnz = 0;
  uint64_t codebook = 0;  // 0: values stored as floats
  int index_bits = 0;
};

template <class U>
void expand(const JsonField& spec, const Layout& l, uint64_t numel, const unsigned char* p,
            size_t len, Tensor& out) {
  PayloadReader<U> r(spec, p, len);
  std::vector<U> codebook(l.codebook);
  for (U& c : codebook) c = r.element();
  const uint64_t count = l.positions == Positions::kNone ? numel : l.nnz;
  std::vector<U> values(count);
  if (l.codebook) {
    std::vector<uint8_t> idx = r.indices(count, l.index_bits, codebook.size());
    for (uint64_t i = 0; i < count; ++i) values[i] = codebook[idx[i]];
  } else {
    for (U& v : values) v = r.element();
  }
  U* dst = static_cast<U*>(out.raw());
  if (l.positions == Positions::kNone) {
    std::copy(values.begin(), values.end(), dst);
  } else {
    std::vector<uint64_t> pos =
        l.positions == Positions::kBitmask ? r.bitmask(numel, l.nnz) : r.gaps(numel, l.nnz);
    for (uint64_t k = 0; k < l.nnz; ++k) dst[pos[k]] = values[k];
  }
  r.finish();
}

}  // namespace

std::optional<CompactTensor> encode_compact(const Tensor& t) {
  if (!t.defined() || !t.quant.empty() || t.numel() < kMinElements) return std::nullopt;
  // Values are compared and stored as bit patterns, so integer tensors (quantized weights:
  // int4 values in int8 storage pack to 4 bits) take the same encodings as float ones.
  switch (t.dtype()) {
    case DType::kF32:
    case DType::kI32:
      return encode_typed<uint32_t>(t);
    case DType::kF64:
      return encode_typed<uint64_t>(t);
    case DType::kI8:
    case DType::kU8:
      return encode_typed<uint8_t>(t);
    default:
      return std::nullopt;
  }
}

Tensor decode_compact(const JsonField& spec, DType dtype, const Shape& shape,
                      const unsigned char* stored, size_t stored_bytes) {
  spec.require_object({"nnz", "positions", "codebook", "index_bits", "zlib"});
  const size_t width = dtype_size(dtype);
  if (dtype == DType::kI64) {
    spec.fail("compact storage holds f32, f64, i32, i8 or u8 tensors, not " +
              std::string(dtype_name(dtype)));
  }
  uint64_t numel = 1;
  for (int64_t d : shape) numel *= static_cast<uint64_t>(d);  // bounded by the caller
  Layout l;
  auto nnz = spec.find("nnz");
  auto positions = spec.find("positions");
  if (nnz.has_value() != positions.has_value()) spec.fail("'nnz' and 'positions' go together");
  if (nnz) {
    l.nnz = nnz->uint64();
    if (l.nnz > numel) {
      nnz->fail("nnz " + std::to_string(l.nnz) + " exceeds the " + std::to_string(numel) +
                " elements");
    }
    const std::string kind = positions->str();
    if (kind == "bitmask") {
      l.positions = Positions::kBitmask;
    } else if (kind == "gaps") {
      l.positions = Positions::kGaps;
    } else {
      positions->fail("unknown positions '" + kind + "' (expected bitmask or gaps)");
    }
  }
  auto codebook = spec.find("codebook");
  auto index_bits = spec.find("index_bits");
  if (codebook.has_value() != index_bits.has_value()) {
    spec.fail("'codebook' and 'index_bits' go together");
  }
  if (codebook) {
    l.codebook = codebook->uint64();
    if (l.codebook < 1 || l.codebook > kMaxCodebook) {
      codebook->fail("codebook size " + std::to_string(l.codebook) + " is not in 1..256");
    }
    const uint64_t bits = index_bits->uint64();
    if (bits < 1 || bits > 8)
      index_bits->fail("index_bits " + std::to_string(bits) + " not in 1..8");
    l.index_bits = static_cast<int>(bits);
  }
  if (!nnz && !codebook) spec.fail("a compact tensor needs 'nnz' or 'codebook'");

  // The payload's size follows from the layout, except for the variable-length gaps.
  const uint64_t elem = dtype_size(dtype);
  const uint64_t count = nnz ? l.nnz : numel;
  uint64_t fixed = l.codebook * elem;
  fixed += l.codebook ? (count * l.index_bits + 7) / 8 : count * elem;
  if (l.positions == Positions::kBitmask) fixed += (numel + 7) / 8;
  const uint64_t max_len = fixed + (l.positions == Positions::kGaps ? kMaxVarintBytes * l.nnz : 0);
  auto size_problem = [&](uint64_t len) {
    return "payload of " + std::to_string(len) + " bytes, the layout needs " +
           (fixed == max_len ? std::to_string(fixed)
                             : std::to_string(fixed) + " to " + std::to_string(max_len));
  };

  Tensor out;
  try {
    out = Tensor(dtype, shape);
  } catch (const Error& e) {
    spec.fail(e.what());
  }
  std::string inflated;
  const unsigned char* p = stored;
  size_t len = stored_bytes;
  if (auto z = spec.find("zlib")) {
    const uint64_t size = z->uint64();
    if (size < fixed || size > max_len) z->fail(size_problem(size));
    if (auto problem = zlib_inflate(stored, stored_bytes, size, inflated)) z->fail(*problem);
    p = reinterpret_cast<const unsigned char*>(inflated.data());
    len = size;
  } else if (len < fixed || len > max_len) {
    spec.fail(size_problem(len));
  }
  if (width == 1) {
    expand<uint8_t>(spec, l, numel, p, len, out);
  } else if (width == 4) {
    expand<uint32_t>(spec, l, numel, p, len, out);
  } else {
    expand<uint64_t>(spec, l, numel, p, len, out);
  }
  return out;
}

}  // namespace minnow::io
