// fuse_qlinear_residual: the residual QLinearAdds of quantized zoo networks move into the
// QLinearConv that feeds them (with the Add's output parameters and activation), the network's
// outputs stay the same bit for bit, and Adds whose convolution has an activation or whose
// convolution output has other readers stay.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "graph_test_util.h"
#include "lowered_zoo.h"
#include "minnow/error.h"
#include "passes/channels_last.h"
#include "passes/fuse_qlinear_residual.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

using testing::count_op;

Tensor run(const Graph& g, const Tensor& x, KernelChoice k) {
  InferenceSession s(g, k, /*optimize=*/false);
  return s.run({{g.inputs[0].name, x}})[0].clone();
}

int with_sum(const Graph& g) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(), [](const Node& n) {
    return n.op == OpKind::kQLinearConv && n.inputs.size() > 9 && !n.inputs[9].empty();
  }));
}

TEST(FuseQLinearResidual, ZooNetworks) {
  // mobilenet_v2: 3 residual Adds after linear projections; resnet8: 3, each with a ReLU that
  // lower_qdq already fused into the QLinearAdd. In resnet8's stacks 2 and 3 the shortcut
  // convolution runs after the block's second one, so the Add joins the shortcut.
  for (const char* name : {"mobilenet_v2", "resnet8"}) {
    SCOPED_TRACE(name);
    const Graph g = testing::lowered_model(name, 31);
    const int adds = count_op(g, OpKind::kQLinearAdd);
    EXPECT_EQ(adds, 3);
    Graph fused = g;
    EXPECT_EQ(fuse_qlinear_residual(fused), adds);
    EXPECT_EQ(count_op(fused, OpKind::kQLinearAdd), 0);
    EXPECT_EQ(with_sum(fused), adds);
    EXPECT_EQ(fused.outputs[0].name, g.outputs[0].name);
    if (std::string(name) == "resnet8") {
      // Stacks 2 and 3: the residual (the block's second convolution) is ready before the
      // shortcut convolution, which takes the Add.
      for (const Node& n : fused.nodes) {
        if (n.name == "stack2.shortcut" || n.name == "stack3.shortcut") {
          EXPECT_GT(n.inputs.size(), 9u) << n.name;
        }
      }
    }
    fused.validate();
    // Again: nothing left to fuse.
    Graph again = fused;
    EXPECT_EQ(fuse_qlinear_residual(again), 0);

    // The fused op computes what the two did, rounding included: the same outputs, bit for
    // bit, with either kernel choice (minnow's 1x1 kernel applies the Add in its epilogue;
    // oneDNN's convolutions are followed by QLinearAdd's loop).
    // Channels-last too, as the session runs them (where minnow's own kernels take over).
    Graph g_nhwc = g, fused_nhwc = fused;
    channels_last(g_nhwc);
    channels_last(fused_nhwc);
    const Tensor x = testing::random_images(5, {1, 28, 28}, 32);
    for (KernelChoice k : {KernelChoice::kReference, KernelChoice::kFast}) {
      for (bool nhwc : {false, true}) {
        SCOPED_TRACE(nhwc ? "channels-last" : "NCHW");
        const Tensor want = run(nhwc ? g_nhwc : g, x, k),
                     got = run(nhwc ? fused_nhwc : fused, x, k);
        ASSERT_EQ(got.shape(), want.shape());
        for (int64_t i = 0; i < want.numel(); ++i) {
          ASSERT_EQ(got.f32()[i], want.f32()[i]) << "element " << i;
        }
      }
    }
  }
}

TEST(FuseQLinearResidual, LeavesAddsItCannotFuse) {
  const Graph base = testing::lowered_model("resnet8", 41);
  // The first stack's Add: its second convolution plus the stem's output.
  auto first_add = [](Graph& g) -> Node& {
    for (Node& n : g.nodes) {
      if (n.op == OpKind::kQLinearAdd) return n;
    }
    throw Error("no QLinearAdd");
  };
  auto writer_of = [](Graph& g, const std::string& v) -> Node& {
    for (Node& n : g.nodes) {
      if (!n.outputs.empty() && n.outputs[0] == v) return n;
    }
    throw Error("no writer of " + v);
  };
  {  // A convolution with its own activation: its output is clamped before the Add.
    Graph g = base;
    Node& add = first_add(g);
    const std::string a = add.inputs[0], b = add.inputs[3];
    writer_of(g, a).attrs.set("activation", std::string("relu"));
    if (writer_of(g, b).op == OpKind::kQLinearConv) {
      writer_of(g, b).attrs.set("activation", std::string("relu"));
    }
    EXPECT_EQ(fuse_qlinear_residual(g), 2);
    EXPECT_EQ(count_op(g, OpKind::kQLinearAdd), 1);
  }
  {  // The convolution's output has a second reader (a graph output).
    Graph g = base;
    Node& add = first_add(g);
    const ValueInfo v{add.inputs[0], DType::kU8, {}};
    const std::string other = add.inputs[3];
    g.outputs.push_back(v);
    if (writer_of(g, other).op == OpKind::kQLinearConv)
      g.outputs.push_back({other, DType::kU8, {}});
    EXPECT_EQ(fuse_qlinear_residual(g), 2);
    EXPECT_EQ(count_op(g, OpKind::kQLinearAdd), 1);
  }
  {  // Operands swapped: the same sum, found from either side.
    Graph g = base;
    Node& add = first_add(g);
    for (int i = 0; i < 3; ++i) std::swap(add.inputs[i], add.inputs[3 + i]);
    EXPECT_EQ(fuse_qlinear_residual(g), 3);
  }
}

}  // namespace
}  // namespace minnow
