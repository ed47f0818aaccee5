// simplify_for_inference: Dropout bypassed (unless it is a graph output), dead nodes and unread
// initializers dropped, outputs unchanged.
#include <gtest/gtest.h>

#include "minnow/builder.h"
#include "passes/simplify_for_inference.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

TEST(SimplifyForInference, BypassesDropoutAndDropsDeadNodes) {
  GraphBuilder b("g", 2);
  std::string x = b.input("input", {kDynamic, 5});
  std::string h = b.dropout(b.relu(b.linear(x, 6, true, "fc1")), 0.5, "drop1");
  b.linear(h, 7, true, "unused_head");  // reaches no output
  std::string y = b.linear(h, 3, true, "fc2");
  b.output(y);
  b.output(b.dropout(y, 0.2, "drop_out"));  // a Dropout that is a graph output stays
  Graph g = b.build();
  Graph s = g;
  EXPECT_EQ(simplify_for_inference(s), 2);  // drop1 and unused_head
  s.validate();
  for (const Node& n : s.nodes) {
    EXPECT_NE(n.name, "drop1");
    EXPECT_NE(n.name, "unused_head");
  }
  EXPECT_EQ(s.initializers.count("unused_head.weight"), 0u);
  EXPECT_EQ(s.initializers.count("fc1.weight"), 1u);
  Tensor xs(DType::kF32, {4, 5});
  for (int64_t i = 0; i < xs.numel(); ++i) xs.f32()[i] = 0.1f * static_cast<float>(i % 9) - 0.3f;
  InferenceSession plain(g, KernelChoice::kReference, /*optimize=*/false);
  InferenceSession simple(s, KernelChoice::kReference, /*optimize=*/false);
  const std::vector<Tensor> want = {plain.run({{"input", xs}})[0].clone(),
                                    plain.run({{"input", xs}})[1].clone()};
  const std::vector<Tensor>& got = simple.run({{"input", xs}});
  ASSERT_EQ(got.size(), 2u);
  for (size_t o = 0; o < 2; ++o) {
    for (int64_t i = 0; i < want[o].numel(); ++i) EXPECT_EQ(got[o].f32()[i], want[o].f32()[i]);
  }
  EXPECT_EQ(simplify_for_inference(s), 0);  // nothing left to do
}

}  // namespace
}  // namespace minnow
