// Static memory plan of an inference run: every intermediate value gets an offset in one arena,
// and values whose lifetimes do not overlap share bytes. Lifetime of a value: from the step that
// writes it to the last step that reads it (graph outputs live to the end). A value is never
// placed over one that the writing step still reads, so kernels need not support in-place —
// except where the caller asks for it: a value with `alias_of` set takes the bytes of that
// (earlier) value, whose last reader must be the step writing it (e.g. Reshape, Flatten: the
// output is the input's bytes under another shape, and the copy disappears).
//
// Placement is greedy by size (largest first, each at the lowest offset free for its whole
// lifetime), as in TFLite's arena planner: simple, and within a few percent of optimal on
// chain-like networks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace minnow {

struct PlannedValue {
  size_t bytes = 0;
  int first = 0;      // step that writes the value
  int last = 0;       // last step that reads it (>= first)
  int alias_of = -1;  // index of an earlier value whose bytes this one takes over, or -1
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // per value, 64-byte aligned
  size_t arena_bytes = 0;
  size_t unshared_bytes = 0;  // what one buffer per value would take (for reports)
};

MemoryPlan plan_memory(const std::vector<PlannedValue>& values);

}  // namespace minnow
