// Dataset: an in-memory labelled dataset (images, feature vectors or token sequences with class
// labels).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "minnow/tensor.h"

namespace minnow::data {

struct Dataset {
  Tensor x;        // f32 [N, C, H, W] for images (scaled to [0,1]) or [N, F] for features;
                   // i64 [N, L] token ids for text (padded with Tokenizer::kPad after `lengths`)
  Tensor y;        // i64 [N]
  Tensor lengths;  // i64 [N] tokens per text sample (<= L); undefined for non-sequence data
  int64_t num_classes = 0;
  std::vector<std::string> class_names;  // may be empty

  int64_t size() const;
  Shape sample_shape() const;  // x shape without dim 0
  // Copies the samples at `indices` (in that order; repeats allowed), with their lengths.
  // Throws minnow::Error for an index outside [0, size()).
  Dataset subset(const std::vector<int64_t>& indices) const;
  // Throws minnow::Error (prefixed with `what`) unless x has rank >= 2 (any dtype), y is i64
  // [N] with the same N, and every label lies in [0, num_classes); when lengths is defined, x
  // must be i64 [N, L] and lengths i64 [N] with every length in [0, L].
  void validate(const std::string& what) const;
};

// Splits off the LAST `fraction` of a permutation drawn from Rng(seed) as validation (rounded to
// the nearest sample); returns {train, validation}. Throws minnow::Error unless fraction is in
// [0, 1).
std::pair<Dataset, Dataset> split_validation(const Dataset& d, double fraction, uint64_t seed);

// The index sets split_validation uses: {first n - k, last k} of a permutation of 0..n-1 drawn
// from Rng(seed), k = round(fraction * n) capped at n - 1. Sources split raw samples (e.g. texts
// before tokenizing) with it. Throws minnow::Error unless fraction is in [0, 1).
std::pair<std::vector<int64_t>, std::vector<int64_t>> split_indices(int64_t n, double fraction,
                                                                    uint64_t seed);

}  // namespace minnow::data
