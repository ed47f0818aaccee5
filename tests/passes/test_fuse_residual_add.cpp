// fuse_residual_add: residual Adds (and the ReLU after them) of zoo networks move into the
// convolution that feeds them, the graph computes the same, and Adds whose other input is not
// ready before the convolution, or whose convolution output has other readers, stay.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "graph_test_util.h"
#include "minnow/builder.h"
#include "minnow/zoo.h"
#include "passes/fold_batchnorm.h"
#include "passes/fuse_residual_add.h"
#include "passes/simplify_for_inference.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

using testing::count_op;

Tensor random_input(Shape shape, uint64_t seed) {
  Rng rng(seed);
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(-1.0f, 1.0f);
  return t;
}

Tensor run(const Graph& g, const Tensor& x, KernelChoice k) {
  InferenceSession s(g, k, /*optimize=*/false);
  return s.run({{g.inputs[0].name, x}})[0].clone();
}

void expect_same(const Graph& a, const Graph& b, const Shape& x_shape) {
  const Tensor x = random_input(x_shape, 5);
  for (KernelChoice k : {KernelChoice::kReference, KernelChoice::kFast}) {
    const Tensor want = run(a, x, KernelChoice::kReference), got = run(b, x, k);
    ASSERT_EQ(got.shape(), want.shape());
    for (int64_t i = 0; i < want.numel(); ++i) {
      EXPECT_NEAR(got.f32()[i], want.f32()[i], 1e-4 * (1 + std::fabs(want.f32()[i]))) << i;
    }
  }
}

TEST(FuseResidualAdd, ZooNetworks) {
  // mobilenet_v2: 3 residual Adds (no ReLU after them); resnet8: 3 Adds, each followed by ReLU.
  for (const auto& [name, adds, relus] :
       {std::tuple{"mobilenet_v2", 3, 0}, std::tuple{"resnet8", 3, 3}}) {
    SCOPED_TRACE(name);
    zoo::ZooOptions o;
    o.input_shape = {1, 28, 28};
    Graph g = zoo::build(name, o);
    testing::randomize_batchnorm(g, 2);
    simplify_for_inference(g);
    fold_batchnorm(g);
    Graph fused = g;
    EXPECT_EQ(fuse_residual_add(fused), adds);
    EXPECT_EQ(count_op(fused, OpKind::kAdd), count_op(g, OpKind::kAdd) - adds);
    EXPECT_EQ(count_op(fused, OpKind::kRelu), count_op(g, OpKind::kRelu) - relus);
    int with_sum = 0;
    for (const Node& n : fused.nodes) with_sum += n.op == OpKind::kConv2d && n.inputs.size() == 4;
    EXPECT_EQ(with_sum, adds);
    expect_same(g, fused, {2, 1, 28, 28});
    EXPECT_EQ(fuse_residual_add(fused), 0) << "nothing left to fuse";
  }
}

TEST(FuseResidualAdd, LeavesWhatCannotFuse) {
  GraphBuilder b("cases", 3);
  const std::string x = b.input("x", {kDynamic, 4, 6, 6});
  ConvOptions same;
  same.pad = 1;
  // The conv output is also read by the second Add: the first Add cannot absorb it.
  const std::string c1 = b.conv2d(x, 4, 3, same, "c1");
  const std::string a1 = b.op(OpKind::kAdd, {c1, x}, {}, "a1");
  const std::string a2 = b.op(OpKind::kAdd, {a1, c1}, {}, "a2");
  // The other input is computed after the conv: not ready when the conv runs.
  const std::string c2 = b.conv2d(a2, 4, 3, same, "c2");
  const std::string r = b.relu(a2);
  const std::string a3 = b.op(OpKind::kAdd, {c2, r}, {}, "a3");
  b.output(a3);
  Graph g = b.build();
  Graph fused = g;
  EXPECT_EQ(fuse_residual_add(fused), 0);
  EXPECT_EQ(fused.nodes.size(), g.nodes.size());
}

}  // namespace
}  // namespace minnow
