// Post-training quantization end to end on zoo networks with random weights: calibration,
// QDQ insertion (passes/insert_qdq.h) and lowering to integer kernels (passes/lower_qdq.h).
// The oracle for the integer runtime is the QDQ graph itself run in float with reference
// kernels (fake quantization): the two differ only where float and integer arithmetic round
// differently, by a quantization step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

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

using ::minnow::testing::randomize_batchnorm;

int count_op(const Graph& g, OpKind kind) {
  return static_cast<int>(
      std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op == kind; }));
}

Graph zoo_model(const std::string& name, Shape sample, uint64_t seed) {
  zoo::ZooOptions o;
  o.input_shape = sample;
  o.classes = 10;
  o.seed = seed;
  Graph g = zoo::build(name, o);
  randomize_batchnorm(g, seed + 1, 0.5f, 0.5f);
  return g;
}

Tensor run(const Graph& g, const Tensor& x, KernelChoice k, bool optimize) {
  InferenceSession s(g, k, optimize);
  return s.run({{g.inputs[0].name, x}})[0].clone();
}

struct Case {
  const char* model;
  Shape sample;
};

class QuantizeZoo : public ::testing::TestWithParam<Case> {};

TEST_P(QuantizeZoo, IntegerRuntimeMatchesFakeQuantizedGraph) {
  const Case c = GetParam();
  Graph g = zoo_model(c.model, c.sample, 3);
  const data::Dataset calib = testing::random_images(64, c.sample, 10, 5);
  const data::Dataset test = testing::random_images(16, c.sample, 10, 6);
  const Tensor reference_float = run(g, test.x, KernelChoice::kReference, false);

  QuantizeOptions opts;
  opts.calibration.samples = 64;
  const QuantizeResult r = quantize_post_training(g, calib, data::Normalization{}, opts);
  EXPECT_FALSE(r.summary.int8_nodes.empty());
  EXPECT_EQ(r.calibration.samples, 64);

  const Tensor fake = run(g, test.x, KernelChoice::kReference, false);
  const Tensor integer = run(g, test.x, KernelChoice::kFast, true);
  const Tensor integer_ref = run(g, test.x, KernelChoice::kReference, true);
  ASSERT_EQ(fake.shape(), integer.shape());
  double range = 0, worst_fake = 0, worst_int = 0, worst_ref = 0;
  for (int64_t i = 0; i < fake.numel(); ++i) {
    range = std::max(range, std::fabs(double(reference_float.f32()[i])));
    worst_fake = std::max(worst_fake, std::fabs(double(fake.f32()[i] - reference_float.f32()[i])));
    worst_int = std::max(worst_int, std::fabs(double(integer.f32()[i] - fake.f32()[i])));
    worst_ref = std::max(worst_ref, std::fabs(double(integer_ref.f32()[i] - integer.f32()[i])));
  }
  // Integer kernels: the fake-quantized graph up to rounding differences of a step here and
  // there; fast and reference integer kernels agree to a step as well.
  EXPECT_LT(worst_int, 0.05 * range) << c.model;
  EXPECT_LT(worst_ref, 0.05 * range) << c.model;
  // And quantization itself stays close to the float model.
  EXPECT_LT(worst_fake, 0.15 * range) << c.model;
}

TEST_P(QuantizeZoo, EveryQuantizedLayerIsLowered) {
  const Case c = GetParam();
  Graph g = zoo_model(c.model, c.sample, 4);
  const data::Dataset calib = testing::random_images(32, c.sample, 10, 7);
  QuantizeOptions opts;
  opts.calibration.samples = 32;
  const QuantizeResult r = quantize_post_training(g, calib, data::Normalization{}, opts);
  int compute = 0;
  for (const Node& n : g.nodes) compute += is_quantizable_compute(n.op);
  EXPECT_EQ(static_cast<int>(r.summary.int8_nodes.size()), compute);
  Graph lowered = g;
  EXPECT_GT(lower_qdq(lowered), 0);
  fold_constants(lowered);
  lowered.validate();
  // No float compute op is left reading dequantized data, and no float weights remain.
  EXPECT_EQ(count_op(lowered, OpKind::kConv2d), 0) << c.model;
  EXPECT_EQ(count_op(lowered, OpKind::kLinear), 0) << c.model;
  EXPECT_EQ(count_op(lowered, OpKind::kAdd), 0) << c.model;
  EXPECT_GT(count_op(lowered, OpKind::kQLinearConv), 0) << c.model;
  // Only the graph input is quantized and only the logits leave the integer domain.
  EXPECT_EQ(count_op(lowered, OpKind::kQuantizeLinear), 1) << c.model;
  EXPECT_EQ(count_op(lowered, OpKind::kDequantizeLinear), 0) << c.model;
}

INSTANTIATE_TEST_SUITE_P(Zoo, QuantizeZoo,
                         ::testing::Values(Case{"lenet5", {1, 28, 28}},
                                           Case{"resnet8", {1, 28, 28}},
                                           Case{"mobilenet_v2", {1, 28, 28}}),
                         [](const auto& info) { return std::string(info.param.model); });

// Random token sequences of random lengths for the text models.
data::Dataset random_text(int64_t n, int64_t max_len, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  data::Dataset d;
  d.x = Tensor(DType::kI64, {n, max_len});
  d.y = Tensor(DType::kI64, {n});
  d.lengths = Tensor(DType::kI64, {n});
  d.num_classes = 2;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t len = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(max_len)));
    d.lengths.data<int64_t>()[i] = len;
    d.y.data<int64_t>()[i] = static_cast<int64_t>(rng.below(2));
    for (int64_t t = 0; t < max_len; ++t) {
      d.x.data<int64_t>()[i * max_len + t] =
          t < len ? 2 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(vocab - 2))) : 0;
    }
  }
  return d;
}

// LSTM and GRU layers get int8 gates: int8 weights with one scale per row in the file, and in
// the inference session the op's int8 form (inputs 6 and 7), whose logits stay close to the
// float model's (the activations are quantized row by row as they come, nothing calibrated).
// The embedding table is stored as int8 rows.
TEST(Quantize, RecurrentLayersGetInt8Gates) {
  for (const char* model : {"lstm_classifier", "gru_classifier"}) {
    SCOPED_TRACE(model);
    zoo::ZooOptions o;
    o.input_shape = {24};
    o.classes = 2;
    o.vocab_size = 50;
    o.seed = 5;
    Graph g = zoo::build(model, o);
    const OpKind op = std::string(model) == "lstm_classifier" ? OpKind::kLstm : OpKind::kGru;
    const data::Dataset calib = random_text(32, 24, 50, 11), test = random_text(16, 24, 50, 12);
    auto logits = [&](const Graph& graph, KernelChoice k, bool optimize) {
      InferenceSession s(graph, k, optimize);
      return s.run({{"input", test.x}, {"lengths", test.lengths}})[0].clone();
    };
    const Tensor before = logits(g, KernelChoice::kReference, false);
    QuantizeOptions opts;
    opts.calibration.samples = 32;
    const QuantizeResult r = quantize_post_training(g, calib, data::Normalization{}, opts);
    std::string recurrent;
    for (const Node& n : g.nodes) {
      if (n.op == op) recurrent = n.name;
    }
    ASSERT_FALSE(recurrent.empty());
    // The embedding table is stored as int8 rows too (weight-only).
    for (const Node& n : g.nodes) {
      if (n.op != OpKind::kEmbedding) continue;
      const Node* dq = g.producer(n.inputs[1]);
      ASSERT_NE(dq, nullptr);
      EXPECT_EQ(dq->op, OpKind::kDequantizeLinear);
      EXPECT_EQ(g.initializers.at(dq->inputs[0]).value.dtype(), DType::kI8);
    }
    EXPECT_NE(std::find(r.summary.int8_nodes.begin(), r.summary.int8_nodes.end(), recurrent),
              r.summary.int8_nodes.end());
    Graph lowered = g;
    EXPECT_GT(lower_qdq(lowered), 0);
    const Node* lowered_node = nullptr;
    for (const Node& n : lowered.nodes) {
      if (n.op == op) lowered_node = &n;
    }
    ASSERT_NE(lowered_node, nullptr);
    ASSERT_EQ(lowered_node->inputs.size(), 8u);
    EXPECT_EQ(lowered.initializers.at(lowered_node->inputs[1]).value.dtype(), DType::kI8);
    EXPECT_EQ(lowered.initializers.at(lowered_node->inputs[2]).value.dtype(), DType::kI8);
    const Tensor after = logits(g, KernelChoice::kFast, true);
    const Tensor after_ref = logits(g, KernelChoice::kReference, true);
    double range = 0, worst = 0, worst_ref = 0;
    for (int64_t i = 0; i < before.numel(); ++i) {
      range = std::max(range, std::fabs(double(before.f32()[i])));
      worst = std::max(worst, std::fabs(double(after.f32()[i] - before.f32()[i])));
      worst_ref = std::max(worst_ref, std::fabs(double(after_ref.f32()[i] - after.f32()[i])));
    }
    EXPECT_LT(worst, 0.1 * range);
    EXPECT_LT(worst_ref, 0.02 * range);
  }
}

TEST(Quantize, LayersKeptInFloatStayFloatAndSayWhy) {
  Graph g = zoo_model("lenet5", {1, 28, 28}, 8);
  const data::Dataset calib = testing::random_images(16, {1, 28, 28}, 10, 9);
  Graph prepared = g;
  prepare_for_quantization(prepared);
  const std::string first = [&] {
    for (const Node& n : prepared.nodes) {
      if (n.op == OpKind::kConv2d) return n.name;
    }
    return std::string();
  }();
  QuantizeOptions opts;
  opts.calibration.samples = 16;
  opts.qdq.keep_float = {first};
  const QuantizeResult r = quantize_post_training(g, calib, data::Normalization{}, opts);
  ASSERT_EQ(r.summary.float_nodes.size(), 1u);
  EXPECT_EQ(r.summary.float_nodes[0], first);
  EXPECT_EQ(r.summary.reasons.at(first), "kept in float by request");
  Graph lowered = g;
  lower_qdq(lowered);
  EXPECT_EQ(count_op(lowered, OpKind::kConv2d), 1);
  const data::Dataset test = testing::random_images(4, {1, 28, 28}, 10, 10);
  const Tensor a = run(g, test.x, KernelChoice::kReference, false);
  const Tensor b = run(g, test.x, KernelChoice::kFast, true);
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.f32()[i], b.f32()[i], 0.1);
}

TEST(Quantize, WeightOnlyStoresSmallIntegersAndComputesInFloat) {
  for (WeightOnly w : {WeightOnly::kInt8, WeightOnly::kInt4}) {
    Graph g = zoo_model("lenet5", {1, 28, 28}, 11);
    const data::Dataset test = testing::random_images(4, {1, 28, 28}, 10, 12);
    const Tensor before = run(g, test.x, KernelChoice::kReference, false);
    QuantizeOptions opts;
    opts.weight_only = w;
    const QuantizeResult r =
        quantize_post_training(g, data::Dataset{}, data::Normalization{}, opts);
    EXPECT_EQ(r.summary.int8_nodes.size(), 5u);  // lenet5: 2 conv + 3 linear
    const int limit = w == WeightOnly::kInt8 ? 127 : 7;
    for (const auto& [name, init] : g.initializers) {
      if (init.value.dtype() != DType::kI8) continue;
      for (int64_t i = 0; i < init.value.numel(); ++i) {
        ASSERT_LE(std::abs(int(init.value.data<int8_t>()[i])), limit) << name;
      }
    }
    // Deployed, the dequantized weights are folded once at load, not recomputed every run.
    Graph deployed = g;
    lower_qdq(deployed);
    fold_constants(deployed);
    EXPECT_EQ(count_op(deployed, OpKind::kDequantizeLinear), 0);
    const Tensor after = run(g, test.x, KernelChoice::kFast, true);
    double range = 0, worst = 0;
    for (int64_t i = 0; i < after.numel(); ++i) {
      range = std::max(range, std::fabs(double(before.f32()[i])));
      worst = std::max(worst, std::fabs(double(after.f32()[i] - before.f32()[i])));
    }
    EXPECT_LT(worst, (w == WeightOnly::kInt8 ? 0.02 : 0.3) * range);
  }
}

// Per-group int4: each run of G weights of an output has its own scale (a per-row
// DequantizeLinear of the weight viewed as [numel / G, G], reshaped back); every layer whose
// weights per output are a multiple of G is grouped, the others stay per channel. Groups follow
// the weights more closely than one scale per output: smaller weight error.
TEST(Quantize, WeightOnlyInt4PerGroup) {
  auto error = [](const Graph& quantized, const Graph& original, const Tensor& x) {
    const Tensor want = run(original, x, KernelChoice::kReference, false);
    const Tensor got = run(quantized, x, KernelChoice::kFast, true);
    double e = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      e += std::pow(double(got.f32()[i]) - double(want.f32()[i]), 2);
    }
    return e;
  };
  const Graph g = zoo_model("lenet5", {1, 28, 28}, 21);
  const data::Dataset test = testing::random_images(32, {1, 28, 28}, 10, 22);
  Graph per_channel = g, grouped = g;
  QuantizeOptions opts;
  opts.weight_only = WeightOnly::kInt4;
  quantize_post_training(per_channel, data::Dataset{}, data::Normalization{}, opts);
  opts.group_size = 8;
  quantize_post_training(grouped, data::Dataset{}, data::Normalization{}, opts);
  // lenet5: conv1 has 25 weights per output (not a multiple of 8: per channel), conv2 150
  // (per channel), fc1 400, fc2 120, logits 84 (per channel) -> 2 grouped.
  EXPECT_EQ(count_op(grouped, OpKind::kReshape) - count_op(per_channel, OpKind::kReshape), 2);
  for (const Node& n : grouped.nodes) {
    if (n.op != OpKind::kReshape || n.inputs[0].find("_dequantized") == std::string::npos) continue;
    const Node* dq = nullptr;
    for (const Node& m : grouped.nodes) {
      if (m.outputs[0] == n.inputs[0]) dq = &m;
    }
    ASSERT_NE(dq, nullptr);
    const Tensor& data = grouped.initializers.at(dq->inputs[0]).value;
    const Tensor& scale = grouped.initializers.at(dq->inputs[1]).value;
    EXPECT_EQ(data.dim(1), 8);
    EXPECT_EQ(scale.numel(), data.dim(0));
  }
  // The weights each Linear computes with, folded as at load.
  auto weight_error = [&](Graph q) {
    fold_constants(q);
    double e = 0;
    for (const Node& n : q.nodes) {
      if (n.op != OpKind::kLinear) continue;
      const Tensor& w = q.initializers.at(n.inputs[1]).value;
      const Node* orig = g.find_node(n.name);
      const Tensor& w0 = g.initializers.at(orig->inputs[1]).value;
      for (int64_t i = 0; i < w.numel(); ++i) e += std::pow(double(w.f32()[i] - w0.f32()[i]), 2);
    }
    return e;
  };
  EXPECT_LT(weight_error(grouped), 0.85 * weight_error(per_channel));
  EXPECT_LT(error(grouped, g, test.x), 2 * error(per_channel, g, test.x));
  opts.group_size = -1;
  Graph bad = g;
  EXPECT_THROW(quantize_post_training(bad, data::Dataset{}, data::Normalization{}, opts), Error);
  QuantizeOptions int8_groups;
  int8_groups.group_size = 16;
  EXPECT_THROW(
      quantize_post_training(bad, testing::random_images(4, {1, 28, 28}, 10, 1), {}, int8_groups),
      Error);
}

TEST(Quantize, CalibrationMemoryDoesNotGrowWithSamples) {
  Graph g = zoo_model("lenet5", {1, 28, 28}, 13);
  prepare_for_quantization(g);
  const data::Dataset data = testing::random_images(1000, {1, 28, 28}, 10, 14);
  CalibrationOptions few, many;
  few.samples = 100;
  many.samples = 1000;
  const Calibration a = calibrate(g, data, data::Normalization{}, few);
  const Calibration b = calibrate(g, data, data::Normalization{}, many);
  EXPECT_EQ(a.samples, 100);
  EXPECT_EQ(b.samples, 1000);
  EXPECT_EQ(a.observer_bytes, b.observer_bytes);
  EXPECT_EQ(a.ranges.size(), b.ranges.size());
}

TEST(Quantize, BadRequestsFailClearly) {
  Graph g = zoo_model("lenet5", {1, 28, 28}, 15);
  QuantizeOptions opts;
  opts.calibration.samples = 0;
  EXPECT_THROW(quantize_post_training(g, testing::random_images(4, {1, 28, 28}, 10, 1), {}, opts),
               Error);
  EXPECT_THROW(weight_only_from_name("int3"), Error);
  EXPECT_THROW(calibration_method_from_name("kl"), Error);
}

}  // namespace
}  // namespace minnow::compress
