#include "io_test_util.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/rng.h"
#include "minnow/error.h"

namespace minnow::io::testing {
namespace {

uint32_t get_u32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[at + i]);
  return v;
}

uint64_t get_u64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[at + i]);
  return v;
}

void put_u32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

void put_u64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

Tensor random_bits(DType dtype, Shape shape, Rng& rng) {
  Tensor t(dtype, std::move(shape));
  auto* p = static_cast<unsigned char*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>(rng.next_u64());
  return t;
}

bool same_double(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

bool same_attr(const AttrValue& a, const AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (const auto* x = std::get_if<double>(&a)) return same_double(*x, std::get<double>(b));
  if (const auto* x = std::get_if<std::vector<double>>(&a)) {
    const auto& y = std::get<std::vector<double>>(b);
    if (x->size() != y.size()) return false;
    for (size_t i = 0; i < x->size(); ++i) {
      if (!same_double((*x)[i], y[i])) return false;
    }
    return true;
  }
  return a == b;
}

void expect_same_values(const std::vector<ValueInfo>& a, const std::vector<ValueInfo>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].dtype, b[i].dtype) << a[i].name;
    EXPECT_EQ(a[i].shape, b[i].shape) << a[i].name;
  }
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/minnow-io-test-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> TempDir::list() const {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(path_)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

uint32_t crc32_of(const std::string& bytes) {
  return static_cast<uint32_t>(
      crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

std::string& RawFile::section(uint32_t kind) {
  for (RawSection& s : sections) {
    if (s.kind == kind) return s.bytes;
  }
  ADD_FAILURE() << "no section of kind " << kind;
  static std::string none;
  return none;
}

RawFile split_mnw(const std::string& file) {
  RawFile f;
  f.version = get_u32(file, 8);
  f.flags = get_u32(file, 12);
  uint32_t count = get_u32(file, 16);
  for (uint32_t i = 0; i < count; ++i) {
    size_t e = 24 + 32 * i;
    RawSection s;
    s.kind = get_u32(file, e);
    s.offset = get_u64(file, e + 8);
    s.bytes = file.substr(s.offset, get_u64(file, e + 16));
    f.sections.push_back(std::move(s));
  }
  return f;
}

std::string assemble_mnw(const RawFile& f) {
  size_t table_end = 24 + 32 * f.sections.size();
  std::string out(table_end, '\0');
  const char magic[8] = {'\x89', 'M', 'N', 'W', '\r', '\n', '\x1a', '\n'};
  std::memcpy(out.data(), magic, 8);
  put_u32(out, 8, f.version);
  put_u32(out, 12, f.flags);
  put_u32(out, 16, static_cast<uint32_t>(f.sections.size()));
  for (size_t i = 0; i < f.sections.size(); ++i) {
    const RawSection& s = f.sections[i];
    out.resize(align64(out.size()), '\0');
    size_t e = 24 + 32 * i;
    put_u32(out, e, s.kind);
    put_u32(out, e + 4, crc32_of(s.bytes));
    put_u64(out, e + 8, out.size());
    put_u64(out, e + 16, s.bytes.size());
    out += s.bytes;
  }
  uint32_t crc = static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(out.data()), 20));
  crc = static_cast<uint32_t>(
      crc32_z(crc, reinterpret_cast<const Bytef*>(out.data()) + 24, 32 * f.sections.size()));
  put_u32(out, 20, crc);
  return out;
}

RawTensorSection split_tensor_section(const std::string& bytes) {
  uint64_t len = get_u64(bytes, 0);
  RawTensorSection s;
  s.index = nlohmann::json::parse(bytes.substr(8, len));
  s.data = bytes.substr(align64(8 + len));
  return s;
}

std::string assemble_tensor_section(const RawTensorSection& s) {
  std::string index = s.index.dump();
  std::string out(8, '\0');
  put_u64(out, 0, index.size());
  out += index;
  out.resize(align64(out.size()), '\0');
  return out + s.data;
}

MnwContents sample_contents() {
  Rng rng(42);
  MnwContents c;
  Graph& g = c.graph;
  g.name = "sample";
  g.inputs = {{"x", DType::kF32, {kDynamic, 4}}, {"ids", DType::kI64, {kDynamic}}};
  g.outputs = {{"y", DType::kF32, {kDynamic, 3}}};
  Node fc{"fc", OpKind::kLinear, {"x", "w", "b"}, {"h"}, {}};
  fc.attrs.set("an_int", int64_t{-7});
  fc.attrs.set("big_int", std::numeric_limits<int64_t>::min());
  fc.attrs.set("a_float", 0.1);
  fc.attrs.set("integral_float", 2.0);  // must stay a float, not become an int
  fc.attrs.set("a_string", std::string("héllo \"quoted\"\n"));
  fc.attrs.set("ints", std::vector<int64_t>{1, 2, -3, std::numeric_limits<int64_t>::max()});
  fc.attrs.set("floats",
               std::vector<double>{0.5, -1e-300, 1e300, std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity(),
                                   std::numeric_limits<double>::quiet_NaN()});
  fc.attrs.set("no_ints", std::vector<int64_t>{});
  fc.attrs.set("no_floats", std::vector<double>{});
  g.nodes.push_back(fc);
  g.nodes.push_back(Node{"act", OpKind::kRelu, {"h"}, {"y"}, {}});
  g.nodes.push_back(Node{"opt", OpKind::kConv2d, {"x", "w", ""}, {"unused"}, {}});

  auto add = [&](const std::string& name, Tensor t, bool trainable) {
    g.initializers[name] = Initializer{std::move(t), trainable};
  };
  add("w", random_bits(DType::kF32, {3, 4}, rng), true);
  add("b", random_bits(DType::kF32, {3}, rng), true);
  add("f64", random_bits(DType::kF64, {2, 2}, rng), false);
  add("i64", random_bits(DType::kI64, {5}, rng), false);
  add("i32", random_bits(DType::kI32, {1, 2, 3}, rng), false);
  add("scalar", random_bits(DType::kF32, {}, rng), true);
  add("empty", Tensor(DType::kF32, {0, 5}), false);
  add("rank4", random_bits(DType::kF32, {2, 1, 3, 2}, rng), true);
  Tensor q8 = random_bits(DType::kI8, {2, 3}, rng);
  q8.quant.scale = {0.25f, 1e-7f};
  q8.quant.zero_point = {-128, 127};
  q8.quant.axis = 0;
  add("q8", q8, false);
  Tensor qu8 = random_bits(DType::kU8, {7}, rng);
  qu8.quant.scale = {0.0123f};
  qu8.quant.zero_point = {128};
  add("qu8", qu8, false);

  c.metadata = {{"normalization", {{"mean", {0.5, 0.25}}, {"std", {0.1, 0.2}}}},
                {"class_names", {"cat", "dog", "fish"}},
                {"training", {{"epochs", 3}, {"note", "ünïcode"}}}};
  c.optimizer_state["adam.m/w"] = random_bits(DType::kF32, {3, 4}, rng);
  c.optimizer_state["adam.v/w"] = random_bits(DType::kF32, {3, 4}, rng);
  c.optimizer_state["adam.step"] = random_bits(DType::kI64, {}, rng);
  c.trainer_state = {{"epoch", 2}, {"step", 1234}, {"rng", {1u, 2u, 18446744073709551615u}}};
  return c;
}

MnwContents small_cnn_contents() {
  Rng rng(7);
  MnwContents c;
  Graph& g = c.graph;
  g.name = "small_cnn";
  g.inputs = {{"x", DType::kF32, {kDynamic, 1, 4, 4}}};
  g.outputs = {{"y", DType::kF32, {kDynamic, 3}}};
  Node conv{"conv", OpKind::kConv2d, {"x", "conv.w", "conv.b"}, {"c"}, {}};
  conv.attrs.set("strides", std::vector<int64_t>{1, 1});
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv.attrs.set("group", int64_t{1});
  g.nodes.push_back(conv);
  g.nodes.push_back(Node{"act", OpKind::kRelu, {"c"}, {"r"}, {}});
  g.nodes.push_back(Node{"flat", OpKind::kFlatten, {"r"}, {"xf"}, {}});
  g.nodes.back().attrs.set("axis", int64_t{1});
  g.nodes.push_back(Node{"fc", OpKind::kLinear, {"xf", "fc.w", "fc.b"}, {"y"}, {}});
  g.initializers["conv.w"] = Initializer{random_bits(DType::kF32, {2, 1, 3, 3}, rng), true};
  g.initializers["conv.b"] = Initializer{random_bits(DType::kF32, {2}, rng), true};
  g.initializers["fc.w"] = Initializer{random_bits(DType::kF32, {3, 32}, rng), true};
  g.initializers["fc.b"] = Initializer{random_bits(DType::kF32, {3}, rng), true};
  c.metadata = {{"class_names", {"a", "b", "c"}}};
  return c;
}

void expect_same_tensor(const Tensor& a, const Tensor& b, const std::string& name) {
  ASSERT_TRUE(a.defined() && b.defined()) << name;
  EXPECT_EQ(a.dtype(), b.dtype()) << name;
  ASSERT_EQ(a.shape(), b.shape()) << name;
  ASSERT_EQ(a.nbytes(), b.nbytes()) << name;
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << name << ": data differs";
  EXPECT_EQ(a.quant.scale, b.quant.scale) << name;
  EXPECT_EQ(a.quant.zero_point, b.quant.zero_point) << name;
  if (!a.quant.empty()) {
    EXPECT_EQ(a.quant.axis, b.quant.axis) << name;
  }
}

void expect_same_contents(const MnwContents& a, const MnwContents& b) {
  EXPECT_EQ(a.graph.name, b.graph.name);
  expect_same_values(a.graph.inputs, b.graph.inputs);
  expect_same_values(a.graph.outputs, b.graph.outputs);
  ASSERT_EQ(a.graph.nodes.size(), b.graph.nodes.size());
  for (size_t i = 0; i < a.graph.nodes.size(); ++i) {
    const Node& x = a.graph.nodes[i];
    const Node& y = b.graph.nodes[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.op, y.op) << x.name;
    EXPECT_EQ(x.inputs, y.inputs) << x.name;
    EXPECT_EQ(x.outputs, y.outputs) << x.name;
    ASSERT_EQ(x.attrs.all().size(), y.attrs.all().size()) << x.name;
    for (const auto& [key, value] : x.attrs.all()) {
      ASSERT_TRUE(y.attrs.has(key)) << x.name << "." << key;
      EXPECT_TRUE(same_attr(value, y.attrs.all().at(key))) << x.name << "." << key;
    }
  }
  ASSERT_EQ(a.graph.initializers.size(), b.graph.initializers.size());
  for (const auto& [name, init] : a.graph.initializers) {
    ASSERT_TRUE(b.graph.initializers.count(name)) << name;
    EXPECT_EQ(init.trainable, b.graph.initializers.at(name).trainable) << name;
    expect_same_tensor(init.value, b.graph.initializers.at(name).value, name);
  }
  EXPECT_EQ(a.metadata, b.metadata);
  ASSERT_EQ(a.optimizer_state.size(), b.optimizer_state.size());
  for (const auto& [name, t] : a.optimizer_state) {
    ASSERT_TRUE(b.optimizer_state.count(name)) << name;
    expect_same_tensor(t, b.optimizer_state.at(name), name);
  }
  EXPECT_EQ(a.trainer_state, b.trainer_state);
}

}  // namespace minnow::io::testing
