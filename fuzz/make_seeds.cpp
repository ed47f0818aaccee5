// Writes the fuzzers' seed corpora (fuzz/corpus/mnw, fuzz/corpus/npy, fuzz/corpus/onnx): small
// valid files that cover the loaders' features, so fuzzing starts from deep inside the formats.
// The ONNX seeds are the same small graphs exported by minnow, plus PyTorch-style shape
// arithmetic written directly with the protobuf classes.
//   build/fuzz_make_seeds fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "io/mnw.h"
#include "io/npy.h"
#include "minnow/builder.h"
#include "onnx/onnx_export.h"
#include "onnx/onnx_tensor.h"
#include "passes/insert_qdq.h"

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
  fs::create_directories(dir / "onnx");

  auto save = [&](const std::string& name, Graph g, nlohmann::json metadata) {
    io::MnwContents c;
    c.graph = std::move(g);
    c.metadata = std::move(metadata);
    io::save_mnw((dir / "mnw" / (name + ".mnw")).string(), c);
    minnow::onnx::ExportOptions eo;
    eo.opset = name == "tiny_mlp" ? 13 : 17;
    minnow::onnx::export_onnx_file(c.graph, (dir / "onnx" / (name + ".onnx")).string(), eo);
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

  {
    // A pruned + clustered layer: stored as a compact tensor (zeros as a bitmask or gaps,
    // values as codebook indices, zlib), so fuzzing reaches that decoder too.
    GraphBuilder b("tiny_compact", 5);
    std::string x = b.input("input", {kDynamic, 96});
    b.output(b.linear(x, 40, true, "fc"));
    Graph g = b.build();
    Tensor& w = g.initializers.at(g.nodes[0].inputs[1]).value;
    for (int64_t i = 0; i < w.numel(); ++i) {
      w.f32()[i] = i % 11 == 0 ? 0.0625f * static_cast<float>(i % 7 - 3) : 0.0f;
    }
    save("tiny_compact", std::move(g), nlohmann::json::object());
  }
  for (int bits : {8, 4}) {
    // Weight-only int8 / int4: int8 codes deflated (int4 packed to 4 bits), per-channel scales
    // stored as halves, so fuzzing reaches the dense-zlib, half and shuffle decoders.
    GraphBuilder b("tiny_int" + std::to_string(bits), 6);
    std::string x = b.input("input", {kDynamic, 64});
    x = b.relu(b.linear(x, 48, true, "fc1"));
    b.output(b.linear(x, 10, true, "fc2"));
    Graph g = b.build();
    quantize_weights_only(g, bits);
    save("tiny_int" + std::to_string(bits), std::move(g), nlohmann::json::object());
  }
  {
    // x.view(x.size(0), -1) as PyTorch exports it, then Gemm and Softmax (opset 11 semantics).
    ::onnx::ModelProto m;
    m.set_ir_version(7);
    m.add_opset_import()->set_version(11);
    auto* g = m.mutable_graph();
    g->set_name("shape_arith");
    auto* in = g->add_input();
    in->set_name("x");
    auto* tt = in->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(::onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("N");
    for (int d : {2, 3}) tt->mutable_shape()->add_dim()->set_dim_value(d);
    auto node = [&](const char* op, std::vector<std::string> ins, std::string out) {
      auto* n = g->add_node();
      n->set_op_type(op);
      n->set_name(out);
      for (auto& i : ins) n->add_input(i);
      n->add_output(out);
      return n;
    };
    Tensor zero(DType::kI64, {1}), minus1(DType::kI64, {1}), w(DType::kF32, {6, 4});
    static_cast<int64_t*>(minus1.raw())[0] = -1;
    for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = 0.1f * static_cast<float>(i % 5);
    minnow::onnx::tensor_to_proto(zero, "zero", g->add_initializer());
    minnow::onnx::tensor_to_proto(minus1, "minus1", g->add_initializer());
    minnow::onnx::tensor_to_proto(w, "w", g->add_initializer());
    node("Shape", {"x"}, "s");
    node("Gather", {"s", "zero"}, "n");
    auto* cat = node("Concat", {"n", "minus1"}, "shape");
    auto* axis = cat->add_attribute();
    axis->set_name("axis");
    axis->set_type(::onnx::AttributeProto::INT);
    axis->set_i(0);
    node("Reshape", {"x", "shape"}, "flat");
    node("Gemm", {"flat", "w"}, "logits");
    node("Softmax", {"logits"}, "y");
    g->add_output()->set_name("y");
    std::ofstream f(dir / "onnx" / "shape_arith.onnx", std::ios::binary);
    f << m.SerializeAsString();
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
