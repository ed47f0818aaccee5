// Element types of tensors and graph values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace minnow {

enum class DType : uint8_t { kF32, kF64, kI64, kI32, kI8, kU8 };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);     // "f32", "f64", "i64", ...
DType dtype_from_name(std::string_view);  // throws minnow::Error for unknown names
bool dtype_is_float(DType t);

}  // namespace minnow
