// A weight in the form `minnow quantize` stores LSTM / GRU weights in (passes/insert_qdq.h):
// DequantizeLinear of a constant int8 matrix with zero points 0 (or none) and one scale per row
// (axis 0) or one for all. Read by the lowering to int8 gates (passes/lower_qdq.h) and by the
// ONNX export, which reorders the rows into ONNX's gate order.
#pragma once

#include <optional>

#include "minnow/graph.h"

namespace minnow {

struct RowScaledInt8 {
  const Tensor* codes;  // int8 [rows, K]
  Tensor scales;        // f32 [rows]: one per row (a single scale repeated)
  bool per_row;         // the DequantizeLinear's scale input already holds one per row
};

// The weight `dq` dequantizes, if `dq` is such a DequantizeLinear (nullptr: none).
std::optional<RowScaledInt8> row_scaled_int8(const Graph& g, const Node* dq);

}  // namespace minnow
