#include "runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace minnow {

MemoryPlan plan_memory(const std::vector<PlannedValue>& values) {
  MemoryPlan plan;
  plan.offsets.assign(values.size(), 0);
  auto rounded = [](size_t b) { return (std::max<size_t>(b, 1) + 63) / 64 * 64; };
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return values[a].bytes > values[b].bytes; });
  std::vector<size_t> placed;  // indices already given an offset
  for (size_t v : order) {
    const PlannedValue& pv = values[v];
    const size_t size = rounded(pv.bytes);
    plan.unshared_bytes += size;
    // Blocks alive at the same time as v, by offset.
    std::vector<size_t> live;
    for (size_t u : placed) {
      if (values[u].first <= pv.last && pv.first <= values[u].last) live.push_back(u);
    }
    std::sort(live.begin(), live.end(),
              [&](size_t a, size_t b) { return plan.offsets[a] < plan.offsets[b]; });
    size_t offset = 0;
    for (size_t u : live) {
      if (plan.offsets[u] >= offset + size) break;  // v fits in the gap before u
      offset = std::max(offset, plan.offsets[u] + rounded(values[u].bytes));
    }
    plan.offsets[v] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
    placed.push_back(v);
  }
  return plan;
}

}  // namespace minnow
