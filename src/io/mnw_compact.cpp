#include "io/mnw_compact.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include "io/byte_order.h"
#include "io/half_float.h"
#include "io/mnw_tensors.h"
#include "io/zlib_codec.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

using detail::JsonField;
using nlohmann::json;

// Each tensor occupies whole 8-byte granules (under 64 bytes) or 64-byte blocks: below 16
// elements (4 floats stored as halves save one granule at best) there is nothing to gain.
constexpr int64_t kMinElements = 16;
constexpr size_t kMaxCodebook = 256;
// A LEB128 gap below 2^64 takes at most 10 bytes.
constexpr uint64_t kMaxVarintBytes = 10;
constexpr int kZlibLevel = 9;

enum class Positions { kNone, kBitmask, kGaps };
// How the stored values are written: as elements of the dtype, as halves, as codebook indices.
enum class Values { kPlain, kHalf, kCodebook };

// Bytes a payload of `n` bytes takes in the data area, padding to its alignment included.
uint64_t footprint(uint64_t n) {
  const uint64_t a = stored_alignment(n);
  return (n + a - 1) / a * a;
}

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

// Byte transposition of the first count x elem bytes of `p`: byte j of element i moves to
// j * count + i (all lowest bytes first). Float exponents then form runs that deflate well.
std::string shuffled(const std::string& p, uint64_t count, size_t elem) {
  std::string out = p;
  for (uint64_t i = 0; i < count; ++i) {
    for (size_t j = 0; j < elem; ++j) out[j * count + i] = p[i * elem + j];
  }
  return out;
}

std::string unshuffled(const std::string& p, uint64_t count, size_t elem) {
  std::string out = p;
  for (uint64_t i = 0; i < count; ++i) {
    for (size_t j = 0; j < elem; ++j) out[i * elem + j] = p[j * count + i];
  }
  return out;
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

// The halves of f32 bit patterns `v`, or false when one of them is not exactly a half.
template <class U>
bool halves_of(const std::vector<U>& v, std::vector<uint16_t>* out) {
  out->clear();
  for (U x : v) {
    std::optional<uint16_t> h = f32_bits_to_half_exact(static_cast<uint32_t>(x));
    if (!h) return false;
    out->push_back(*h);
  }
  return true;
}

// The payload; `parts` receives where its values and its positions start.
template <class U>
std::string payload_of(const Split<U>& s, Positions positions, Values form,
                       const std::vector<U>& codebook, const std::vector<uint16_t>& halves,
                       int index_bits, std::vector<size_t>* parts) {
  const std::vector<U>& values = positions == Positions::kNone ? s.all : s.nonzero;
  std::string out;
  if (form == Values::kCodebook) {
    for (U c : codebook) append_le<U>(out, c);
    parts->push_back(out.size());
    std::vector<uint8_t> idx(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      idx[i] = static_cast<uint8_t>(std::lower_bound(codebook.begin(), codebook.end(), values[i]) -
                                    codebook.begin());
    }
    append_packed(out, idx, index_bits);
  } else if (form == Values::kHalf) {
    for (uint16_t h : halves) append_le<uint16_t>(out, h);
  } else {
    for (U v : values) append_le<U>(out, v);
  }
  parts->push_back(out.size());
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
std::optional<CompactTensor> encode_typed(const Tensor& t, bool may_half, bool float_values) {
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
  struct Form {
    Values values;
    int index_bits;     // codebook only
    bool deflate_only;  // 8-bit indices: only worth it deflated (whole bytes deflate better)
  };
  for (Positions positions : position_options) {
    const std::vector<U>& values = positions == Positions::kNone ? s.all : s.nonzero;
    std::vector<U> codebook;
    std::vector<uint16_t> halves;
    std::vector<Form> forms;
    // Dense values of a mostly-zero tensor lose to the same values stored sparse, and deflating
    // them (shuffled, at level 9) is the slowest candidate of all: skip them.
    if (positions != Positions::kNone || position_options.size() == 1) {
      // Dense float values are not deflated: their mantissas are noise (shuffled and deflated
      // they shrink ~15%), and a float model's dense weights stay raw — memory-mappable and read
      // without inflating, as in ONNX or TFLite files. Integer codes (quantized weights: the
      // entropy-coding stage of Deep Compression) and exact halves (quantization scales) are.
      if (positions != Positions::kNone || !float_values) {
        forms.push_back({Values::kPlain, 0, false});
      }
      if (may_half && halves_of(values, &halves)) forms.push_back({Values::kHalf, 0, false});
    }
    if (codebook_of(values, &codebook)) {
      const int bits = bits_for(codebook.size());
      forms.push_back({Values::kCodebook, bits, false});
      if (bits < 8) forms.push_back({Values::kCodebook, 8, true});
    }
    for (const Form& form : forms) {
      json spec = json::object();
      if (positions != Positions::kNone) {
        spec["nnz"] = static_cast<uint64_t>(s.nonzero.size());
        spec["positions"] = positions == Positions::kBitmask ? "bitmask" : "gaps";
      }
      if (form.values == Values::kCodebook) {
        spec["codebook"] = static_cast<uint64_t>(codebook.size());
        spec["index_bits"] = form.index_bits;
      }
      if (form.values == Values::kHalf) spec["half"] = true;
      std::vector<size_t> parts;
      std::string payload =
          payload_of(s, positions, form.values, codebook, halves, form.index_bits, &parts);
      // Dense plain values undeflated are the raw encoding, not a compact one.
      if (!form.deflate_only && !(positions == Positions::kNone && form.values == Values::kPlain)) {
        consider(spec, payload);
      }
      const size_t elem = form.values == Values::kHalf    ? 2
                          : form.values == Values::kPlain ? sizeof(U)
                                                          : 1;
      for (bool shuffle : {false, true}) {
        if (shuffle && elem == 1) continue;
        const std::string in = shuffle ? shuffled(payload, values.size(), elem) : payload;
        json zspec = spec;
        zspec["zlib"] = static_cast<uint64_t>(payload.size());
        if (shuffle) zspec["shuffle"] = true;
        // Deflate blocks of their own for the parts (and byte planes) often pay: try both.
        std::vector<size_t> blocks = parts;
        for (size_t j = 1; shuffle && j < elem; ++j) blocks.push_back(j * values.size());
        std::sort(blocks.begin(), blocks.end());
        for (ZlibStrategy strategy : {ZlibStrategy::kDefault, ZlibStrategy::kHuffmanOnly}) {
          consider(zspec, zlib_deflate(in, kZlibLevel, strategy));
          const bool inner = std::any_of(blocks.begin(), blocks.end(),
                                         [&](size_t b) { return b > 0 && b < in.size(); });
          if (inner) consider(zspec, zlib_deflate(in, kZlibLevel, strategy, blocks));
        }
      }
    }
  }
  // Worth it only when the tensor takes less room in the data area than its raw data.
  if (best && footprint(best->payload.size()) >= footprint(t.nbytes())) return std::nullopt;
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
  // A half, widened to the bit pattern of the f32 of the same value.
  uint32_t half() {
    need(2, "values");
    const uint32_t v = half_to_f32_bits(load_le<uint16_t>(p_ + at_));
    at_ += 2;
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
  bool half = false;  // values stored as halves (f32 only)
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
  } else if (l.half) {
    for (U& v : values) v = static_cast<U>(r.half());
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
      return encode_typed<uint32_t>(t, t.dtype() == DType::kF32, t.dtype() == DType::kF32);
    case DType::kF64:
      return encode_typed<uint64_t>(t, false, true);
    case DType::kI8:
    case DType::kU8:
      return encode_typed<uint8_t>(t, false, false);
    default:
      return std::nullopt;
  }
}

Tensor decode_compact(const JsonField& spec, DType dtype, const Shape& shape,
                      const unsigned char* stored, size_t stored_bytes) {
  spec.require_object({"nnz", "positions", "codebook", "index_bits", "zlib", "half", "shuffle"});
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
  auto z = spec.find("zlib");
  // A flag is written only as true: absent means false, so one tensor has one spelling.
  auto flag = [](const std::optional<JsonField>& f) {
    if (f && !f->boolean()) f->fail("written only as true (leave it out for false)");
    return f.has_value();
  };
  auto half = spec.find("half");
  l.half = flag(half);
  if (l.half && dtype != DType::kF32) {
    half->fail("halves store f32 values, not " + std::string(dtype_name(dtype)));
  }
  if (l.half && codebook) half->fail("'half' does not go with 'codebook'");
  auto shuffle = spec.find("shuffle");
  const bool shuffled_values = flag(shuffle);
  if (shuffled_values && !z) shuffle->fail("'shuffle' needs 'zlib'");
  if (shuffled_values && codebook) shuffle->fail("'shuffle' does not go with 'codebook'");
  if (shuffled_values && !l.half && width == 1) {
    shuffle->fail("'shuffle' needs elements of more than one byte, not " +
                  std::string(dtype_name(dtype)));
  }
  if (!nnz && !codebook && !z && !l.half) {
    spec.fail("a compact tensor needs 'nnz', 'codebook', 'zlib' or 'half'");
  }

  // The payload's size follows from the layout, except for the variable-length gaps.
  const uint64_t elem = dtype_size(dtype);
  const uint64_t value_bytes = l.half ? 2 : elem;  // of a value stored without a codebook
  const uint64_t count = nnz ? l.nnz : numel;
  uint64_t fixed = l.codebook * elem;
  fixed += l.codebook ? (count * l.index_bits + 7) / 8 : count * value_bytes;
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
  if (z) {
    const uint64_t size = z->uint64();
    if (size < fixed || size > max_len) z->fail(size_problem(size));
    if (auto problem = zlib_inflate(stored, stored_bytes, size, inflated)) z->fail(*problem);
    // The values come first (no codebook with shuffle) and fixed >= count x value_bytes.
    if (shuffled_values) inflated = unshuffled(inflated, count, value_bytes);
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
