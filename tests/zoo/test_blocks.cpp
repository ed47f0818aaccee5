// Zoo building blocks checked against hand-computed results.
#include <gtest/gtest.h>

#include <cmath>

#include "minnow/builder.h"
#include "runtime/inference_session.h"
#include "zoo/blocks.h"

namespace minnow::zoo {
namespace {

TEST(ZooBlocks, MakeDivisibleMatchesTorchvision) {
  EXPECT_EQ(make_divisible(16), 16);
  EXPECT_EQ(make_divisible(3), 8);      // at least the divisor
  EXPECT_EQ(make_divisible(12), 16);    // 12 + 4 = 16
  EXPECT_EQ(make_divisible(11.9), 16);  // rounds to 8, which loses > 10%: bumped to 16
  EXPECT_EQ(make_divisible(36), 40);
  EXPECT_EQ(make_divisible(44), 48);
  EXPECT_EQ(make_divisible(43.9), 40);
  EXPECT_EQ(make_divisible(144 * 0.75), 112);  // 108 -> 112
}

// Channel c of group gi (c = gi * C/g + k) lands at k * g + gi.
TEST(ZooBlocks, ChannelShuffleInterleavesGroups) {
  for (int64_t groups : {2, 3}) {
    const int64_t c = 6, hw = 2;
    GraphBuilder b("shuffle", 0);
    std::string x = b.input("input", {kDynamic, c, hw, 1});
    b.output(channel_shuffle(b, x, groups, "shuffle"));
    Graph g = b.build();
    EXPECT_EQ(g.outputs[0].shape, (Shape{kDynamic, c, hw, 1}));
    InferenceSession s(std::move(g));
    Tensor in(DType::kF32, {2, c, hw, 1});
    for (int64_t i = 0; i < in.numel(); ++i) in.f32()[i] = static_cast<float>(i);
    const Tensor& out = s.run({{"input", in}})[0];
    for (int64_t n = 0; n < 2; ++n) {
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t gi = ch / (c / groups), k = ch % (c / groups);
        for (int64_t p = 0; p < hw; ++p) {
          EXPECT_EQ(out.f32()[(n * c + k * groups + gi) * hw + p], in.f32()[(n * c + ch) * hw + p])
              << "groups " << groups << " channel " << ch;
        }
      }
    }
  }
}

// x * hardsigmoid(fc2(relu(fc1(mean(x))))) computed by hand for one sample.
TEST(ZooBlocks, SqueezeExciteScalesEachChannel) {
  const int64_t c = 4, sq = 2, hw = 3;
  GraphBuilder b("se", 1);
  std::string x = b.input("input", {kDynamic, c, hw, hw});
  b.output(squeeze_excite(b, x, sq, "se"));
  Graph g = b.build();
  const float* w1 = g.initializers.at("se.fc1.weight").value.f32();
  const float* b1 = g.initializers.at("se.fc1.bias").value.f32();
  const float* w2 = g.initializers.at("se.fc2.weight").value.f32();
  const float* b2 = g.initializers.at("se.fc2.bias").value.f32();
  Tensor in(DType::kF32, {1, c, hw, hw});
  for (int64_t i = 0; i < in.numel(); ++i) in.f32()[i] = std::sin(0.7f * i) * 3;
  double mean[c], hidden[sq], gate[c];
  for (int64_t ch = 0; ch < c; ++ch) {
    mean[ch] = 0;
    for (int64_t p = 0; p < hw * hw; ++p) mean[ch] += in.f32()[ch * hw * hw + p] / (hw * hw);
  }
  for (int64_t j = 0; j < sq; ++j) {
    hidden[j] = b1[j];
    for (int64_t ch = 0; ch < c; ++ch) hidden[j] += w1[j * c + ch] * mean[ch];
    hidden[j] = std::max(hidden[j], 0.0);
  }
  for (int64_t ch = 0; ch < c; ++ch) {
    double v = b2[ch];
    for (int64_t j = 0; j < sq; ++j) v += w2[ch * sq + j] * hidden[j];
    gate[ch] = std::clamp(v / 6 + 0.5, 0.0, 1.0);
  }
  InferenceSession s(std::move(g));
  const Tensor& out = s.run({{"input", in}})[0];
  for (int64_t i = 0; i < in.numel(); ++i) {
    EXPECT_NEAR(out.f32()[i], in.f32()[i] * gate[i / (hw * hw)], 1e-5) << i;
  }
}

}  // namespace
}  // namespace minnow::zoo
