// Small helpers shared by the op families: error messages that name the node, shape checks,
// and dtype dispatch for reference kernels (f32 and f64).
#pragma once

#include <string>
#include <vector>

#include "core/op_registry.h"
#include "minnow/error.h"

namespace minnow::ops {

[[noreturn]] inline void fail(const Node& n, const std::string& what) {
  throw Error("node '" + n.name + "' (" + op_def(n.op).name + "): " + what);
}

inline const ValueInfo& input(const Node& n, const InputInfos& in, size_t i) {
  if (i >= in.size() || !in[i]) fail(n, "missing input " + std::to_string(i));
  return *in[i];
}

inline void require_rank(const Node& n, const ValueInfo& v, int rank) {
  if (static_cast<int>(v.shape.size()) != rank) {
    fail(n, "input '" + v.name + "' has shape " + shape_str(v.shape) + ", expected rank " +
                std::to_string(rank));
  }
}

inline void require_float(const Node& n, const ValueInfo& v) {
  if (!dtype_is_float(v.dtype)) {
    fail(n, "input '" + v.name + "' has dtype " + std::string(dtype_name(v.dtype)) +
                ", expected f32 or f64");
  }
}

// Integer-list attribute `key` (or `fallback`) with exactly `size` values, each >= `min_value`
// (strides, pads, dilations, kernel shapes); errors name the node and the attribute.
// Attribute channels_last: 0 (default) for NCHW data, 1 for NHWC (set by passes/channels_last.h
// on the ops that support it); anything else is an error naming the node.
inline bool channels_last_attr(const Node& n) {
  const int64_t v = n.attrs.get_int("channels_last", 0);
  if (v != 0 && v != 1) {
    fail(n,
         "attribute 'channels_last' is " + std::to_string(v) + ", expected 0 (NCHW) or 1 (NHWC)");
  }
  return v == 1;
}

inline std::vector<int64_t> ints_attr(const Node& n, const char* key, std::vector<int64_t> fallback,
                                      size_t size, int64_t min_value) {
  std::vector<int64_t> v = n.attrs.get_ints(key, std::move(fallback));
  if (v.size() != size) {
    fail(n, std::string("attribute '") + key + "' has " + std::to_string(v.size()) +
                " values, expected " + std::to_string(size));
  }
  for (int64_t x : v) {
    if (x < min_value) {
      fail(n, std::string("attribute '") + key + "' has value " + std::to_string(x) +
                  ", expected >= " + std::to_string(min_value));
    }
  }
  return v;
}

// Product of dims, with the batch dimension counted as 1 when symbolic (per-sample MACs).
inline int64_t numel_per_sample(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= (d == kDynamic ? 1 : d);
  return n;
}

// Calls f.template operator()<T>() with T = float or double according to `t`.
template <class F>
decltype(auto) dispatch_float(DType t, F&& f) {
  if (t == DType::kF64) return f.template operator()<double>();
  if (t == DType::kF32) return f.template operator()<float>();
  throw Error("expected a float tensor, got " + std::string(dtype_name(t)));
}

}  // namespace minnow::ops
