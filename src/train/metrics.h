// Classification metrics over a batch of logits.
#pragma once

#include <cstdint>

#include "minnow/tensor.h"

namespace minnow {

// Number of rows of logits [N, C] whose argmax equals labels [N] (i64).
int64_t count_correct(const Tensor& logits, const Tensor& labels);

}  // namespace minnow
