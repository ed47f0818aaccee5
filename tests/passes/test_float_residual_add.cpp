// Mixed precision around residual connections: a quantized network whose residual Adds are kept
// in float (as `minnow quantize` does when float is faster there, or with --keep-float) runs its
// convolutions on integer kernels and still adds the residual. The inference session's passes
// once fused such an Add into the float convolution first and then lowered that convolution to
// QLinearConv without its sum, which silently dropped every residual (resnet8 fell from 0.85 to
// 0.20-0.67 test accuracy).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "compress/quantize.h"
#include "graph_test_util.h"
#include "lowered_zoo.h"
#include "minnow/zoo.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

Graph quantized_keeping_float(const std::string& name, const std::vector<std::string>& keep) {
  zoo::ZooOptions o;
  o.input_shape = {1, 28, 28};
  o.classes = 10;
  o.seed = 41;
  Graph g = zoo::build(name, o);
  testing::randomize_batchnorm(g, 42, 0.5f, 0.5f);
  data::Dataset calib;
  calib.x = testing::random_images(32, {1, 28, 28}, 43);
  calib.y = Tensor(DType::kI64, {32});
  calib.num_classes = 10;
  compress::QuantizeOptions opts;
  opts.calibration.samples = 32;
  opts.qdq.keep_float.insert(keep.begin(), keep.end());
  compress::quantize_post_training(g, calib, data::Normalization{}, opts);
  return g;
}

// The optimized session (integer kernels, fused ops, channels-last) against the QDQ graph run
// as written: quantize/dequantize simulated in float, every Add where the graph has it.
void expect_optimized_matches_graph(const Graph& g) {
  const Tensor x = testing::random_images(8, {1, 28, 28}, 44);
  InferenceSession plain(g, KernelChoice::kReference, /*optimize=*/false);
  const Tensor want = plain.run({{g.inputs[0].name, x}})[0].clone();
  float range = 0;
  for (int64_t i = 0; i < want.numel(); ++i) range = std::max(range, std::fabs(want.f32()[i]));
  for (KernelChoice k : {KernelChoice::kReference, KernelChoice::kFast}) {
    InferenceSession optimized(g, k, /*optimize=*/true);
    const Tensor got = optimized.run({{g.inputs[0].name, x}})[0];
    ASSERT_EQ(got.shape(), want.shape());
    // Integer kernels round where the float simulation does not always: a few output steps
    // apart at most. A dropped residual moves the logits by a sizable part of their range.
    for (int64_t i = 0; i < want.numel(); ++i) {
      EXPECT_NEAR(got.f32()[i], want.f32()[i], 0.05f * range) << "element " << i;
    }
  }
}

TEST(FloatResidualAdd, QuantizedConvolutionsKeepTheirResidual) {
  for (const auto& [name, adds] :
       {std::pair<std::string, std::vector<std::string>>{"resnet8", {"stack1.add", "stack3.add"}},
        {"mobilenet_v2", {"block1.add", "block3.add", "block5.add"}}}) {
    SCOPED_TRACE(name);
    expect_optimized_matches_graph(quantized_keeping_float(name, adds));
  }
}

TEST(FloatResidualAdd, AllQuantizedStillMatches) {
  for (const char* name : {"resnet8", "mobilenet_v2"}) {
    SCOPED_TRACE(name);
    expect_optimized_matches_graph(quantized_keeping_float(name, {}));
  }
}

}  // namespace
}  // namespace minnow
