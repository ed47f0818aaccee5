// fold_batchnorm: which pairs fold (Conv2d/Linear whose only consumer is an eval-mode BN, with
// constant weights), that the folded graph computes the same outputs, and that the caller's
// weights are untouched.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/rng.h"
#include "graph_test_util.h"
#include "minnow/builder.h"
#include "minnow/zoo.h"
#include "passes/fold_batchnorm.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

using ::minnow::testing::count_op;
using ::minnow::testing::randomize_batchnorm;

Tensor random_input(Shape shape, uint64_t seed) {
  Rng rng(seed);
  Tensor t(DType::kF32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(-1.0f, 1.0f);
  return t;
}

// The graph as given against the folded graph (reference kernels, no session rewrites).
void expect_same_outputs(const Graph& g, const Shape& x_shape) {
  Graph folded = g;
  const int n = fold_batchnorm(folded);
  EXPECT_GT(n, 0);
  folded.validate();
  EXPECT_EQ(count_op(folded, OpKind::kBatchNorm), count_op(g, OpKind::kBatchNorm) - n);
  Tensor x = random_input(x_shape, 9);
  InferenceSession plain(g, KernelChoice::kReference, /*optimize=*/false);
  InferenceSession with_folded(folded, KernelChoice::kReference, /*optimize=*/false);
  const Tensor want = plain.run({{g.inputs[0].name, x}})[0].clone();
  const Tensor& got = with_folded.run({{g.inputs[0].name, x}})[0];
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < want.numel(); ++i) {
    EXPECT_NEAR(got.f32()[i], want.f32()[i], 1e-4 + 1e-4 * std::abs(want.f32()[i])) << i;
  }
}

TEST(FoldBatchNorm, ZooNetworksComputeTheSame) {
  for (const char* name : {"mobilenet_v2", "resnet8", "shufflenet_v2", "mobilenet_v3_small"}) {
    SCOPED_TRACE(name);
    zoo::ZooOptions zo;
    zo.input_shape = {1, 16, 16};
    Graph g = zoo::build(name, zo);
    randomize_batchnorm(g, 3);
    expect_same_outputs(g, {2, 1, 16, 16});
  }
}

TEST(FoldBatchNorm, LinearWithAndWithoutBiasAndUnfoldableCases) {
  GraphBuilder b("mixed", 5);
  std::string x = b.input("input", {kDynamic, 6});
  std::string h1 = b.batch_norm(b.linear(x, 5, /*bias=*/false, "fc1"), 1e-5, 0.1, "bn1");
  std::string h2 = b.batch_norm(b.linear(h1, 4, true, "fc2"), 1e-3, 0.1, "bn2");
  // fc3's output feeds its BN and an add: folding would change the add's input.
  std::string f3 = b.linear(h2, 4, true, "fc3");
  std::string h3 = b.op(OpKind::kAdd, {b.batch_norm(f3, 1e-5, 0.1, "bn3"), f3}, {}, "add");
  b.output(h3);
  Graph g = b.build();
  randomize_batchnorm(g, 4);
  const Tensor fc2_weight = g.initializers.at("fc2.weight").value.clone();
  Graph folded = g;
  EXPECT_EQ(fold_batchnorm(folded), 2);
  EXPECT_EQ(count_op(folded, OpKind::kBatchNorm), 1);  // bn3 stays
  // The caller's weights are unchanged (copies of a Graph share tensor storage).
  const Tensor& w = g.initializers.at("fc2.weight").value;
  for (int64_t i = 0; i < w.numel(); ++i) EXPECT_EQ(w.f32()[i], fc2_weight.f32()[i]);
  EXPECT_EQ(folded.initializers.count("bn1.running_mean"), 0u);  // unused parameters dropped
  expect_same_outputs(g, {3, 6});
}

TEST(FoldBatchNorm, TheSessionFolds) {
  zoo::ZooOptions zo;
  zo.input_shape = {1, 12, 12};
  Graph g = zoo::build("mobilenet_v2", zo);
  randomize_batchnorm(g, 6);
  Tensor x = random_input({2, 1, 12, 12}, 2);
  InferenceSession fast(g);  // folds internally
  InferenceSession ref(g, KernelChoice::kReference, /*optimize=*/false);
  const Tensor want = ref.run({{"input", x}})[0].clone();
  const Tensor& got = fast.run({{"input", x}})[0];
  for (int64_t i = 0; i < want.numel(); ++i) {
    EXPECT_NEAR(got.f32()[i], want.f32()[i], 1e-4 + 1e-4 * std::abs(want.f32()[i]));
  }
}

}  // namespace
}  // namespace minnow
