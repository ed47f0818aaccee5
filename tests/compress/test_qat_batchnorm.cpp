// BatchNorm folding simulated during QAT (compress/qat_batchnorm.h) and the freeze that ends
// it (compress/qat.h, freeze_bn_epoch): the rewritten block computes the same function as the
// float Conv2d -> BatchNorm pair in eval mode and in training mode (batch statistics, running
// statistics updated the same way), with the same gradients; QAT with a freeze epoch trains with
// batch statistics first, then folds with the running statistics and converts to int8.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "compress/qat.h"
#include "compress/qat_batchnorm.h"
#include "core/rng.h"
#include "graph_test_util.h"
#include "minnow/builder.h"
#include "minnow/error.h"
#include "runtime/inference_session.h"
#include "train/training_session.h"

namespace minnow::compress {
namespace {

using ::minnow::testing::count_op;
using ::minnow::testing::deep_copy;
using ::minnow::testing::randomize_batchnorm;

// conv (with bias) -> BN -> ReLU, depthwise conv (no bias) -> BN -> ReLU6, global pool, fc.
// BatchNorm parameters and running statistics are random, as after training.
Graph conv_bn_net(uint64_t seed) {
  GraphBuilder b("conv_bn", seed);
  std::string x = b.input("input", {kDynamic, 2, 6, 6});
  ConvOptions c1;
  c1.pad = 1;
  x = b.relu(b.batch_norm(b.conv2d(x, 4, 3, c1, "conv1"), 1e-5, 0.1, "bn1"));
  ConvOptions dw;
  dw.pad = 1;
  dw.groups = 4;
  dw.bias = false;
  x = b.activation(OpKind::kRelu6, b.batch_norm(b.conv2d(x, 4, 3, dw, "dw"), 1e-3, 0.1, "bn2"));
  x = b.flatten(b.global_avg_pool(x));
  b.output(b.linear(x, 3, true, "fc"));
  Graph g = b.build();
  randomize_batchnorm(g, seed + 1);
  return g;
}

Tensor random_tensor(Shape shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Rng rng(seed);
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(lo, hi);
  return t;
}

Tensor eval(const Graph& g, const Tensor& x) {
  InferenceSession s(g, KernelChoice::kReference, /*optimize=*/false);
  return s.run({{g.inputs[0].name, x}})[0].clone();
}

void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  for (int64_t i = 0; i < want.numel(); ++i) {
    EXPECT_NEAR(got.f32()[i], want.f32()[i], tol * (1 + std::fabs(want.f32()[i]))) << what << i;
  }
}

TEST(SimulateBatchNorm, RewritesOnlyTheRequestedPairsAndKeepsNames) {
  Graph g = conv_bn_net(1);
  const std::vector<SimulatedBatchNorm> sims = simulate_batchnorm_folding(g, {"conv1"});
  ASSERT_EQ(sims.size(), 1u);
  EXPECT_EQ(sims[0].conv, "conv1");
  EXPECT_EQ(sims[0].batchnorm, "bn1");
  EXPECT_EQ(count_op(g, OpKind::kBatchNorm), 2) << "BatchNorm stays, with batch statistics";
  const Node* conv = g.find_node("conv1");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->inputs[1], sims[0].folded_weight);
  EXPECT_TRUE(conv->inputs.size() < 3 || conv->inputs[2].empty()) << "the bias moves after /s";
  EXPECT_TRUE(g.initializers.count("conv1.weight")) << "the float weight is still what trains";
  // A Linear, a conv whose output has other readers, or a name not asked for: left alone.
  Graph h = conv_bn_net(1);
  EXPECT_TRUE(simulate_batchnorm_folding(h, {"fc", "nothing"}).empty());
  EXPECT_EQ(h.nodes.size(), conv_bn_net(1).nodes.size());
}

// Eval mode: the simulated block is the folded convolution, the same function as before.
TEST(SimulateBatchNorm, EvalModeComputesTheFloatModel) {
  const Graph g = conv_bn_net(2);
  Graph sim = deep_copy(g);
  EXPECT_EQ(simulate_batchnorm_folding(sim, {"conv1", "dw"}).size(), 2u);
  const Tensor x = random_tensor({3, 2, 6, 6}, 4);
  expect_close(eval(sim, x), eval(g, x), 1e-5, "eval ");
}

// Training mode: conv(x, w * s) / s is conv(x, w), so the loss, the running statistics after
// the step and every parameter gradient (gamma's path through s cancels) match the float graph.
TEST(SimulateBatchNorm, TrainingStepMatchesTheFloatModel) {
  const Graph g = deep_copy(conv_bn_net(3));
  Graph sim = deep_copy(g);
  simulate_batchnorm_folding(sim, {"conv1", "dw"});
  const Tensor x = random_tensor({5, 2, 6, 6}, 5);
  Tensor y(DType::kI64, {5});
  for (int64_t i = 0; i < 5; ++i) y.data<int64_t>()[i] = i % 3;
  SessionOptions so;
  so.kernels = KernelChoice::kReference;
  TrainingSession a(g, so), b(sim, so);
  Rng ra(7), rb(7);
  const float la = a.train_step(x, y, ra);
  const float lb = b.train_step(x, y, rb);
  EXPECT_NEAR(la, lb, 1e-5 * (1 + std::fabs(la)));
  std::map<std::string, const Tensor*> grads;
  for (const ParamRef& p : b.params()) grads[p.name] = &p.grad;
  int compared = 0;
  for (const ParamRef& p : a.params()) {
    ASSERT_TRUE(grads.count(p.name)) << p.name;
    expect_close(*grads.at(p.name), p.grad, 1e-4, "grad " + p.name + " ");
    ++compared;
  }
  EXPECT_GE(compared, 8);  // conv1 w/b, bn1 and bn2 gamma/beta, dw w, fc w/b
  for (const char* stat : {"bn1.running_mean", "bn1.running_var", "bn2.running_var"}) {
    expect_close(sim.initializers.at(stat).value, g.initializers.at(stat).value, 1e-5,
                 std::string(stat) + " ");
  }
}

// Two small learnable classes; a trained float model fine-tuned with QAT for 2 epochs, BatchNorm
// simulated in the first: the running statistics move in epoch 1, the result is the usual QDQ
// graph, accuracy holds, and the caller's float model is untouched.
TEST(QatFreezeBatchNorm, SimulatesThenFreezesAndConverts) {
  data::Dataset d;
  const int64_t n = 256;
  d.x = random_tensor({n, 2, 6, 6}, 11, 0.0f, 0.5f);
  d.y = Tensor(DType::kI64, {n});
  d.num_classes = 3;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t cls = i % 3;
    d.y.data<int64_t>()[i] = cls;
    float* img = d.x.f32() + i * 72 + (cls == 2 ? 36 : 0);
    for (int k = 0; k < 36; ++k) img[k] += cls == 0 ? 0.0f : 0.6f;
  }
  const data::Normalization norm{{0.0f, 0.0f}, {1.0f, 1.0f}};
  Graph g = conv_bn_net(4);
  TrainConfig tc;
  tc.epochs = 8;
  tc.batch = 16;
  tc.lr = 1e-2;
  train_model(g, d, norm, tc);
  const double float_acc = evaluate_model(g, d, norm).accuracy;
  ASSERT_GT(float_acc, 0.9);
  const Graph float_graph = deep_copy(g);
  const std::vector<float> var_before(g.initializers.at("bn1.running_var").value.f32(),
                                      g.initializers.at("bn1.running_var").value.f32() + 4);

  Graph qat = g;  // shares storage with g: QAT must not write into it
  QatOptions opts;
  opts.calibration.samples = 64;
  opts.freeze_bn_epoch = 1;
  const QatState state = insert_fake_quantize(qat, d, norm, opts);
  EXPECT_TRUE(state.simulated_batchnorm);
  EXPECT_EQ(count_op(qat, OpKind::kBatchNorm), 2);
  EXPECT_GT(count_op(qat, OpKind::kFakeQuantize), 4);

  TrainConfig ft = tc;
  ft.epochs = 2;
  ft.lr = 1e-3;
  ft.schedule.kind = "cosine";
  std::vector<int64_t> epochs_seen;
  std::vector<double> lrs;
  Graph trained_phase1;
  auto train = [&](Graph& graph, const TrainConfig& c) {
    TrainConfig cc = c;
    cc.on_epoch = [&](const EpochSummary& e) {
      epochs_seen.push_back(e.epoch);
      lrs.push_back(e.lr);
    };
    TrainResult r = train_model(graph, d, norm, cc);
    if (count_op(graph, OpKind::kBatchNorm) > 0) trained_phase1 = deep_copy(graph);
    return r;
  };
  TrainResult result;
  const QatState final_state = train_qat(qat, state, g, d, norm, opts, ft, train, &result);
  EXPECT_EQ(epochs_seen, (std::vector<int64_t>{1, 2})) << "one schedule over both phases";
  ASSERT_EQ(lrs.size(), 2u);
  EXPECT_LT(lrs[1], lrs[0]) << "the cosine schedule continues after the freeze";
  EXPECT_EQ(result.epochs_run, 2);
  EXPECT_FALSE(final_state.simulated_batchnorm);
  EXPECT_EQ(count_op(qat, OpKind::kBatchNorm), 0) << "frozen = folded";
  ASSERT_GT(trained_phase1.nodes.size(), 0u);
  const Tensor& var_after = trained_phase1.initializers.at("bn1.running_var").value;
  double moved = 0;
  for (int k = 0; k < 4; ++k) moved += std::fabs(var_after.f32()[k] - var_before[k]);
  EXPECT_GT(moved, 1e-4) << "running statistics move while BatchNorm is simulated";
  for (const auto& [name, init] : float_graph.initializers) {
    const Tensor& now = g.initializers.at(name).value;
    EXPECT_TRUE(std::equal(now.f32(), now.f32() + now.numel(), init.value.f32())) << name;
  }

  const QdqSummary summary = convert_qat(qat, final_state, opts);
  EXPECT_FALSE(summary.int8_nodes.empty());
  EXPECT_EQ(count_op(qat, OpKind::kFakeQuantize), 0);
  EXPECT_GT(count_op(qat, OpKind::kQuantizeLinear), 0);
  EXPECT_GT(evaluate_model(qat, d, norm).accuracy, float_acc - 0.05);
}

TEST(QatFreezeBatchNorm, NegativeFreezeEpochThrows) {
  Graph g = conv_bn_net(5);
  data::Dataset d;
  d.x = random_tensor({8, 2, 6, 6}, 1);
  d.y = Tensor(DType::kI64, {8});
  for (int64_t i = 0; i < 8; ++i) d.y.data<int64_t>()[i] = i % 3;
  d.num_classes = 3;
  QatOptions opts;
  opts.calibration.samples = 8;
  opts.freeze_bn_epoch = -1;
  EXPECT_THROW(insert_fake_quantize(g, d, data::Normalization{{0, 0}, {1, 1}}, opts), Error);
}

}  // namespace
}  // namespace minnow::compress
