#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "minnow/builder.h"
#include "minnow/error.h"
#include "minnow/zoo.h"

namespace minnow {
namespace {

int64_t total_macs(const Graph& g) {
  int64_t macs = 0;
  for (const NodeStats& s : graph_stats(g)) macs += s.macs;
  return macs;
}

TEST(Zoo, Lenet5HasTheIssueParameterCountAndHandCountedMacs) {
  Graph g = zoo::build("lenet5", {});
  EXPECT_EQ(g.num_params(), 61706);
  // conv1 28*28*6*(1*5*5) + conv2 10*10*16*(6*5*5) + fc 400*120 + 120*84 + 84*10
  EXPECT_EQ(total_macs(g), 117600 + 240000 + 48000 + 10080 + 840);
  auto info = g.infer_shapes();
  EXPECT_EQ(info.at("logits").shape, (Shape{kDynamic, 10}));
  EXPECT_EQ(info.at("pool2").shape, (Shape{kDynamic, 16, 5, 5}));
}

TEST(Zoo, Lenet300HasTheIssueParameterCount) {
  Graph g = zoo::build("lenet300", {});
  EXPECT_EQ(g.num_params(), 266610);
  EXPECT_EQ(total_macs(g), 784 * 300 + 300 * 100 + 100 * 10);
}

TEST(Zoo, MlpFollowsHiddenSizesAndClasses) {
  zoo::ZooOptions o;
  o.input_shape = {5};
  o.hidden = {7, 3};
  o.classes = 4;
  Graph g = zoo::build("mlp", o);
  EXPECT_EQ(g.num_params(), (5 * 7 + 7) + (7 * 3 + 3) + (3 * 4 + 4));
}

TEST(Zoo, UnknownNameListsKnownOnes) {
  try {
    zoo::build("resnet9000", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lenet5"), std::string::npos);
  }
}

TEST(Zoo, SameSeedSameWeightsDifferentSeedDifferent) {
  zoo::ZooOptions a, b;
  b.seed = 1;
  Graph g1 = zoo::build("lenet5", a), g2 = zoo::build("lenet5", a), g3 = zoo::build("lenet5", b);
  const Tensor& w1 = g1.initializers.at("conv1.weight").value;
  const Tensor& w2 = g2.initializers.at("conv1.weight").value;
  const Tensor& w3 = g3.initializers.at("conv1.weight").value;
  EXPECT_EQ(0, std::memcmp(w1.raw(), w2.raw(), w1.nbytes()));
  EXPECT_NE(0, std::memcmp(w1.raw(), w3.raw(), w1.nbytes()));
  // PyTorch default init bound 1/sqrt(fan_in) = 1/5 for conv1.
  for (int64_t i = 0; i < w1.numel(); ++i) EXPECT_LE(std::abs(w1.f32()[i]), 0.2f);
}

TEST(GraphValidate, NamesTheNodeReadingAnUndefinedValue) {
  Graph g = zoo::build("lenet300", {});
  g.nodes[2].inputs[0] = "nowhere";
  try {
    g.validate();
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(g.nodes[2].name), std::string::npos) << msg;
    EXPECT_NE(msg.find("nowhere"), std::string::npos) << msg;
  }
}

TEST(GraphValidate, RejectsOutOfOrderNodesAndDuplicates) {
  Graph g = zoo::build("lenet300", {});
  Graph swapped = g;
  std::swap(swapped.nodes[1], swapped.nodes[2]);
  EXPECT_THROW(swapped.validate(), Error);
  Graph dup = g;
  dup.nodes[1].name = dup.nodes[0].name;
  EXPECT_THROW(dup.validate(), Error);
  Graph arity = g;
  arity.nodes[1].inputs.push_back(arity.nodes[1].inputs[0]);
  EXPECT_THROW(arity.validate(), Error);
}

TEST(GraphInfer, ShapeErrorNamesTheNode) {
  GraphBuilder b("bad", 0);
  std::string x = b.input("input", {kDynamic, 10});
  std::string h = b.linear(x, 4, true, "fc1");
  b.output(h);
  Graph g = b.build();
  g.initializers.at("fc1.weight").value = Tensor(DType::kF32, {4, 11});
  try {
    g.infer_shapes();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fc1"), std::string::npos) << e.what();
  }
}

TEST(GraphInfer, ConcreteBatchReplacesTheSymbolicDimension) {
  Graph g = zoo::build("lenet5", {});
  auto info = g.infer_shapes(3);
  EXPECT_EQ(info.at("conv1").shape, (Shape{3, 6, 28, 28}));
}

TEST(Tensor, AllocationIsAlignedZeroedAndGuarded) {
  Tensor t(DType::kF32, {3, 5});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.f32()[i], 0.0f);
  EXPECT_THROW(Tensor(DType::kF32, {-1, 3}), Error);
  EXPECT_THROW(Tensor(DType::kF32, {int64_t{1} << 40, int64_t{1} << 40}), Error);
  EXPECT_THROW(t.data<double>(), Error);
  EXPECT_THROW(t.reshaped({4, 4}), Error);
}

}  // namespace
}  // namespace minnow
