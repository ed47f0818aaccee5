#include "passes/row_scaled_int8.h"

#include <algorithm>
#include <cstring>

#include "passes/graph_uses.h"

namespace minnow {

std::optional<RowScaledInt8> row_scaled_int8(const Graph& g, const Node* dq) {
  if (!dq || dq->op != OpKind::kDequantizeLinear || dq->inputs.size() < 2) return std::nullopt;
  auto constant = [&](size_t i) { return constant_input(g, *dq, i); };
  const Tensor* codes = constant(0);
  const Tensor* scale = constant(1);
  if (!codes || codes->dtype() != DType::kI8 || codes->rank() != 2 || !scale ||
      scale->dtype() != DType::kF32) {
    return std::nullopt;
  }
  if (dq->inputs.size() > 2 && !dq->inputs[2].empty()) {
    const Tensor* zp = constant(2);
    if (!zp || zp->dtype() != DType::kI8) return std::nullopt;
    for (int64_t i = 0; i < zp->numel(); ++i) {
      if (zp->data<int8_t>()[i] != 0) return std::nullopt;
    }
  }
  const int64_t rows = codes->dim(0);
  RowScaledInt8 w{codes, Tensor(DType::kF32, {rows}), false};
  if (scale->numel() == rows && (rows == 1 || dq->attrs.get_int("axis", 1) == 0)) {
    std::memcpy(w.scales.raw(), scale->raw(), static_cast<size_t>(rows) * sizeof(float));
    w.per_row = true;
  } else if (scale->numel() == 1) {
    std::fill(w.scales.f32(), w.scales.f32() + rows, scale->f32()[0]);
  } else {
    return std::nullopt;
  }
  return w;
}

}  // namespace minnow
