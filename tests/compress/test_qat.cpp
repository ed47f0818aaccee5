// Quantization-aware training (compress/qat.h): FakeQuantize placed where post-training
// quantization quantizes, conversion to a QDQ graph that computes what the trained fake-quant
// graph computed (learned scales honoured) and lowers to integer kernels, and on a small
// learnable task QAT keeping or improving the accuracy of post-training quantization.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "compress/qat.h"
#include "compress/quantize.h"
#include "core/rng.h"
#include "graph_test_util.h"
#include "minnow/error.h"
#include "minnow/zoo.h"
#include "passes/fold_constants.h"
#include "passes/lower_qdq.h"
#include "runtime/inference_session.h"
#include "synthetic_data.h"

namespace minnow::compress {
namespace {

using ::minnow::testing::count_op;
using ::minnow::testing::deep_copy;
using ::minnow::testing::random_images;

Graph zoo_model(const std::string& name, Shape sample, int64_t classes, uint64_t seed) {
  zoo::ZooOptions o;
  o.input_shape = std::move(sample);
  o.classes = classes;
  o.seed = seed;
  if (name == "mlp") o.hidden = {24};
  return zoo::build(name, o);
}

Tensor run(const Graph& g, const Tensor& x, KernelChoice k = KernelChoice::kReference,
           bool optimize = false) {
  InferenceSession s(g, k, optimize);
  return s.run({{g.inputs[0].name, x}})[0].clone();
}

class QatZoo : public ::testing::TestWithParam<const char*> {};

// After a few training steps that move weights and scales, the converted QDQ graph computes
// what the fake-quantized training graph computed, and the runtime lowers it to int8 kernels.
TEST_P(QatZoo, ConvertedGraphComputesTheTrainedFakeQuantGraph) {
  const std::string model = GetParam();
  Graph g = zoo_model(model, {1, 28, 28}, 10, 3);
  const data::Dataset train = random_images(64, {1, 28, 28}, 10, 5);
  const data::Dataset test = random_images(16, {1, 28, 28}, 10, 6);
  QatOptions opts;
  opts.calibration.samples = 64;
  const QatState state = insert_fake_quantize(g, train, data::Normalization{}, opts);
  EXPECT_FALSE(state.int8_nodes.empty());
  EXPECT_FALSE(state.weights.empty());
  EXPECT_EQ(count_op(g, OpKind::kBatchNorm), 0) << "BatchNorm is folded up front";
  EXPECT_EQ(count_op(g, OpKind::kFakeQuantize),
            static_cast<int>(state.activations.size() + state.weights.size()));
  std::map<std::string, std::vector<float>> initial_scales;
  for (const auto& p : state.activations) {
    const Tensor& s = g.initializers.at(p.scale).value;
    initial_scales[p.scale].assign(s.f32(), s.f32() + s.numel());
  }

  TrainConfig config;
  config.epochs = 1;
  config.batch = 16;
  config.lr = 1e-2;
  add_qat_hooks(state, config);
  train_model(g, train, data::Normalization{}, config);
  int moved = 0;
  for (const auto& p : state.activations) {
    moved += g.initializers.at(p.scale).value.f32()[0] != initial_scales.at(p.scale)[0];
  }
  EXPECT_GT(moved, 0) << "activation scales are learned";

  const Tensor trained = run(g, test.x);
  Graph converted = deep_copy(g);
  const QdqSummary summary = convert_qat(converted, state, opts);
  EXPECT_EQ(summary.int8_nodes, state.int8_nodes);
  EXPECT_EQ(count_op(converted, OpKind::kFakeQuantize), 0);
  EXPECT_GT(count_op(converted, OpKind::kQuantizeLinear), 0);
  const Tensor qdq = run(converted, test.x);
  ASSERT_EQ(qdq.shape(), trained.shape());
  double range = 0, worst = 0;
  for (int64_t i = 0; i < qdq.numel(); ++i) {
    range = std::max(range, std::fabs(double(trained.f32()[i])));
    worst = std::max(worst, std::fabs(double(qdq.f32()[i]) - double(trained.f32()[i])));
  }
  // Same grids; only the int32 bias rounding and united ranges of pass-through groups differ.
  EXPECT_LT(worst, 0.01 * range + 1e-5) << model << " worst " << worst << " range " << range;

  Graph lowered = converted;
  EXPECT_GT(lower_qdq(lowered), 0);
  fold_constants(lowered);
  EXPECT_GT(count_op(lowered, OpKind::kQLinearConv) + count_op(lowered, OpKind::kQLinearLinear), 0);
  const Tensor integer = run(converted, test.x, KernelChoice::kFast, true);
  double worst_int = 0;
  for (int64_t i = 0; i < qdq.numel(); ++i) {
    worst_int = std::max(worst_int, std::fabs(double(integer.f32()[i]) - double(qdq.f32()[i])));
  }
  EXPECT_LT(worst_int, 0.05 * range) << model;
}

INSTANTIATE_TEST_SUITE_P(Zoo, QatZoo, ::testing::Values("lenet5", "mobilenet_v2"),
                         [](const auto& info) { return std::string(info.param); });

// A float model trained on a noisy task; post-training quantization of a copy, and QAT of
// another copy for one epoch at a small learning rate: QAT keeps (or improves) PTQ's accuracy.
TEST(Qat, KeepsOrImprovesPostTrainingAccuracy) {
  const data::Dataset train = testing::lines_dataset(1200, 11, 0.6f, 0.5f),
                      test = testing::lines_dataset(600, 12, 0.6f, 0.5f);
  const data::Normalization norm{{0.0f}, {1.0f}};
  Graph g = zoo_model("mlp", {1, 8, 8}, 3, 7);
  TrainConfig tc;
  tc.epochs = 6;
  tc.batch = 32;
  tc.lr = 3e-3;
  train_model(g, train, norm, tc);
  const double float_acc = evaluate_model(g, test, norm).accuracy;
  ASSERT_GT(float_acc, 0.8);

  Graph ptq = deep_copy(g);
  QuantizeOptions qo;
  qo.calibration.samples = 256;
  quantize_post_training(ptq, train, norm, qo);
  const double ptq_acc = evaluate_model(ptq, test, norm).accuracy;

  Graph qat = deep_copy(g);
  QatOptions opts;
  opts.calibration.samples = 256;
  TrainConfig ft = tc;
  ft.epochs = 1;
  ft.lr = 3e-4;
  const QatResult r = quantize_aware_train(qat, train, norm, opts, ft);
  const double qat_acc = evaluate_model(qat, test, norm).accuracy;
  EXPECT_EQ(count_op(qat, OpKind::kFakeQuantize), 0);
  EXPECT_FALSE(r.summary.int8_nodes.empty());
  EXPECT_GE(qat_acc, ptq_acc - 1e-9) << "float " << float_acc << " ptq " << ptq_acc;
  EXPECT_GT(qat_acc, float_acc - 0.02) << "ptq " << ptq_acc;
}

TEST(Qat, BadInputThrows) {
  Graph g = zoo_model("lenet5", {1, 28, 28}, 10, 1);
  const data::Dataset d = random_images(8, {1, 28, 28}, 10, 2);
  QatOptions keep_all;
  keep_all.calibration.samples = 8;
  for (const Node& n : g.nodes) keep_all.qdq.keep_float.insert(n.name);
  Graph all_float = deep_copy(g);
  // Folding renames nothing that matters here: every compute node is kept in float.
  prepare_for_quantization(all_float);
  for (const Node& n : all_float.nodes) keep_all.qdq.keep_float.insert(n.name);
  EXPECT_THROW(insert_fake_quantize(all_float, d, data::Normalization{}, keep_all), Error);

  QatOptions opts;
  opts.calibration.samples = 8;
  Graph fq = deep_copy(g);
  const QatState state = insert_fake_quantize(fq, d, data::Normalization{}, opts);
  Graph plain = deep_copy(g);
  EXPECT_THROW(convert_qat(plain, state, opts), Error) << "a graph without the FakeQuantize nodes";
}

}  // namespace
}  // namespace minnow::compress
