// Zoo architectures: shapes for MNIST- and CIFAR-sized inputs, exact MobileNetV2 counts, the
// width multiplier, a short training run per model and errors for bad requests.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/rng.h"
#include "minnow/error.h"
#include "minnow/zoo.h"
#include "runtime/inference_session.h"
#include "train/optimizer.h"
#include "train/training_session.h"

namespace minnow {
namespace {

const std::vector<std::string> kCnns = {"mobilenet_v1", "mobilenet_v2",  "mobilenet_v3_small",
                                        "squeezenet",   "shufflenet_v2", "resnet8",
                                        "ds_cnn"};

zoo::ZooOptions options(Shape input, double width = 1.0) {
  zoo::ZooOptions o;
  o.input_shape = std::move(input);
  o.width = width;
  return o;
}

int64_t total_macs(const Graph& g) {
  int64_t macs = 0;
  for (const NodeStats& s : graph_stats(g)) macs += s.macs;
  return macs;
}

Tensor random_tensor(Shape shape, uint64_t seed) {
  Rng rng(seed);
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(-1.0f, 1.0f);
  return t;
}

TEST(Zoo, EveryEntryIsListedAndBuildsForMnistAndCifarShapes) {
  for (const std::string& name : kCnns) EXPECT_TRUE(zoo::has(name)) << name;
  for (const Shape& in : {Shape{1, 28, 28}, Shape{3, 32, 32}}) {
    for (const zoo::ZooEntry& e : zoo::entries()) {
      if (e.name.ends_with("_classifier")) continue;  // text models: tests/zoo/test_text_models
      SCOPED_TRACE(e.name + " " + shape_str(in));
      EXPECT_FALSE(e.description.empty());
      Graph g = zoo::build(e.name, options(in));
      ASSERT_EQ(g.inputs.size(), 1u);
      EXPECT_EQ(g.inputs[0].name, "input");
      Shape want_in = {kDynamic};
      want_in.insert(want_in.end(), in.begin(), in.end());
      EXPECT_EQ(g.inputs[0].shape, want_in);
      ASSERT_EQ(g.outputs.size(), 1u);
      EXPECT_EQ(g.outputs[0].name, "logits");
      EXPECT_EQ(g.outputs[0].shape, (Shape{kDynamic, 10}));
      EXPECT_EQ(g.infer_shapes(3).at("logits").shape, (Shape{3, 10}));
      EXPECT_GT(g.num_params(), 0);
    }
  }
}

class ZooModel : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooModel, ForwardPassGivesFiniteLogitsOfTheRightShape) {
  zoo::ZooOptions o = options({3, 32, 32});
  o.classes = 7;
  InferenceSession s(zoo::build(GetParam(), o));
  const std::vector<Tensor>& out = s.run({{"input", random_tensor({2, 3, 32, 32}, 1)}});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].shape(), (Shape{2, 7}));
  for (int64_t i = 0; i < out[0].numel(); ++i) ASSERT_TRUE(std::isfinite(out[0].f32()[i]));
}

// A few Adam steps on one fixed random batch must lower the (train-mode) loss: every op of
// the model has a working gradient and the initialization trains. Half width keeps it quick;
// the graph structure is the same.
TEST_P(ZooModel, ShortTrainingReducesTheLoss) {
  const Shape in = GetParam() == "resnet8" ? Shape{3, 32, 32} : Shape{1, 28, 28};
  zoo::ZooOptions o = options(in, 0.5);
  o.seed = 3;
  Graph g = zoo::build(GetParam(), o);
  const int64_t batch = 8;
  Shape xs_shape = {batch};
  xs_shape.insert(xs_shape.end(), in.begin(), in.end());
  Tensor xs = random_tensor(xs_shape, 5);
  Tensor ys(DType::kI64, {batch});
  for (int64_t i = 0; i < batch; ++i) ys.data<int64_t>()[i] = (i * 3) % 10;
  TrainingSession session(g, SessionOptions{});
  OptimizerOptions oo;
  oo.kind = "adam";
  auto opt = make_optimizer(oo, session.params());
  Rng rng(0);
  float first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    last = session.train_step(xs, ys, rng);
    ASSERT_TRUE(std::isfinite(last)) << "step " << step;
    if (step == 0) first = last;
    opt->step(session.params(), 2e-3);
  }
  EXPECT_LT(last, 0.7f * first) << "first " << first << " last " << last;
}

INSTANTIATE_TEST_SUITE_P(Cnns, ZooModel, ::testing::ValuesIn(kCnns));

// The layout pinned in the brief: stem 3x3/16/s1, (t,c,s) = (1,16,1) (6,24,2) (6,24,1)
// (6,32,2) (6,32,1) (6,64,1), head 1x1/128, fc 10; bias-free convs, BN scale+shift counted.
TEST(Zoo, MobileNetV2HasExactParamsAndMacsAt28x28) {
  Graph g = zoo::build("mobilenet_v2", options({1, 28, 28}));
  EXPECT_EQ(g.num_params(), 70250);
  EXPECT_EQ(total_macs(g), 6904400);
  // Running statistics are stored but not trainable: 2 per BN channel.
  int64_t bn_channels = 0, convs = 0, adds = 0;
  for (const Node& n : g.nodes) {
    if (n.op == OpKind::kBatchNorm) bn_channels += g.infer_shapes(1).at(n.outputs[0]).shape[1];
    if (n.op == OpKind::kConv2d) {
      ++convs;
      EXPECT_EQ(n.inputs.size(), 2u) << n.name << " has a bias";
    }
    if (n.op == OpKind::kAdd) ++adds;
  }
  EXPECT_EQ(g.num_params(false) - g.num_params(), 2 * bn_channels);
  EXPECT_EQ(convs, 1 + 2 + 5 * 3 + 1);  // stem, t=1 block, five expanding blocks, head
  EXPECT_EQ(adds, 3);                   // (1,16,1), (6,24,1), (6,32,1)
  EXPECT_EQ(g.infer_shapes(1).at("head.act").shape, (Shape{1, 128, 7, 7}));
}

TEST(Zoo, WidthScalesParamsAndMacs) {
  for (const std::string& name : kCnns) {
    SCOPED_TRACE(name);
    Graph narrow = zoo::build(name, options({3, 32, 32}, 0.5));
    Graph base = zoo::build(name, options({3, 32, 32}, 1.0));
    Graph wide = zoo::build(name, options({3, 32, 32}, 2.0));
    EXPECT_LT(narrow.num_params(), base.num_params());
    EXPECT_LT(base.num_params(), wide.num_params());
    EXPECT_LT(total_macs(narrow), total_macs(base));
    EXPECT_LT(total_macs(base), total_macs(wide));
  }
}

TEST(Zoo, DropoutOptionAddsOneDropoutBeforeTheClassifier) {
  for (const std::string& name : kCnns) {
    SCOPED_TRACE(name);
    auto dropouts = [](const Graph& g) {
      int count = 0;
      for (const Node& n : g.nodes) count += n.op == OpKind::kDropout;
      return count;
    };
    zoo::ZooOptions o = options({1, 28, 28});
    EXPECT_EQ(dropouts(zoo::build(name, o)), 0);
    o.dropout = 0.2;
    Graph g = zoo::build(name, o);
    EXPECT_EQ(dropouts(g), 1);
    EXPECT_EQ(g.num_params(), zoo::build(name, options({1, 28, 28})).num_params());
  }
}

TEST(Zoo, SameSeedSameWeightsOtherSeedOtherWeights) {
  zoo::ZooOptions a = options({1, 28, 28}), c = a;
  c.seed = 7;
  Graph g1 = zoo::build("shufflenet_v2", a), g2 = zoo::build("shufflenet_v2", a);
  Graph g3 = zoo::build("shufflenet_v2", c);
  const std::string w = "stage2.1.branch2.pw1.conv.weight";
  const Tensor& t1 = g1.initializers.at(w).value;
  EXPECT_EQ(t1.f32()[5], g2.initializers.at(w).value.f32()[5]);
  EXPECT_NE(t1.f32()[5], g3.initializers.at(w).value.f32()[5]);
}

TEST(Zoo, BadRequestsThrowErrors) {
  EXPECT_THROW(zoo::build("mobilenet_v9", options({1, 28, 28})), Error);
  try {
    zoo::build("mobilenet_v9", options({1, 28, 28}));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mobilenet_v2"), std::string::npos) << e.what();
  }
  for (const std::string& name : kCnns) {
    SCOPED_TRACE(name);
    EXPECT_THROW(zoo::build(name, options({1, 2, 2})), Error);
    EXPECT_THROW(zoo::build(name, options({1, 3})), Error);
    EXPECT_THROW(zoo::build(name, options({0, 32, 32})), Error);
    EXPECT_THROW(zoo::build(name, options({1, 28, 28}, 0.0)), Error);
    EXPECT_THROW(zoo::build(name, options({1, 28, 28}, -1.0)), Error);
    EXPECT_THROW(zoo::build(name, options({1, 28, 28}, std::nan(""))), Error);
    zoo::ZooOptions one_class = options({1, 28, 28});
    one_class.classes = 1;
    EXPECT_THROW(zoo::build(name, one_class), Error);
  }
  try {
    zoo::build("resnet8", options({3, 2, 2}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("resnet8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3,2,2]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minnow
