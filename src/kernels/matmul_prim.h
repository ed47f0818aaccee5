// One f32 matrix product of fixed shape and strides through a prebuilt oneDNN matmul primitive.
//
// Why not dnnl_sgemm: outside its skinny (gemv-like) paths it allocates ~72 KB of packing
// buffers on every call, and an inference run must not allocate. The matmul primitive (brgemm
// on AVX-512) keeps its buffers in a user scratchpad made here once, and runs within a few
// percent of dnnl_sgemm on the convolution and dense shapes of the zoo models (measured per
// shape, min of 7 runs; see matmul_prim.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/dnnl_glue.h"

namespace minnow::kernels {

class MatmulPrim {
 public:
  // C[m,n] = op(A)[m,k] · op(B)[k,n] (+ bias) (+ C when accumulating). Row-major with leading
  // dimensions: A is [m, lda] (or [k, lda] when trans_a), B is [k, ldb] (or [n, ldb] when
  // trans_b), C is [m, ldc].
  struct Spec {
    int64_t m = 0, n = 0, k = 0;
    int64_t lda = 0, ldb = 0, ldc = 0;
    bool trans_a = false, trans_b = false;
    // A bias per column only: oneDNN 2.6 runs a per-row bias [m, 1] on its reference loops.
    enum class Bias { kNone, kPerColumn } bias = Bias::kNone;
    bool accumulate = false;
    // Threads the primitive splits one product over (0: omp_get_max_threads()). oneDNN fixes
    // this at creation; a small product runs faster on one thread than across a fork/join,
    // and inside a parallel region every product runs on its caller's thread anyway.
    int threads = 0;
  };
  // `slots`: how many callers may run at once (one per OpenMP thread); each slot has its own
  // memory objects and scratchpad. Throws dnnl::error when oneDNN has no implementation.
  MatmulPrim(const Spec& spec, int slots = 1);

  // Inside an OpenMP parallel region every thread must use its own slot.
  void run(const float* a, const float* b, float* c, const float* bias = nullptr, int slot = 0);
  int slots() const { return static_cast<int>(slots_.size()); }
  const char* impl() const { return pd_.impl_info_str(); }
  // oneDNN fell back to its reference loops (e.g. a bias per row): far slower than sgemm.
  bool is_reference() const;

 private:
  struct Slot {
    dnnl::memory a, b, c, bias;
    dnnl_glue::Call call;
  };
  Spec spec_;
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul prim_;
  std::vector<Slot> slots_;
};

}  // namespace minnow::kernels
