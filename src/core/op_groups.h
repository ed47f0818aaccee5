// Groups of ops that several passes and the runtime treat alike; one list each, so that an op
// added to a group is seen by all of them.
#pragma once

#include "minnow/op_kind.h"

namespace minnow {

// Elementwise activation functions of one input: y[i] = f(x[i]), shape and dtype unchanged.
inline bool is_elementwise_activation(OpKind op) {
  switch (op) {
    case OpKind::kRelu:
    case OpKind::kRelu6:
    case OpKind::kLeakyRelu:
    case OpKind::kSigmoid:
    case OpKind::kTanh:
    case OpKind::kGelu:
    case OpKind::kHardSwish:
    case OpKind::kHardSigmoid:
      return true;
    default:
      return false;
  }
}

// The integer kernels that passes/lower_qdq.h lowers quantized patterns to (inference only,
// not exported).
inline bool is_integer_op(OpKind op) {
  switch (op) {
    case OpKind::kQLinearConv:
    case OpKind::kQLinearLinear:
    case OpKind::kQLinearAdd:
    case OpKind::kQLinearGlobalAvgPool:
    case OpKind::kQLinearLookup:
    case OpKind::kQLinearSoftmax:
      return true;
    default:
      return false;
  }
}

}  // namespace minnow
