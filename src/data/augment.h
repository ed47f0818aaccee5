// Image augmentation: random shift (a crop of the zero-padded image) and horizontal flip,
// fused with per-channel normalization so a sample is read and written exactly once.
#pragma once

#include <cstdint>

#include "core/rng.h"

namespace minnow::data {

struct AugmentOptions {
  int shift = 0;       // random shift / crop with zero padding of up to `shift` pixels each way
  bool hflip = false;  // random horizontal flip with p = 0.5
  bool any() const { return shift > 0 || hflip; }
};

// One sample's draw: out(y, x) = in(y - dy, fx - dx) with fx = flip ? W-1-x : x, and 0 where
// that falls outside the image (padding is 0 before normalization, like padding a raw image).
struct AugmentParams {
  int dy = 0, dx = 0;
  bool flip = false;
};

// Draws dy, dx uniformly from [-shift, shift] (in that order, only when shift > 0), then flip
// (only when hflip). Throws minnow::Error for a negative shift.
AugmentParams draw_augment(const AugmentOptions& options, Rng& rng);

// Writes the augmented, normalized image: dst[c][y][x] = (v - mean[c]) * inv_std[c] where v is
// the source value selected by `p` (or 0 outside the image). src and dst are [C, H, W] and must
// not overlap.
void augment_normalize(const float* src, float* dst, int64_t channels, int64_t height,
                       int64_t width, const AugmentParams& p, const float* mean,
                       const float* inv_std);

}  // namespace minnow::data
