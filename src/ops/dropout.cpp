// Dropout: in training, zero each element with probability `ratio` and scale the kept ones by
// 1 / (1 - ratio); in eval, copy.
//
// The mask must be a function of the rng state alone (not of the thread count), so one draw from
// ctx.rng seeds the step and each fixed-size chunk of the tensor derives its own generator from
// (seed, chunk index); chunks can then be filled in parallel. The mask is kept, already scaled,
// for backward.
#include <cmath>
#include <string>

#include "core/rng.h"
#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

// Chunk of the mask served by one derived generator. Fixed: changing it changes every mask.
constexpr int64_t kMaskChunk = 4096;

double dropout_ratio(const Node& n) {
  const double ratio = n.attrs.get_float("ratio", 0.5);
  if (!(ratio >= 0.0 && ratio < 1.0)) {
    fail(n, "attribute ratio must be in [0, 1), got " + std::to_string(ratio));
  }
  return ratio;
}

void infer_dropout(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  dropout_ratio(n);
  infer_same_as_input(n, in, out);
}

template <class T>
class DropoutKernel final : public Kernel {
 public:
  DropoutKernel(const Node& node, double ratio, int64_t n)
      : node_(node.name), ratio_(ratio), n_(n) {
    // An element is kept when 24 random bits, read as a fraction of 2^24 (the resolution of
    // Rng::uniform), are >= ratio.
    threshold_ = static_cast<uint32_t>(std::ceil(ratio * 16777216.0));
    scale_ = static_cast<T>(1.0 / (1.0 - ratio));
  }

  void forward(Tensors in, Tensors out, RunContext& ctx) override {
    const T* x = in[0]->data<T>();
    T* y = out[0]->data<T>();
    active_ = ctx.training && ratio_ > 0.0;
    if (!active_) {
      parallel_copy(y, x, n_);
      return;
    }
    if (!ctx.rng) throw Error("node '" + node_ + "' (Dropout): training mode needs an rng");
    if (mask_.size() != static_cast<size_t>(n_)) mask_.resize(static_cast<size_t>(n_));
    make_mask(ctx.rng->next_u64());
    const T* m = mask_.data();
    for_blocks(n_, [=](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) y[i] = x[i] * m[i];
    });
  }

  void backward(Tensors, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    if (!grad_out[0]) {
      grad_in[0]->fill_zero();
      return;
    }
    const T* dy = grad_out[0]->data<T>();
    T* dx = grad_in[0]->data<T>();
    if (!active_) {
      parallel_copy(dx, dy, n_);
      return;
    }
    const T* m = mask_.data();
    for_blocks(n_, [=](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * m[i];
    });
  }

 private:
  void make_mask(uint64_t seed) {
    T* m = mask_.data();
    const int64_t chunks = (n_ + kMaskChunk - 1) / kMaskChunk;
    const uint32_t thr = threshold_;
    const T keep = scale_;
#pragma omp parallel for if (n_ >= kParallelMin) schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      Rng rng = Rng::derive(seed, static_cast<uint64_t>(c));
      const int64_t lo = c * kMaskChunk, hi = std::min(n_, lo + kMaskChunk);
      // Two 24-bit draws per 64-bit number.
      for (int64_t i = lo; i < hi; i += 2) {
        const uint64_t r = rng.next_u64();
        m[i] = static_cast<uint32_t>(r >> 40) >= thr ? keep : T(0);
        if (i + 1 < hi) m[i + 1] = static_cast<uint32_t>((r >> 16) & 0xFFFFFF) >= thr ? keep : T(0);
      }
    }
  }

  std::string node_;
  double ratio_;
  int64_t n_;
  uint32_t threshold_;
  T scale_;
  bool active_ = false;  // whether the last forward dropped anything (backward must match it)
  std::vector<T> mask_;  // 0 or 1/(1-ratio); sized on the first training step, then reused
};

std::unique_ptr<Kernel> make_dropout(const Node& n, const InputInfos& in,
                                     const std::vector<ValueInfo>&) {
  const ValueInfo& x = input(n, in, 0);
  const double ratio = dropout_ratio(n);
  const int64_t numel = shape_numel(x.shape);
  return dispatch_float(x.dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<DropoutKernel<T>>(n, ratio, numel);
  });
}

}  // namespace

const OpDef kDropoutDef = {OpKind::kDropout, "Dropout",    1,       1,    1,
                           infer_dropout,    make_dropout, nullptr, true, nullptr};

}  // namespace minnow::ops
