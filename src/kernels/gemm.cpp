#include "kernels/gemm.h"

#include <dnnl.h>

#include <stdexcept>
#include <string>
#include <unordered_map>

#include "kernels/dnnl_glue.h"

namespace minnow::kernels {
namespace {

// Below these sizes oneDNN's matmul primitive loses to dnnl_sgemm: its fixed execute cost
// (~0.5-2 us) dominates, and for a single row sgemm takes a tuned gemv path (bench numbers in
// the Linear op's design notes: batch 1 784->300 forward 7 us via sgemm vs 25 us via matmul).
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

// A row-major [rows, cols] matrix, or its transpose stored as [cols, rows], described to
// oneDNN as a logical [rows, cols] matrix with strides.
dnnl::memory::desc matrix_desc(int64_t rows, int64_t cols, bool transposed) {
  dnnl::memory::dims strides =
      transposed ? dnnl::memory::dims{1, rows} : dnnl::memory::dims{cols, 1};
  return dnnl::memory::desc({rows, cols}, dnnl::memory::data_type::f32, strides);
}

}  // namespace

struct Sgemm::Primitive {
  dnnl::matmul prim;
  dnnl::memory a, b, c, bias;
  std::unordered_map<int, dnnl::memory> args;
};

Sgemm::Sgemm(int64_t m, int64_t n, int64_t k, Options opt) : m_(m), n_(n), k_(k), opt_(opt) {
  if (m < kMinPrimitiveRows || n < kMinPrimitiveRows || m * n * k < kMinPrimitiveMacs) return;
  using dnnl::memory;
  auto& eng = dnnl_glue::engine();
  memory::desc ad = matrix_desc(m, k, opt.trans_a);
  memory::desc bd = matrix_desc(k, n, opt.trans_b);
  memory::desc cd = matrix_desc(m, n, false);
  memory::desc biasd = opt.with_bias ? matrix_desc(1, n, false) : memory::desc();
  dnnl::primitive_attr attr;
  if (opt.accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  try {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, biasd, cd), attr, eng);
    auto p = std::make_unique<Primitive>();
    p->prim = dnnl::matmul(pd);
    // Handles are set on every run(); the args map shares these memory objects.
    p->a = memory(ad, eng, DNNL_MEMORY_NONE);
    p->b = memory(bd, eng, DNNL_MEMORY_NONE);
    p->c = memory(cd, eng, DNNL_MEMORY_NONE);
    p->args = {{DNNL_ARG_SRC, p->a}, {DNNL_ARG_WEIGHTS, p->b}, {DNNL_ARG_DST, p->c}};
    if (opt.with_bias) {
      p->bias = memory(biasd, eng, DNNL_MEMORY_NONE);
      p->args[DNNL_ARG_BIAS] = p->bias;
    }
    prim_ = std::move(p);
  } catch (const dnnl::error&) {
    prim_.reset();  // unsupported on this CPU/build: dnnl_sgemm handles every shape
  }
}

Sgemm::~Sgemm() = default;

void Sgemm::run(const float* a, const float* b, float* c, const float* bias) {
  if (m_ == 0 || n_ == 0) return;
  if (prim_) {
    prim_->a.set_data_handle(const_cast<float*>(a));
    prim_->b.set_data_handle(const_cast<float*>(b));
    prim_->c.set_data_handle(c);
    if (opt_.with_bias) prim_->bias.set_data_handle(const_cast<float*>(bias));
    prim_->prim.execute(dnnl_glue::stream(), prim_->args);
    dnnl_glue::stream().wait();
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
  check(dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb,
                   accumulate ? 1.0f : 0.0f, c, n),
        m, n, k);
}

}  // namespace minnow::kernels
