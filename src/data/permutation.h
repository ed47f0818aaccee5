// Seeded permutations: the one shuffle every data component uses, so an order depends only on
// the generator's seed, never on the standard library (std::shuffle is not portable).
#pragma once

#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "core/rng.h"

namespace minnow::data {

// Fills `order` with 0..n-1 and applies a Fisher-Yates shuffle driven by rng.below().
// Reuses the vector's capacity (the loader calls this every epoch).
inline void random_permutation(int64_t n, Rng& rng, std::vector<int64_t>& order) {
  order.resize(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) {
    auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
}

}  // namespace minnow::data
