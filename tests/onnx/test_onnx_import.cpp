// The ONNX importer: conformance over the ONNX node tests, folding of PyTorch's shape
// arithmetic, and clear errors for models it cannot or must not import.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdio>
#include <string>

#include "minnow/error.h"
#include "onnx/import_context.h"
#include "onnx/onnx_import.h"
#include "onnx/onnx_tensor.h"
#include "runtime/inference_session.h"

namespace minnow::onnx {
namespace {

using ::onnx::ModelProto;
using ::onnx::NodeProto;
using ::onnx::TensorProto;

// A small ONNX model under construction.
struct ModelBuilder {
  ModelProto m;
  ::onnx::GraphProto* g;

  explicit ModelBuilder(int opset = 13) {
    m.set_ir_version(8);
    auto* o = m.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    g = m.mutable_graph();
    g->set_name("test");
  }
  ModelBuilder(const ModelBuilder& o) : m(o.m), g(m.mutable_graph()) {}
  void input(const std::string& name, std::vector<int64_t> dims, const std::string& batch = "") {
    auto* v = g->add_input();
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(TensorProto::FLOAT);
    for (size_t i = 0; i < dims.size(); ++i) {
      auto* d = t->mutable_shape()->add_dim();
      if (i == 0 && !batch.empty()) {
        d->set_dim_param(batch);
      } else {
        d->set_dim_value(dims[i]);
      }
    }
  }
  void output(const std::string& name) { g->add_output()->set_name(name); }
  NodeProto* node(const std::string& op, std::vector<std::string> ins,
                  std::vector<std::string> outs, const std::string& name = "") {
    NodeProto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + std::to_string(g->node_size()) : name);
    for (auto& i : ins) n->add_input(i);
    for (auto& o : outs) n->add_output(o);
    return n;
  }
  void init(const std::string& name, const Tensor& t) {
    tensor_to_proto(t, name, g->add_initializer());
  }
  std::string bytes() const { return m.SerializeAsString(); }
  Graph import() const {
    std::string b = bytes();
    return import_onnx_bytes(b.data(), b.size(), "model.onnx");
  }
};

Tensor ints(std::vector<int64_t> v) {
  Tensor t(DType::kI64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) static_cast<int64_t*>(t.raw())[i] = v[i];
  return t;
}

std::string error_of(const ModelBuilder& b) {
  try {
    b.import();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(OnnxImport, NodeConformanceHasNoFailures) {
  const std::string cmd = std::string(MINNOW_ONNX_NODE_TESTS_PATH) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  int passed = -1, failed = -1, skipped = -1;
  const size_t at = out.rfind("onnx node tests: ");
  ASSERT_NE(at, std::string::npos) << out;
  ASSERT_EQ(std::sscanf(out.c_str() + at, "onnx node tests: %d passed, %d failed, %d skipped",
                        &passed, &failed, &skipped),
            3);
  std::printf("%s", out.c_str() + at);
  EXPECT_EQ(failed, 0) << out;
  EXPECT_GE(passed, 250) << out;
}

TEST(OnnxImport, ListsEveryUnsupportedOpWithItsNodes) {
  ModelBuilder b;
  b.input("x", {1, 4});
  b.node("Foo", {"x"}, {"a"}, "first_foo");
  b.node("Relu", {"a"}, {"b"});
  b.node("Bar", {"b"}, {"c"}, "the_bar");
  b.node("Foo", {"c"}, {"y"}, "second_foo");
  b.output("y");
  const std::string e = error_of(b);
  EXPECT_NE(e.find("unsupported ONNX ops"), std::string::npos) << e;
  EXPECT_NE(e.find("Bar (node the_bar)"), std::string::npos) << e;
  EXPECT_NE(e.find("Foo (nodes first_foo, second_foo)"), std::string::npos) << e;
}

TEST(OnnxImport, FoldsPyTorchShapeArithmeticWithASymbolicBatch) {
  // x.view(x.size(0), -1) as PyTorch exports it.
  ModelBuilder b;
  b.input("x", {1, 2, 3, 4}, "N");
  b.init("zero", ints({0}));
  b.init("minus1", ints({-1}));
  b.node("Shape", {"x"}, {"s"});
  auto* gather = b.node("Gather", {"s", "zero"}, {"n"});
  gather->add_attribute()->set_name("axis");
  gather->mutable_attribute(0)->set_type(::onnx::AttributeProto::INT);
  gather->mutable_attribute(0)->set_i(0);
  b.node("Concat", {"n", "minus1"}, {"shape"})->add_attribute()->set_name("axis");
  b.g->mutable_node(2)->mutable_attribute(0)->set_type(::onnx::AttributeProto::INT);
  b.g->mutable_node(2)->mutable_attribute(0)->set_i(0);
  b.node("Reshape", {"x", "shape"}, {"y"});
  b.output("y");
  Graph g = b.import();
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, OpKind::kReshape);
  EXPECT_EQ(g.inputs[0].shape[0], kDynamic);
  InferenceSession s(g);
  Tensor x(DType::kF32, {3, 2, 3, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>(i);
  const Tensor& y = s.run({{"x", x}})[0];
  EXPECT_EQ(y.shape(), (Shape{3, 24}));
  EXPECT_EQ(y.f32()[70], 70.0f);
}

TEST(OnnxImport, DanglingAndCyclicNamesAreErrors) {
  ModelBuilder dangling;
  dangling.input("x", {1, 4});
  dangling.node("Relu", {"nowhere"}, {"y"});
  dangling.output("y");
  EXPECT_NE(error_of(dangling).find("reads 'nowhere'"), std::string::npos) << error_of(dangling);

  ModelBuilder cycle;  // a -> b -> a
  cycle.input("x", {1, 4});
  cycle.node("Add", {"x", "b"}, {"a"});
  cycle.node("Relu", {"a"}, {"b"});
  cycle.output("b");
  EXPECT_NE(error_of(cycle).find("reads 'b'"), std::string::npos) << error_of(cycle);

  ModelBuilder never;
  never.input("x", {1, 4});
  never.node("Relu", {"x"}, {"y"});
  never.output("z");
  EXPECT_NE(error_of(never).find("'z' is never computed"), std::string::npos);
}

TEST(OnnxImport, CorruptFilesAreErrors) {
  ModelBuilder b;
  b.input("x", {1, 4});
  Tensor w(DType::kF32, {4, 4});
  b.init("w", w);
  b.node("MatMul", {"x", "w"}, {"y"});
  b.output("y");
  const std::string good = b.bytes();
  EXPECT_NO_THROW(import_onnx_bytes(good.data(), good.size(), "m"));
  // Truncation at every length either parses to a smaller valid model or fails with an Error.
  for (size_t n = 0; n < good.size(); ++n) {
    try {
      import_onnx_bytes(good.data(), n, "m");
    } catch (const Error&) {
    }
  }
  // An initializer whose dims promise far more data than it holds.
  ModelBuilder huge = b;
  huge.g->mutable_initializer(0)->clear_dims();
  huge.g->mutable_initializer(0)->add_dims(int64_t{1} << 40);
  huge.g->mutable_initializer(0)->add_dims(int64_t{1} << 20);
  EXPECT_NE(error_of(huge).find("initializer 'w'"), std::string::npos) << error_of(huge);
  ModelBuilder mismatch = b;
  mismatch.g->mutable_initializer(0)->mutable_raw_data()->resize(10);
  EXPECT_NE(error_of(mismatch).find("raw_data has 10 bytes"), std::string::npos);
  const std::string garbage = "\x12\xff\xff\xff\xff\x0f not protobuf";
  EXPECT_THROW(import_onnx_bytes(garbage.data(), garbage.size(), "m"), Error);
  EXPECT_THROW(import_onnx_file("/nonexistent/model.onnx"), Error);
}

TEST(OnnxImport, RejectsSymbolicInnerDimensions) {
  ModelBuilder b;
  b.input("x", {1, 4});
  b.g->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_param("T");
  b.node("Relu", {"x"}, {"y"});
  b.output("y");
  EXPECT_NE(error_of(b).find("symbolic dimension 1 ('T')"), std::string::npos) << error_of(b);
}

TEST(OnnxImport, GemmWithConstantWeightsBecomesATrainableLinear) {
  ModelBuilder b;
  b.input("x", {2, 3}, "N");
  Tensor w(DType::kF32, {3, 5}), c(DType::kF32, {5});  // transB = 0: B is [K, N]
  for (int i = 0; i < 15; ++i) w.f32()[i] = 0.1f * static_cast<float>(i);
  for (int i = 0; i < 5; ++i) c.f32()[i] = static_cast<float>(i);
  b.init("B", w);
  b.init("C", c);
  auto* n = b.node("Gemm", {"x", "B", "C"}, {"y"});
  auto* alpha = n->add_attribute();
  alpha->set_name("alpha");
  alpha->set_type(::onnx::AttributeProto::FLOAT);
  alpha->set_f(2.0f);
  b.output("y");
  Graph g = b.import();
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, OpKind::kLinear);
  EXPECT_EQ(g.num_params(), 20);
  InferenceSession s(g);
  Tensor x(DType::kF32, {1, 3});
  x.f32()[0] = 1;
  x.f32()[1] = 2;
  x.f32()[2] = 3;
  const Tensor& y = s.run({{"x", x}})[0];
  for (int j = 0; j < 5; ++j) {
    float want = static_cast<float>(j);
    for (int k = 0; k < 3; ++k) want += 2.0f * x.f32()[k] * w.f32()[k * 5 + j];
    EXPECT_NEAR(y.f32()[j], want, 1e-5) << j;
  }
}

}  // namespace
}  // namespace minnow::onnx
