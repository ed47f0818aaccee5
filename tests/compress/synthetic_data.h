// Small synthetic datasets shared by the compression tests.
#pragma once

#include <cstdint>

#include "core/rng.h"
#include "data/dataset.h"

namespace minnow::testing {

// Three classes of 8x8 images: a bright row (class 0), column (1) or diagonal (2) of `signal`
// added to uniform noise in [0, noise).
inline data::Dataset lines_dataset(int64_t n, uint64_t seed, float noise = 0.2f,
                                   float signal = 0.8f) {
  data::Dataset d;
  d.x = Tensor(DType::kF32, {n, 1, 8, 8});
  d.y = Tensor(DType::kI64, {n});
  d.num_classes = 3;
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    float* img = d.x.f32() + i * 64;
    const int64_t cls = static_cast<int64_t>(rng.below(3));
    const int k = static_cast<int>(rng.below(8));
    for (int p = 0; p < 64; ++p) img[p] = noise * rng.uniform();
    for (int j = 0; j < 8; ++j) img[(cls == 0 ? k : j) * 8 + (cls == 1 ? k : j)] += signal;
    d.y.data<int64_t>()[i] = cls;
  }
  return d;
}

// `n` images of shape `sample`, uniform in [0, 1), labels cycling through `classes`.
inline data::Dataset random_images(int64_t n, Shape sample, int64_t classes, uint64_t seed) {
  Rng rng(seed);
  Shape s = {n};
  s.insert(s.end(), sample.begin(), sample.end());
  data::Dataset d;
  d.x = Tensor(DType::kF32, s);
  for (int64_t i = 0; i < d.x.numel(); ++i) d.x.f32()[i] = rng.uniform(0.0f, 1.0f);
  d.y = Tensor(DType::kI64, {n});
  for (int64_t i = 0; i < n; ++i) d.y.data<int64_t>()[i] = i % classes;
  d.num_classes = classes;
  return d;
}

}  // namespace minnow::testing
