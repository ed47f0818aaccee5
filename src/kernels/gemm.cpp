#include "kernels/gemm.h"

#include <dnnl.h>

#include <stdexcept>
#include <string>

#include "kernels/matmul_prim.h"
#include "kernels/spin_team.h"

namespace minnow::kernels {
namespace {

// Below these sizes oneDNN's matmul primitive loses to dnnl_sgemm: its fixed execute cost
// (~0.5-2 us) dominates, and for a single row sgemm takes a tuned gemv path (bench numbers in
// the Linear op's design notes: batch 1 784->300 forward 7 us via sgemm vs 25 us via matmul).
// Those skinny and tiny products are also the ones where dnnl_sgemm allocates nothing; from 8
// rows on it allocates packing buffers on every call (16x4x64 included), so any column count
// takes the primitive there.
constexpr int64_t kMinPrimitiveRows = 8;
constexpr int64_t kMinPrimitiveMacs = 4096;

void check(dnnl_status_t st, int64_t m, int64_t n, int64_t k) {
  if (st != dnnl_success) {
    throw std::runtime_error("dnnl_sgemm failed (status " + std::to_string(st) +
                             ") for m=" + std::to_string(m) + " n=" + std::to_string(n) +
                             " k=" + std::to_string(k));
  }
}

void fill_rows(float* c, const float* bias, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * n;
    for (int64_t j = 0; j < n; ++j) row[j] = bias[j];
  }
}

void add_rows(float* c, const float* bias, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * n;
    for (int64_t j = 0; j < n; ++j) row[j] += bias[j];
  }
}

}  // namespace

Sgemm::Sgemm(int64_t m, int64_t n, int64_t k, Options opt) : m_(m), n_(n), k_(k), opt_(opt) {
  // n == 1 is sgemm's allocation-free gemv (64x1x128: 0.33 us against the primitive's 1.4).
  if (m < kMinPrimitiveRows || n == 1 || m * n * k < kMinPrimitiveMacs) return;
  MatmulPrim::Spec spec;
  spec.m = m;
  spec.n = n;
  spec.k = k;
  spec.lda = opt.trans_a ? m : k;
  spec.ldb = opt.trans_b ? k : n;
  spec.ldc = n;
  spec.trans_a = opt.trans_a;
  spec.trans_b = opt.trans_b;
  spec.accumulate = opt.accumulate;
  if (opt.with_bias) spec.bias = MatmulPrim::Spec::Bias::kPerColumn;
  try {
    prim_ = std::make_unique<MatmulPrim>(spec);
    if (prim_->is_reference()) prim_.reset();
  } catch (const dnnl::error&) {
    prim_.reset();  // unsupported on this CPU/build: dnnl_sgemm handles every shape
  }
}

Sgemm::~Sgemm() = default;

void Sgemm::run(const float* a, const float* b, float* c, const float* bias) {
  if (m_ == 0 || n_ == 0) return;
  if (prim_) {
    prim_->run(a, b, c, bias);
    return;
  }
  bool acc = opt_.accumulate;
  if (opt_.with_bias) {
    if (acc) {
      add_rows(c, bias, m_, n_);
    } else {
      fill_rows(c, bias, m_, n_);
    }
    acc = true;
  }
  sgemm(opt_.trans_a, opt_.trans_b, m_, n_, k_, a, b, c, acc);
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
           const float* b, float* c, bool accumulate) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) {
      for (int64_t i = 0; i < m * n; ++i) c[i] = 0.0f;
    }
    return;
  }
  const int64_t lda = trans_a ? m : k;
  const int64_t ldb = trans_b ? k : n;
  note_openmp_team();
  check(dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb,
                   accumulate ? 1.0f : 0.0f, c, n),
        m, n, k);
}

}  // namespace minnow::kernels
