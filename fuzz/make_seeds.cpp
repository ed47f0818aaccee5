// Writes the fuzzers' seed corpora (fuzz/corpus/mnw, fuzz/corpus/npy): small valid files that
// cover the loaders' features, so fuzzing starts from deep inside the formats.
//   build/fuzz_make_seeds fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <string>

#include "io/mnw.h"
#include "io/npy.h"
#include "minnow/builder.h"

namespace fs = std::filesystem;
using namespace minnow;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
    return 1;
  }
  const fs::path dir = argv[1];
  fs::create_directories(dir / "mnw");
  fs::create_directories(dir / "npy");

  auto save = [&](const std::string& name, Graph g, nlohmann::json metadata) {
    io::MnwContents c;
    c.graph = std::move(g);
    c.metadata = std::move(metadata);
    io::save_mnw((dir / "mnw" / (name + ".mnw")).string(), c);
  };
  {
    GraphBuilder b("tiny_cnn", 1);
    std::string x = b.input("input", {kDynamic, 1, 5, 5});
    std::string h =
        b.batch_norm(b.conv2d(x, 2, 3, {.pad = 1, .bias = false}, "conv"), 1e-5, 0.1, "bn");
    h = b.max_pool(b.activation(OpKind::kRelu6, h), 2, 2);
    b.output(b.linear(b.flatten(h), 3, true, "fc"));
    save("tiny_cnn", b.build(), {{"normalization", {{"mean", {0.5}}, {"std", {0.25}}}}});
  }
  {
    GraphBuilder b("tiny_mlp", 2);
    std::string x = b.input("input", {kDynamic, 4});
    b.output(b.linear(b.dropout(b.relu(b.linear(x, 3, true, "fc1")), 0.1), 2, true, "fc2"));
    save("tiny_mlp", b.build(), nlohmann::json::object());
  }
  {
    // Token ids and lengths, as the text models take them.
    GraphBuilder b("tiny_gru_text", 3);
    std::string ids = b.input("tokens", {kDynamic, 6}, DType::kI64);
    std::string len = b.input("lengths", {kDynamic}, DType::kI64);
    std::vector<std::string> r = b.gru(b.embedding(ids, 12, 4, "embed"), 3, true, len, "gru");
    b.output(b.linear(r[1], 2, true, "fc"));
    save("tiny_gru_text", b.build(), nlohmann::json::object());
  }
  {
    // Depthwise conv, residual add, global pooling.
    GraphBuilder b("tiny_block", 4);
    std::string x = b.input("input", {kDynamic, 2, 6, 6});
    std::string d = b.conv2d(x, 2, 3, {.pad = 1, .groups = 2, .bias = false}, "dw");
    std::string s = b.op(OpKind::kAdd, {x, b.batch_norm(d, 1e-5, 0.1, "bn")}, {}, "add");
    b.output(b.linear(b.flatten(b.global_avg_pool(s)), 2, true, "fc"));
    save("tiny_block", b.build(), nlohmann::json::object());
  }

  auto npy = [&](const std::string& name, Tensor t) {
    io::write_npy((dir / "npy" / (name + ".npy")).string(), t);
  };
  Tensor f(DType::kF32, {2, 3});
  for (int64_t i = 0; i < f.numel(); ++i) f.f32()[i] = 0.5f * static_cast<float>(i);
  npy("f32_2x3", f);
  Tensor l(DType::kI64, {4});
  for (int64_t i = 0; i < l.numel(); ++i) l.data<int64_t>()[i] = i - 1;
  npy("i64_4", l);
  npy("f32_scalar", Tensor(DType::kF32, {}));
  npy("f32_empty_0x3", Tensor(DType::kF32, {0, 3}));
  npy("f64_1x1x2", Tensor(DType::kF64, {1, 1, 2}));
  std::printf("wrote seeds under %s\n", dir.c_str());
  return 0;
}
