// MultiHeadAttention: self-attention exactly like PyTorch nn.MultiheadAttention(D, h,
// batch_first=True) called as mha(x, x, x, key_padding_mask=(t >= lengths[n])).
//
//   qkv = x W_in^T + b_in                    [N*T, 3D]; q, k, v are its column thirds
//   P   = softmax(q_h k_h^T / sqrt(D/h))     per sample and head, keys t >= length masked out
//   ctx = concat_h(P v_h)                    [N*T, D]
//   out = ctx W_out^T + b_out
//
// Queries at padded positions still attend to the valid keys and produce outputs (PyTorch does
// the same; a loss usually ignores them). Forward keeps qkv, P and ctx for backward.
//
// Both kernels run the same code; they differ in how matrices are multiplied. The reference uses
// kernels::gemm_ref (any T, one thread); the fast kernel prebuilds a kernels::Sgemm for each of
// the six fixed-shape projection products of a step and runs the per-head products through
// kernels::sgemm, with samples x heads shared by threads.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

using kernels::Sgemm;

// The per-head loops go parallel above this many MACs of attention core.
constexpr int64_t kParallelMacs = int64_t{1} << 16;
// Per-head products below this many MACs run as plain loops in the fast kernel too.
constexpr int64_t kMinSgemmMacs = 4096;

const ValueInfo* lengths_input(const InputInfos& in) { return in.size() > 5 ? in[5] : nullptr; }

int64_t num_heads(const Node& n, int64_t d) {
  const int64_t h = n.attrs.get_int("num_heads", 0);
  if (h < 1) fail(n, "attribute num_heads must be >= 1, got " + std::to_string(h));
  if (d >= 0 && d % h != 0) {
    fail(n, "embedding dim " + std::to_string(d) + " is not divisible by num_heads " +
                std::to_string(h));
  }
  return h;
}

void infer_mha(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  require_float(n, x);
  require_rank(n, x, 3);
  const int64_t t = x.shape[1], d = x.shape[2];
  if (t < 1 || d < 1) {
    fail(n, "input '" + x.name + "' has shape " + shape_str(x.shape) +
                ", expected [N, T, D] with concrete T, D >= 1");
  }
  num_heads(n, d);
  struct Param {
    const char* role;
    Shape shape;
  };
  const Param params[] = {{"in_proj_weight", {3 * d, d}},
                          {"in_proj_bias", {3 * d}},
                          {"out_proj_weight", {d, d}},
                          {"out_proj_bias", {d}}};
  for (size_t i = 1; i <= 4; ++i) {
    const ValueInfo& p = input(n, in, i);
    const Param& want = params[i - 1];
    if (p.dtype != x.dtype) {
      fail(n, std::string(want.role) + " '" + p.name + "' has dtype " +
                  std::string(dtype_name(p.dtype)) + ", expected " +
                  std::string(dtype_name(x.dtype)) + " like the input");
    }
    if (p.shape != want.shape) {
      fail(n, std::string(want.role) + " '" + p.name + "' has shape " + shape_str(p.shape) +
                  ", expected " + shape_str(want.shape));
    }
  }
  if (const ValueInfo* len = lengths_input(in)) {
    if (len->dtype != DType::kI64) {
      fail(n, "lengths '" + len->name + "' have dtype " + std::string(dtype_name(len->dtype)) +
                  ", expected i64");
    }
    const bool batch_ok =
        len->shape.size() == 1 &&
        (len->shape[0] == x.shape[0] || len->shape[0] == kDynamic || x.shape[0] == kDynamic);
    if (!batch_ok) {
      fail(n, "lengths '" + len->name + "' have shape " + shape_str(len->shape) + ", expected [" +
                  (x.shape[0] == kDynamic ? "N" : std::to_string(x.shape[0])) +
                  "] (one length per sample of " + shape_str(x.shape) + ")");
    }
  }
  out[0].dtype = x.dtype;
  out[0].shape = x.shape;
}

// Per sample: projections 3TD^2 + TD^2, scores and weighted values 2 T^2 D.
int64_t mha_macs(const Node&, const InputInfos& in, const std::vector<ValueInfo>&) {
  const int64_t t = in[0]->shape[1], d = in[0]->shape[2];
  return 4 * t * d * d + 2 * t * t * d;
}

struct MhaDims {
  int64_t n, t, d, h, dh;
  int64_t rows() const { return n * t; }
  int64_t core_macs() const { return 2 * n * t * t * d; }
};

MhaDims mha_dims(const Node& node, const InputInfos& in) {
  const Shape& x = in[0]->shape;
  const int64_t h = num_heads(node, x[2]);
  return {x[0], x[1], x[2], h, x[2] / h};
}

template <class T>
void column_sums(const T* m, int64_t rows, int64_t cols, T* sums) {
  std::fill(sums, sums + cols, T(0));
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) sums[j] += m[i * cols + j];
  }
}

template <class T, bool kFast>
class MhaKernel final : public Kernel {
 public:
  MhaKernel(const Node& node, MhaDims d)
      : node_(node),
        d_(d),
        scale_(1.0 / std::sqrt(static_cast<double>(d.dh))),
        qkv_(d.rows() * 3 * d.d),
        heads_(3 * d.rows() * d.d),
        p_(d.n * d.h * d.t * d.t),
        ctx_heads_(d.rows() * d.d),
        ctx_(d.rows() * d.d),
        len_(d.n) {
    if constexpr (kFast) {
      const int64_t r = d.rows(), e = d.d;
      in_proj_ =
          std::make_unique<Sgemm>(r, 3 * e, e, Sgemm::Options{.trans_b = true, .with_bias = true});
      out_proj_ =
          std::make_unique<Sgemm>(r, e, e, Sgemm::Options{.trans_b = true, .with_bias = true});
      grad_out_w_ = std::make_unique<Sgemm>(e, e, r, Sgemm::Options{.trans_a = true});
      grad_ctx_ = std::make_unique<Sgemm>(r, e, e, Sgemm::Options{});
      grad_in_w_ = std::make_unique<Sgemm>(3 * e, e, r, Sgemm::Options{.trans_a = true});
      grad_x_ = std::make_unique<Sgemm>(r, e, 3 * e, Sgemm::Options{});
    }
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    read_lengths(in.size() > 5 ? in[5] : nullptr);
    const int64_t r = d_.rows(), e = d_.d;
    const T* x = in[0]->data<T>();
    // qkv = x W_in^T + b_in
    project(in_proj_.get(), false, true, r, 3 * e, e, x, in[1]->data<T>(), qkv_.data(),
            in[2]->data<T>());
    split_heads(qkv_.data(), 3 * e, 3, heads_.data());
    const int64_t hd = d_.t * d_.dh;  // elements of one head's [T, dh] block
    const int64_t block = d_.n * d_.h * hd;
    const T* q = heads_.data();
    const T* k = q + block;
    const T* v = k + block;
    const int64_t nh = d_.n * d_.h;
#pragma omp parallel for if (kFast && d_.core_macs() >= kParallelMacs) schedule(static)
    for (int64_t b = 0; b < nh; ++b) {
      const int64_t len = len_[b / d_.h];
      T* p = p_.data() + b * d_.t * d_.t;
      // Scores of the valid keys only; masked keys keep probability 0.
      mm(false, true, d_.t, d_.t, d_.dh, q + b * hd, k + b * hd, p, false);
      for (int64_t i = 0; i < d_.t; ++i) softmax_row(p + i * d_.t, len);
      mm(false, false, d_.t, d_.dh, d_.t, p, v + b * hd, ctx_heads_.data() + b * hd, false);
    }
    merge_heads(ctx_heads_.data(), 1, e, ctx_.data());
    // out = ctx W_out^T + b_out
    project(out_proj_.get(), false, true, r, e, e, ctx_.data(), in[3]->data<T>(), out[0]->data<T>(),
            in[4]->data<T>());
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    auto want = [&](size_t i) { return i < grad_in.size() && grad_in[i] != nullptr; };
    if (!grad_out[0]) {
      for (Tensor* g : grad_in) {
        if (g) g->fill_zero();
      }
      return;
    }
    if (want(5)) grad_in[5]->fill_zero();  // lengths: integer, no gradient
    const int64_t r = d_.rows(), e = d_.d;
    const T* dout = grad_out[0]->data<T>();
    if (want(4)) column_sums(dout, r, e, grad_in[4]->data<T>());
    if (want(3)) {
      project(grad_out_w_.get(), true, false, e, e, r, dout, ctx_.data(), grad_in[3]->data<T>(),
              nullptr);
    }
    if (!want(0) && !want(1) && !want(2)) return;
    // Everything below flows back through the attention core into qkv.
    dctx_.resize(r * e);
    project(grad_ctx_.get(), false, false, r, e, e, dout, in[3]->data<T>(), dctx_.data(), nullptr);
    dheads_.resize(3 * r * e);
    dctx_heads_.resize(r * e);
    dp_.resize(p_.size());
    split_heads(dctx_.data(), e, 1, dctx_heads_.data());
    const int64_t hd = d_.t * d_.dh;
    const int64_t block = d_.n * d_.h * hd;
    const T* q = heads_.data();
    const T* k = q + block;
    const T* v = k + block;
    T* dq = dheads_.data();
    T* dk = dq + block;
    T* dv = dk + block;
    const int64_t nh = d_.n * d_.h;
    const T scale = static_cast<T>(scale_);
#pragma omp parallel for if (kFast && d_.core_macs() >= kParallelMacs) schedule(static)
    for (int64_t b = 0; b < nh; ++b) {
      const int64_t tt = d_.t;
      const T* p = p_.data() + b * tt * tt;
      T* dp = dp_.data() + b * tt * tt;
      const T* dob = dctx_heads_.data() + b * hd;
      mm(false, true, tt, tt, d_.dh, dob, v + b * hd, dp, false);  // dP = dO V^T
      mm(true, false, tt, d_.dh, tt, p, dob, dv + b * hd, false);  // dV = P^T dO
      // Softmax backward, with the score scale folded in: dS = scale P (dP - <P, dP>_row).
      for (int64_t i = 0; i < tt; ++i) {
        const T* pr = p + i * tt;
        T* dr = dp + i * tt;
        T dot = 0;
        for (int64_t j = 0; j < tt; ++j) dot += pr[j] * dr[j];
        for (int64_t j = 0; j < tt; ++j) dr[j] = scale * pr[j] * (dr[j] - dot);
      }
      mm(false, false, tt, d_.dh, tt, dp, k + b * hd, dq + b * hd, false);  // dQ = dS K
      mm(true, false, tt, d_.dh, tt, dp, q + b * hd, dk + b * hd, false);   // dK = dS^T Q
    }
    dqkv_.resize(r * 3 * e);
    merge_heads(dheads_.data(), 3, 3 * e, dqkv_.data());
    if (want(2)) column_sums(dqkv_.data(), r, 3 * e, grad_in[2]->data<T>());
    if (want(1)) {
      project(grad_in_w_.get(), true, false, 3 * e, e, r, dqkv_.data(), in[0]->data<T>(),
              grad_in[1]->data<T>(), nullptr);
    }
    if (want(0)) {
      project(grad_x_.get(), false, false, r, e, 3 * e, dqkv_.data(), in[1]->data<T>(),
              grad_in[0]->data<T>(), nullptr);
    }
  }

 private:
  void read_lengths(const Tensor* lengths) {
    for (int64_t s = 0; s < d_.n; ++s) {
      const int64_t len = lengths ? lengths->data<int64_t>()[s] : d_.t;
      if (len < 1 || len > d_.t) {
        fail(node_, "lengths[" + std::to_string(s) + "] = " + std::to_string(len) +
                        " is outside [1, " + std::to_string(d_.t) +
                        "] (a sample needs at least one unmasked key)");
      }
      len_[s] = len;
    }
  }

  // Masked softmax of one score row in place: the first `len` entries are scaled scores, the
  // rest become 0.
  void softmax_row(T* row, int64_t len) const {
    const T scale = static_cast<T>(scale_);
    T mx = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < len; ++j) mx = std::max(mx, row[j] * scale);
    T sum = 0;
    for (int64_t j = 0; j < len; ++j) {
      row[j] = std::exp(row[j] * scale - mx);
      sum += row[j];
    }
    const T inv = T(1) / sum;
    for (int64_t j = 0; j < len; ++j) row[j] *= inv;
    for (int64_t j = len; j < d_.t; ++j) row[j] = 0;
  }

  // [N*T, parts*D] row-major (columns: part, head, dh) -> [parts, N, h, T, dh].
  void split_heads(const T* src, int64_t ld, int64_t parts, T* dst) const {
    const int64_t block = d_.rows() * d_.d;
    for (int64_t part = 0; part < parts; ++part) {
      for (int64_t s = 0; s < d_.n; ++s) {
        for (int64_t hh = 0; hh < d_.h; ++hh) {
          T* o = dst + part * block + ((s * d_.h + hh) * d_.t) * d_.dh;
          for (int64_t t = 0; t < d_.t; ++t) {
            const T* i = src + (s * d_.t + t) * ld + part * d_.d + hh * d_.dh;
            std::copy(i, i + d_.dh, o + t * d_.dh);
          }
        }
      }
    }
  }

  // The inverse of split_heads.
  void merge_heads(const T* src, int64_t parts, int64_t ld, T* dst) const {
    const int64_t block = d_.rows() * d_.d;
    for (int64_t part = 0; part < parts; ++part) {
      for (int64_t s = 0; s < d_.n; ++s) {
        for (int64_t hh = 0; hh < d_.h; ++hh) {
          const T* i = src + part * block + ((s * d_.h + hh) * d_.t) * d_.dh;
          for (int64_t t = 0; t < d_.t; ++t) {
            T* o = dst + (s * d_.t + t) * ld + part * d_.d + hh * d_.dh;
            std::copy(i + t * d_.dh, i + (t + 1) * d_.dh, o);
          }
        }
      }
    }
  }

  // Per-head products. Tiny ones stay in plain loops: a dnnl_sgemm call costs more than the
  // product there (N=16 T=4 D=8 h=2: 64 calls per step, fast kernel 2.5x slower than the loops).
  static void mm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, const T* b, T* c,
                 bool acc) {
    if constexpr (kFast) {
      if (m * n * k >= kMinSgemmMacs) {
        kernels::sgemm(ta, tb, m, n, k, a, b, c, acc);
        return;
      }
    }
    kernels::gemm_ref<T>(ta, tb, m, n, k, a, b, c, acc);
  }

  // A fixed-shape product (+ bias on every row when given): prebuilt in the fast kernel.
  static void project(Sgemm* prebuilt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      const T* a, const T* b, T* c, const T* bias) {
    if constexpr (kFast) {
      prebuilt->run(a, b, c, bias);
    } else {
      kernels::gemm_ref<T>(ta, tb, m, n, k, a, b, c, false);
      if (bias) {
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) c[i * n + j] += bias[j];
        }
      }
    }
  }

  Node node_;
  MhaDims d_;
  double scale_;
  std::vector<T> qkv_, heads_, p_, ctx_heads_, ctx_;       // kept from forward for backward
  std::vector<T> dctx_, dctx_heads_, dheads_, dp_, dqkv_;  // backward scratch, sized on first use
  std::vector<int64_t> len_;
  std::unique_ptr<Sgemm> in_proj_, out_proj_, grad_out_w_, grad_ctx_, grad_in_w_, grad_x_;
};

std::unique_ptr<Kernel> make_mha_ref(const Node& n, const InputInfos& in,
                                     const std::vector<ValueInfo>&) {
  MhaDims d = mha_dims(n, in);
  return dispatch_float(input(n, in, 0).dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<MhaKernel<T, false>>(n, d);
  });
}

std::unique_ptr<Kernel> make_mha_fast(const Node& n, const InputInfos& in,
                                      const std::vector<ValueInfo>&) {
  return std::make_unique<MhaKernel<float, true>>(n, mha_dims(n, in));
}

}  // namespace

const OpDef kMultiHeadAttentionDef = {OpKind::kMultiHeadAttention,
                                      "MultiHeadAttention",
                                      5,
                                      6,
                                      1,
                                      infer_mha,
                                      make_mha_ref,
                                      make_mha_fast,
                                      true,
                                      mha_macs};

}  // namespace minnow::ops
