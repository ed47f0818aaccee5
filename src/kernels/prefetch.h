// Software prefetch of a run of floats, one request per 64-byte line. The convolution and
// BatchNorm loops walk planes or runs that lie C planes apart in memory, a pattern the hardware
// prefetchers do not follow, and masked loads from memory not yet cached are slow: each loop asks
// for the data it reaches a few planes ahead (for writing too, so that stores do not wait for the
// line's read-for-ownership). How far ahead is each loop's own measurement.
#pragma once

#include <cstdint>

namespace minnow::kernels {

inline void prefetch_floats(const float* p, int64_t floats, bool for_write = false) {
  if (for_write) {
    for (int64_t i = 0; i < floats; i += 16) __builtin_prefetch(p + i, 1);
  } else {
    for (int64_t i = 0; i < floats; i += 16) __builtin_prefetch(p + i);
  }
}

}  // namespace minnow::kernels
