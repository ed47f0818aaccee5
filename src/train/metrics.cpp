#include "train/metrics.h"

#include "minnow/error.h"

namespace minnow {

int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  if (logits.rank() != 2 || labels.rank() != 1 || labels.dim(0) != logits.dim(0)) {
    throw Error("accuracy needs logits [N,C] and labels [N], got " + shape_str(logits.shape()) +
                " and " + shape_str(labels.shape()));
  }
  const int64_t n = logits.dim(0), c = logits.dim(1);
  const float* p = logits.f32();
  const int64_t* y = labels.data<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p + i * c;
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j) {
      if (row[j] > row[best]) best = j;
    }
    correct += best == y[i];
  }
  return correct;
}

}  // namespace minnow
