#include "io/mnw.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "io/atomic_file.h"
#include "io/byte_order.h"
#include "io/json_check.h"
#include "io/mnw_graph.h"
#include "io/mnw_tensors.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

// PNG-style magic: the high byte catches 7-bit transfers, CR LF / ^Z / LF catch text-mode
// newline translation.
constexpr unsigned char kMagic[8] = {0x89, 'M', 'N', 'W', '\r', '\n', 0x1a, '\n'};
constexpr size_t kHeaderBytes = 24;
constexpr size_t kEntryBytes = 32;

enum SectionKind : uint32_t {
  kGraph = 1,
  kMetadata = 2,
  kTensors = 3,
  kOptimizer = 4,
  kTrainer = 5,
};
constexpr uint32_t kNumKinds = 5;

const char* section_name(uint32_t kind) {
  switch (kind) {
    case kGraph:
      return "GRAPH";
    case kMetadata:
      return "METADATA";
    case kTensors:
      return "TENSORS";
    case kOptimizer:
      return "OPTIMIZER";
    case kTrainer:
      return "TRAINER";
  }
  return nullptr;
}

// Fuzzing builds (-DMINNOW_FUZZ=ON) accept wrong checksums, as fuzz builds of PNG or zip
// readers do: otherwise nearly every mutated file stops at the checksum and the fuzzer never
// reaches the parsers behind it. Normal builds always verify.
#ifdef MINNOW_FUZZING_BUILD
constexpr bool kSkipChecksums = true;
#else
constexpr bool kSkipChecksums = false;
#endif

uint32_t crc32_of(uint32_t crc, const void* data, size_t size) {
  return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), size));
}

uint64_t align64(uint64_t n) { return (n + 63) / 64 * 64; }

struct SectionEntry {
  uint32_t kind = 0;
  uint32_t crc = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t json_length = 0;  // 0: the section's JSON is stored as is; else deflated, this long
};

// The header checksum covers the 20 bytes before it and the section table after it.
uint32_t header_crc(const unsigned char* file, size_t table_bytes) {
  uint32_t crc = crc32_of(0, file, 20);
  return crc32_of(crc, file + kHeaderBytes, table_bytes);
}

std::vector<TensorRecord> records_of(const std::map<std::string, Initializer>& inits) {
  std::vector<TensorRecord> out;
  for (const auto& [name, init] : inits) out.push_back({name, init.value, init.trainable});
  return out;
}

std::vector<TensorRecord> records_of(const std::map<std::string, Tensor>& tensors) {
  std::vector<TensorRecord> out;
  for (const auto& [name, t] : tensors) out.push_back({name, t, false});
  return out;
}

nlohmann::json parse_object_section(const unsigned char* data, size_t size,
                                    const std::string& where) {
  nlohmann::json j = detail::parse_json(reinterpret_cast<const char*>(data), size, where);
  if (!j.is_object()) throw Error(where + ": expected a JSON object, got " + j.type_name());
  return j;
}

// Reads and checks the fixed header and the section table: everything that can be checked
// without looking inside a section.
std::vector<SectionEntry> read_layout(const unsigned char* p, size_t size,
                                      const std::string& label) {
  if (size == 0) throw Error(label + ": empty file (not a minnow model)");
  if (std::memcmp(p, kMagic, std::min(size, sizeof kMagic)) != 0) {
    throw Error(label + ": not a minnow model file (bad magic)");
  }
  if (size < kHeaderBytes) {
    throw Error(label + ": truncated (file is " + std::to_string(size) +
                " bytes, the header needs " + std::to_string(kHeaderBytes) + ")");
  }
  uint32_t version = load_le<uint32_t>(p + 8);
  if (version != kMnwVersion) {
    throw Error(label + ": unsupported .mnw version " + std::to_string(version) +
                " (this minnow reads version " + std::to_string(kMnwVersion) + ")");
  }
  uint32_t count = load_le<uint32_t>(p + 16);
  if (count == 0 || count > kNumKinds) {
    throw Error(label + ": corrupt header: section count " + std::to_string(count) +
                " (expected 1 to " + std::to_string(kNumKinds) + ")");
  }
  size_t table_end = kHeaderBytes + count * kEntryBytes;
  if (size < table_end) {
    throw Error(label + ": truncated (file is " + std::to_string(size) +
                " bytes, the section table ends at " + std::to_string(table_end) + ")");
  }
  if (!kSkipChecksums && header_crc(p, count * kEntryBytes) != load_le<uint32_t>(p + 20)) {
    throw Error(label + ": checksum mismatch in the header (the file is corrupt)");
  }
  uint32_t flags = load_le<uint32_t>(p + 12);
  if (flags != 0) throw Error(label + ": unsupported header flags " + std::to_string(flags));

  std::vector<SectionEntry> sections;
  bool seen[kNumKinds + 1] = {};
  for (uint32_t i = 0; i < count; ++i) {
    const unsigned char* e = p + kHeaderBytes + i * kEntryBytes;
    SectionEntry s{load_le<uint32_t>(e), load_le<uint32_t>(e + 4), load_le<uint64_t>(e + 8),
                   load_le<uint64_t>(e + 16), load_le<uint64_t>(e + 24)};
    const char* name = section_name(s.kind);
    if (!name) throw Error(label + ": unknown section kind " + std::to_string(s.kind));
    std::string what = label + ": section " + name;
    if (seen[s.kind]) throw Error(what + " appears twice");
    seen[s.kind] = true;
    if (s.offset % 64 != 0) {
      throw Error(what + " at offset " + std::to_string(s.offset) + " is not 64-byte aligned");
    }
    if (s.offset < table_end) {
      throw Error(what + " at offset " + std::to_string(s.offset) + " overlaps the header");
    }
    if (s.offset > size || s.length > size - s.offset) {
      std::string end =
          s.length > UINT64_MAX - s.offset ? "beyond 2^64" : std::to_string(s.offset + s.length);
      throw Error(label + ": truncated (file is " + std::to_string(size) + " bytes, section " +
                  name + " ends at " + end + ")");
    }
    sections.push_back(s);
  }
  for (uint32_t kind : {kGraph, kTensors}) {
    if (!seen[kind]) throw Error(label + ": missing section " + section_name(kind));
  }

  // Sections must not overlap, and the gaps between them (alignment padding) must be zero so
  // that every byte of the file is covered by a checksum or a check.
  std::vector<SectionEntry> sorted = sections;
  std::sort(sorted.begin(), sorted.end(),
            [](const SectionEntry& a, const SectionEntry& b) { return a.offset < b.offset; });
  uint64_t pos = table_end;
  for (const SectionEntry& s : sorted) {
    if (s.offset < pos) {
      throw Error(label + ": section " + section_name(s.kind) + " overlaps the previous section");
    }
    for (uint64_t i = pos; i < s.offset; ++i) {
      if (p[i] != 0) {
        throw Error(label + ": corrupt padding at offset " + std::to_string(i) +
                    " (expected zero bytes)");
      }
    }
    pos = s.offset + s.length;
  }
  if (pos != size) {
    throw Error(label + ": " + std::to_string(size - pos) +
                " bytes of unexpected data after the last section");
  }
  for (const SectionEntry& s : sections) {
    if (!kSkipChecksums && crc32_of(0, p + s.offset, s.length) != s.crc) {
      throw Error(label + ": checksum mismatch in section " + section_name(s.kind));
    }
  }
  return sections;
}

// `what` prefixes every error: the caller knows whether a path is involved.
std::string serialize_with_label(const MnwContents& c, const std::string& what) {
  try {
    c.graph.validate();
  } catch (const Error& e) {
    throw Error(what + ": invalid graph: " + e.what());
  }
  if (!c.metadata.is_object()) throw Error(what + ": metadata must be a JSON object");
  if (!c.trainer_state.is_object()) throw Error(what + ": trainer state must be a JSON object");

  struct Section {
    uint32_t kind;
    std::string bytes;
    uint64_t json_length = 0;
  };
  std::vector<Section> sections;
  auto add_json = [&](uint32_t kind, const nlohmann::json& j, const std::string& part) {
    auto [bytes, json_length] = store_json_text(detail::dump_json(j, what + ": " + part));
    sections.push_back({kind, std::move(bytes), json_length});
  };
  auto add_tensors = [&](uint32_t kind, const std::vector<TensorRecord>& records) {
    Section s{kind, {}, 0};
    s.bytes = encode_tensor_section(records, what, &s.json_length);
    sections.push_back(std::move(s));
  };
  add_json(kGraph, graph_to_json(c.graph), "graph");
  add_json(kMetadata, c.metadata, "metadata");
  add_tensors(kTensors, records_of(c.graph.initializers));
  if (!c.optimizer_state.empty()) add_tensors(kOptimizer, records_of(c.optimizer_state));
  if (!c.trainer_state.empty()) add_json(kTrainer, c.trainer_state, "trainer state");

  size_t table_bytes = sections.size() * kEntryBytes;
  std::vector<uint64_t> offsets;
  uint64_t end = kHeaderBytes + table_bytes;
  for (const Section& sec : sections) {
    offsets.push_back(align64(end));
    end = offsets.back() + sec.bytes.size();
  }
  std::string out(end, '\0');
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  store_le<uint32_t>(out.data() + 8, kMnwVersion);
  store_le<uint32_t>(out.data() + 12, 0);
  store_le<uint32_t>(out.data() + 16, static_cast<uint32_t>(sections.size()));
  for (size_t i = 0; i < sections.size(); ++i) {
    const std::string& bytes = sections[i].bytes;
    char* e = out.data() + kHeaderBytes + i * kEntryBytes;
    store_le<uint32_t>(e, sections[i].kind);
    store_le<uint32_t>(e + 4, crc32_of(0, bytes.data(), bytes.size()));
    store_le<uint64_t>(e + 8, offsets[i]);
    store_le<uint64_t>(e + 16, bytes.size());
    store_le<uint64_t>(e + 24, sections[i].json_length);
    std::memcpy(out.data() + offsets[i], bytes.data(), bytes.size());
  }
  store_le<uint32_t>(out.data() + 20,
                     header_crc(reinterpret_cast<const unsigned char*>(out.data()), table_bytes));
  return out;
}

}  // namespace

std::string serialize_mnw(const MnwContents& c) {
  return serialize_with_label(c, "cannot serialize model");
}

MnwContents decode_mnw(const void* data, size_t size, const std::string& label) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::vector<SectionEntry> sections = read_layout(p, size, label);
  MnwContents c;
  for (const SectionEntry& s : sections) {
    std::string where = label + ": section " + section_name(s.kind);
    const unsigned char* body = p + s.offset;
    auto json_section = [&] {
      const std::string text = load_json_text(body, s.length, s.json_length, where);
      return parse_object_section(reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                                  where);
    };
    switch (s.kind) {
      case kGraph: {
        nlohmann::json j = json_section();
        // The initializers decoded so far (if TENSORS came first) must survive.
        auto inits = std::move(c.graph.initializers);
        c.graph = graph_from_json(j, where);
        c.graph.initializers = std::move(inits);
        break;
      }
      case kMetadata:
        c.metadata = json_section();
        break;
      case kTensors:
        for (TensorRecord& r : decode_tensor_section(body, s.length, where, s.json_length)) {
          c.graph.initializers[r.name] = Initializer{std::move(r.value), r.trainable};
        }
        break;
      case kOptimizer:
        for (TensorRecord& r : decode_tensor_section(body, s.length, where, s.json_length)) {
          c.optimizer_state[r.name] = std::move(r.value);
        }
        break;
      case kTrainer:
        c.trainer_state = json_section();
        break;
    }
  }
  return c;
}

void check_mnw_graph(const Graph& g, const std::string& label) {
  try {
    g.validate();
    g.infer_shapes();
  } catch (const Error& e) {
    throw Error(label + ": invalid graph: " + e.what());
  }
}

MnwContents parse_mnw(const void* data, size_t size, const std::string& label) {
  MnwContents c = decode_mnw(data, size, label);
  check_mnw_graph(c.graph, label);
  return c;
}

MnwContents load_mnw(const std::string& path) {
  std::string bytes = read_file(path);
  return parse_mnw(bytes.data(), bytes.size(), path);
}

void save_mnw(const std::string& path, const MnwContents& c) {
  write_file_atomic(path, serialize_with_label(c, "cannot save '" + path + "'"));
}

}  // namespace minnow::io
