#include "data/augment.h"

#include <algorithm>
#include <string>

#include "minnow/error.h"

namespace minnow::data {

AugmentParams draw_augment(const AugmentOptions& options, Rng& rng) {
  if (options.shift < 0) {
    throw Error("augmentation shift " + std::to_string(options.shift) + " is negative");
  }
  AugmentParams p;
  if (options.shift > 0) {
    const uint64_t span = 2 * static_cast<uint64_t>(options.shift) + 1;
    p.dy = static_cast<int>(rng.below(span)) - options.shift;
    p.dx = static_cast<int>(rng.below(span)) - options.shift;
  }
  if (options.hflip) p.flip = rng.below(2) == 1;
  return p;
}

void augment_normalize(const float* src, float* dst, int64_t channels, int64_t height,
                       int64_t width, const AugmentParams& p, const float* mean,
                       const float* inv_std) {
  // Output columns whose source column is inside the image: [x0, x1). Without flip the source
  // column is x - dx; with flip it is W-1-x-dx. Both are contiguous ranges, so the inner loop
  // has no per-pixel bounds test.
  const int64_t dx = p.dx, dy = p.dy;
  const int64_t x0 = p.flip ? std::max<int64_t>(0, -dx) : std::max<int64_t>(0, dx);
  const int64_t x1 = p.flip ? std::min(width, width - dx) : std::min(width, width + dx);
  for (int64_t c = 0; c < channels; ++c) {
    const float m = mean[c], s = inv_std[c];
    const float pad = (0.0f - m) * s;
    const float* plane = src + c * height * width;
    float* out = dst + c * height * width;
    for (int64_t y = 0; y < height; ++y, out += width) {
      const int64_t sy = y - dy;
      if (sy < 0 || sy >= height || x0 >= x1) {
        std::fill(out, out + width, pad);
        continue;
      }
      const float* row = plane + sy * width;
      std::fill(out, out + x0, pad);
      if (p.flip) {
        const int64_t base = width - 1 - dx;
        for (int64_t x = x0; x < x1; ++x) out[x] = (row[base - x] - m) * s;
      } else {
        for (int64_t x = x0; x < x1; ++x) out[x] = (row[x - dx] - m) * s;
      }
      std::fill(out + x1, out + width, pad);
    }
  }
}

}  // namespace minnow::data
