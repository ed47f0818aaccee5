// Per-channel normalization statistics: the loader maps every value v of channel c to
// (v - mean[c]) / std[c] as it copies samples into a batch.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace minnow::data {

struct Normalization {
  std::vector<float> mean, std;  // empty: identity
};

// Channels of a sample shape: dim 0 for [C, H, W] (or any rank >= 2, e.g. [C, L]); a flat
// feature vector [F] is one channel.
int64_t num_channels(const Shape& sample_shape);

// Mean and population standard deviation of each channel over all samples of d (f32 x).
// A constant channel gets std 1 so that normalizing it cannot divide by zero. The result does
// not depend on the thread count (fixed-size partial sums, added in a fixed order).
// Throws minnow::Error for an empty dataset or non-f32 x.
Normalization compute_normalization(const Dataset& d);

}  // namespace minnow::data
