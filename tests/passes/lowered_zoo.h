// Quantized zoo networks for pass tests: random weights and trained-looking BatchNorm
// statistics, calibrated on random images and lowered to integer ops as the inference session
// does it (without the passes that follow lower_qdq there).
#pragma once

#include <string>

#include "compress/quantize.h"
#include "core/rng.h"
#include "graph_test_util.h"
#include "minnow/zoo.h"
#include "passes/fold_batchnorm.h"
#include "passes/fold_constants.h"
#include "passes/fuse_activation.h"
#include "passes/lower_qdq.h"
#include "passes/simplify_for_inference.h"

namespace minnow::testing {

inline Tensor random_images(int64_t n, const Shape& sample, uint64_t seed) {
  Rng rng(seed);
  Shape s = {n};
  s.insert(s.end(), sample.begin(), sample.end());
  Tensor x(DType::kF32, s);
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform(0.0f, 1.0f);
  return x;
}

// A zoo network quantized post-training, then lowered.
inline Graph lowered_model(const std::string& name, uint64_t seed) {
  zoo::ZooOptions o;
  o.input_shape = {1, 28, 28};
  o.classes = 10;
  o.seed = seed;
  Graph g = zoo::build(name, o);
  testing::randomize_batchnorm(g, seed + 1, 0.5f, 0.5f);  // trained-looking statistics
  data::Dataset calib;
  calib.x = random_images(32, {1, 28, 28}, seed + 2);
  calib.y = Tensor(DType::kI64, {32});
  calib.num_classes = 10;
  compress::QuantizeOptions opts;
  opts.calibration.samples = 32;
  compress::quantize_post_training(g, calib, data::Normalization{}, opts);
  simplify_for_inference(g);
  fold_constants(g, /*keep_dequantize=*/true);
  fold_batchnorm(g);
  fuse_activation(g, {OpKind::kConv2d, OpKind::kLinear, OpKind::kBatchNorm});
  EXPECT_GT(lower_qdq(g), 0);
  fold_constants(g);
  return g;
}

}  // namespace minnow::testing
