#include "data/dataset.h"

#include <cmath>
#include <cstring>

#include "core/rng.h"
#include "data/permutation.h"
#include "minnow/error.h"

namespace minnow::data {

int64_t Dataset::size() const {
  if (x.defined() && x.rank() > 0) return x.dim(0);
  return y.defined() && y.rank() > 0 ? y.dim(0) : 0;
}

Shape Dataset::sample_shape() const {
  if (!x.defined() || x.rank() == 0) return {};
  return Shape(x.shape().begin() + 1, x.shape().end());
}

void Dataset::validate(const std::string& what) const {
  auto fail = [&](const std::string& msg) { throw Error(what + ": " + msg); };
  if (!x.defined() || x.rank() < 2) {
    fail("x must have shape [N, ...] with at least 2 dims, got " +
         (x.defined() ? shape_str(x.shape()) : std::string("no tensor")));
  }
  if (!y.defined() || y.dtype() != DType::kI64 || y.rank() != 1) {
    fail("y must be an i64 tensor [N]" +
         (y.defined() ? ", got " + std::string(dtype_name(y.dtype())) + " " + shape_str(y.shape())
                      : std::string(", got no tensor")));
  }
  if (y.dim(0) != x.dim(0)) {
    fail("x has " + std::to_string(x.dim(0)) + " samples but y has " + std::to_string(y.dim(0)));
  }
  const int64_t* labels = y.data<int64_t>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      fail("label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
           " is outside [0, " + std::to_string(num_classes) + ")");
    }
  }
  if (lengths.defined()) {
    if (x.dtype() != DType::kI64 || x.rank() != 2) {
      fail("token sequences must be i64 [N, L], got " + std::string(dtype_name(x.dtype())) + " " +
           shape_str(x.shape()));
    }
    if (lengths.dtype() != DType::kI64 || lengths.shape() != Shape{x.dim(0)}) {
      fail("lengths must be i64 [" + std::to_string(x.dim(0)) + "], got " +
           std::string(dtype_name(lengths.dtype())) + " " + shape_str(lengths.shape()));
    }
    const int64_t* len = lengths.data<int64_t>();
    for (int64_t i = 0; i < lengths.numel(); ++i) {
      if (len[i] < 0 || len[i] > x.dim(1)) {
        fail("length " + std::to_string(len[i]) + " of sample " + std::to_string(i) +
             " is outside [0, " + std::to_string(x.dim(1)) + "]");
      }
    }
  }
  if (!class_names.empty() && static_cast<int64_t>(class_names.size()) != num_classes) {
    fail(std::to_string(class_names.size()) + " class names for " + std::to_string(num_classes) +
         " classes");
  }
}

Dataset Dataset::subset(const std::vector<int64_t>& indices) const {
  const int64_t n = size();
  for (int64_t i : indices) {
    if (i < 0 || i >= n) {
      throw Error("Dataset::subset: index " + std::to_string(i) + " is outside [0, " +
                  std::to_string(n) + ")");
    }
  }
  const auto count = static_cast<int64_t>(indices.size());
  Dataset out;
  out.num_classes = num_classes;
  out.class_names = class_names;
  if (x.defined()) {
    Shape shape = x.shape();
    shape[0] = count;
    out.x = Tensor(x.dtype(), shape);
    const size_t row = n ? x.nbytes() / static_cast<size_t>(n) : 0;
    const auto* src = static_cast<const std::byte*>(x.raw());
    auto* dst = static_cast<std::byte*>(out.x.raw());
#pragma omp parallel for if (count * static_cast <int64_t>(row) > (int64_t{1} << 22))
    for (int64_t k = 0; k < count; ++k) {
      std::memcpy(dst + k * row, src + indices[k] * row, row);
    }
  }
  // y and lengths hold one element per sample.
  for (auto [from, to] : {std::pair{&y, &out.y}, std::pair{&lengths, &out.lengths}}) {
    if (!from->defined()) continue;
    Shape shape = from->shape();
    shape[0] = count;
    *to = Tensor(from->dtype(), shape);
    const size_t row = n ? from->nbytes() / static_cast<size_t>(n) : 0;
    const auto* src = static_cast<const std::byte*>(from->raw());
    auto* dst = static_cast<std::byte*>(to->raw());
    for (int64_t k = 0; k < count; ++k) std::memcpy(dst + k * row, src + indices[k] * row, row);
  }
  return out;
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> split_indices(int64_t n, double fraction,
                                                                    uint64_t seed) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    throw Error("validation fraction " + std::to_string(fraction) + " is outside [0, 1)");
  }
  auto n_val = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  // fraction < 1 promises a training set: keep at least one sample there.
  if (n > 0 && n_val >= n) n_val = n - 1;
  Rng rng(seed);
  std::vector<int64_t> order;
  random_permutation(n, rng, order);
  std::vector<int64_t> train(order.begin(), order.end() - n_val);
  std::vector<int64_t> val(order.end() - n_val, order.end());
  return {std::move(train), std::move(val)};
}

std::pair<Dataset, Dataset> split_validation(const Dataset& d, double fraction, uint64_t seed) {
  auto [train, val] = split_indices(d.size(), fraction, seed);
  return {d.subset(train), d.subset(val)};
}

}  // namespace minnow::data
