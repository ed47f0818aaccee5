// Row-major matrix products for the dense ops (Linear, MatMul).
//
// Sgemm is the fast f32 path: its shape is fixed at construction (kernels are built once per
// shape), so the oneDNN primitive and its arguments are bound once and every run() only swaps
// data pointers and allocates nothing (kernels/matmul_prim.h). gemm_ref is the portable oracle used
// by the reference kernels.
#pragma once

#include <cstdint>
#include <memory>

namespace minnow::kernels {

// C[m,n] = op(A)[m,k] · op(B)[k,n] (+ bias[n] on every row) (+ C when accumulating).
// op(A) = A^T when trans_a (A stored [k,m]), likewise for B. All matrices are packed row-major.
class MatmulPrim;

class Sgemm {
 public:
  struct Options {
    bool trans_a = false;
    bool trans_b = false;
    bool with_bias = false;   // run() takes a bias[n]
    bool accumulate = false;  // C += product instead of C = product
  };
  Sgemm(int64_t m, int64_t n, int64_t k, Options opt);
  ~Sgemm();
  Sgemm(const Sgemm&) = delete;
  Sgemm& operator=(const Sgemm&) = delete;

  void run(const float* a, const float* b, float* c, const float* bias = nullptr);

 private:
  int64_t m_, n_, k_;
  Options opt_;
  std::unique_ptr<MatmulPrim> prim_;  // null: dnnl_sgemm is used (tiny or skinny products)
};

// One-shot product with the same semantics and no prebuilt state (for shapes that vary).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
           const float* b, float* c, bool accumulate);

// Plain loops: the reference for every T. Loop orders keep the innermost access contiguous.
template <class T>
void gemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, const T* b,
              T* c, bool accumulate) {
  if (!accumulate) {
    for (int64_t i = 0; i < m * n; ++i) c[i] = T(0);
  }
  if (!trans_a && !trans_b) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t p = 0; p < k; ++p) {
        const T av = a[i * k + p];
        for (int64_t j = 0; j < n; ++j) c[i * n + j] += av * b[p * n + j];
      }
    }
  } else if (!trans_a && trans_b) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        T s = T(0);
        for (int64_t p = 0; p < k; ++p) s += a[i * k + p] * b[j * k + p];
        c[i * n + j] += s;
      }
    }
  } else if (trans_a && !trans_b) {
    for (int64_t p = 0; p < k; ++p) {
      for (int64_t i = 0; i < m; ++i) {
        const T av = a[p * m + i];
        for (int64_t j = 0; j < n; ++j) c[i * n + j] += av * b[p * n + j];
      }
    }
  } else {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        T s = T(0);
        for (int64_t p = 0; p < k; ++p) s += a[p * m + i] * b[j * k + p];
        c[i * n + j] += s;
      }
    }
  }
}

}  // namespace minnow::kernels
