// Dispatch over every dtype (op_util.h's dispatch_float covers the float pair only) and value
// conversion between dtypes. Used by the ops that move or convert values of any type: Cast, and
// the fill value of Pad.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "minnow/dtype.h"
#include "minnow/error.h"

namespace minnow::ops {

// Calls f.template operator()<T>() with the C++ element type of `t`.
template <class F>
decltype(auto) dispatch_any(DType t, F&& f) {
  switch (t) {
    case DType::kF32:
      return f.template operator()<float>();
    case DType::kF64:
      return f.template operator()<double>();
    case DType::kI64:
      return f.template operator()<int64_t>();
    case DType::kI32:
      return f.template operator()<int32_t>();
    case DType::kI8:
      return f.template operator()<int8_t>();
    case DType::kU8:
      return f.template operator()<uint8_t>();
  }
  throw Error("invalid dtype " + std::to_string(static_cast<int>(t)));
}

// Converts one value like numpy's astype / ONNX Cast: float -> integer truncates toward zero.
// Where those leave the result undefined (NaN, or a float outside the integer's range) this
// saturates (NaN -> 0), because a C++ out-of-range float->int conversion is undefined behaviour
// and a model file must not be able to trigger it. Integer -> integer wraps (two's complement),
// as numpy does.
template <class D, class S>
D convert_value(S v) {
  if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    if (std::isnan(v)) return D{0};
    // Both bounds are powers of two (or zero), exact in float and double.
    const double lo = static_cast<double>(std::numeric_limits<D>::min());
    const double hi = std::is_signed_v<D>
                          ? -lo
                          : 2.0 * (static_cast<double>(std::numeric_limits<D>::max() / 2) + 1.0);
    const double x = static_cast<double>(v);
    if (x <= lo - 1.0) return std::numeric_limits<D>::min();
    if (x >= hi) return std::numeric_limits<D>::max();
    return static_cast<D>(x);
  } else {
    return static_cast<D>(v);
  }
}

}  // namespace minnow::ops
