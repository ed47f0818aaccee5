#include "runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace minnow {

MemoryPlan plan_memory(const std::vector<PlannedValue>& given) {
  MemoryPlan plan;
  plan.offsets.assign(given.size(), 0);
  auto rounded = [](size_t b) { return (std::max<size_t>(b, 1) + 63) / 64 * 64; };
  // Aliases join their root's block: the block lives from the root's first step to the last
  // step of any member and is as large as the largest.
  std::vector<PlannedValue> values = given;
  std::vector<size_t> root(given.size());
  for (size_t v = 0; v < given.size(); ++v) {
    const int a = given[v].alias_of;
    root[v] = a >= 0 && static_cast<size_t>(a) < v ? root[static_cast<size_t>(a)] : v;
    plan.unshared_bytes += rounded(given[v].bytes);
    if (root[v] != v) {
      PlannedValue& r = values[root[v]];
      r.last = std::max(r.last, given[v].last);
      r.bytes = std::max(r.bytes, given[v].bytes);
    }
  }
  std::vector<size_t> order;
  for (size_t v = 0; v < values.size(); ++v) {
    if (root[v] == v) order.push_back(v);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return values[a].bytes > values[b].bytes; });
  std::vector<size_t> placed;  // indices already given an offset
  for (size_t v : order) {
    const PlannedValue& pv = values[v];
    const size_t size = rounded(pv.bytes);
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
  for (size_t v = 0; v < values.size(); ++v) plan.offsets[v] = plan.offsets[root[v]];
  return plan;
}

}  // namespace minnow
