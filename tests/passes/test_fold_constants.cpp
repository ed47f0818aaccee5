// fold_constants: nodes with only constant inputs become initializers (chains too), the rest of
// the graph and its outputs are unchanged, graph outputs are never folded away.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/rng.h"
#include "minnow/builder.h"
#include "passes/fold_constants.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

Tensor random(Shape s, uint64_t seed) {
  Rng rng(seed);
  Tensor t(DType::kF32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(-1, 1);
  return t;
}

TEST(FoldConstants, ConstantChainsBecomeInitializers) {
  GraphBuilder b("g", 1);
  std::string x = b.input("input", {kDynamic, 4});
  b.parameter("w0", random({4, 3}, 1), false);
  b.parameter("c1", random({3}, 2), false);
  b.parameter("c2", random({3}, 3), false);
  Attrs perm;
  perm.set("perm", std::vector<int64_t>{1, 0});
  std::string wt = b.op(OpKind::kTranspose, {"w0"}, perm, "transpose_w");  // [3, 4]
  std::string y = b.op(OpKind::kLinear, {x, wt}, {}, "fc");
  std::string c = b.op(OpKind::kAdd, {"c1", "c2"}, {}, "const_sum");
  std::string s = b.op(OpKind::kRelu, {c}, {}, "const_relu");  // a chain of two constant nodes
  b.output(b.op(OpKind::kMul, {y, s}, {}, "scale"));
  b.output(b.op(OpKind::kSigmoid, {"c1"}, {}, "const_output"));  // a graph output: stays a node
  Graph g = b.build();
  Graph f = g;
  EXPECT_EQ(fold_constants(f), 3);  // transpose_w, const_sum, const_relu
  f.validate();
  for (const Node& n : f.nodes) {
    EXPECT_TRUE(n.name == "fc" || n.name == "scale" || n.name == "const_output") << n.name;
  }
  EXPECT_EQ(f.initializers.count("c2"), 0u);  // only folded nodes read it
  EXPECT_EQ(f.initializers.count("c1"), 1u);  // const_output still reads it
  Tensor xs = random({5, 4}, 9);
  InferenceSession plain(g, KernelChoice::kReference, /*optimize=*/false);
  InferenceSession folded(f, KernelChoice::kReference, /*optimize=*/false);
  for (size_t o = 0; o < 2; ++o) {
    const Tensor want = plain.run({{"input", xs}})[o].clone();
    const Tensor& got = folded.run({{"input", xs}})[o];
    ASSERT_EQ(got.shape(), want.shape());
    for (int64_t i = 0; i < want.numel(); ++i) EXPECT_EQ(got.f32()[i], want.f32()[i]);
  }
  EXPECT_EQ(fold_constants(f), 0);
}

}  // namespace
}  // namespace minnow
