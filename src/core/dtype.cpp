#include "minnow/dtype.h"

#include <string>

#include "minnow/error.h"

namespace minnow {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32:
      return 4;
    case DType::kF64:
      return 8;
    case DType::kI64:
      return 8;
    case DType::kI32:
      return 4;
    case DType::kI8:
      return 1;
    case DType::kU8:
      return 1;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kF32:
      return "f32";
    case DType::kF64:
      return "f64";
    case DType::kI64:
      return "i64";
    case DType::kI32:
      return "i32";
    case DType::kI8:
      return "i8";
    case DType::kU8:
      return "u8";
  }
  return "?";
}

DType dtype_from_name(std::string_view name) {
  for (DType t : {DType::kF32, DType::kF64, DType::kI64, DType::kI32, DType::kI8, DType::kU8}) {
    if (dtype_name(t) == name) return t;
  }
  throw Error("unknown dtype '" + std::string(name) + "' (expected f32, f64, i64, i32, i8, u8)");
}

bool dtype_is_float(DType t) { return t == DType::kF32 || t == DType::kF64; }

}  // namespace minnow
