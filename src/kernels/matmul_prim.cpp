#include "kernels/matmul_prim.h"

#include <omp.h>

#include <cstring>

// Measured on the 2-core AVX-512 machine, microseconds per product, min of 7 runs of 200+
// calls, 1 thread (dnnl_sgemm / matmul primitive): 6x784x25 1.21/1.43, 16x100x150 2.43/2.47,
// 24x196x96 4.07/4.11, 32x49x144 2.87/2.69, 96x784x16 10.4/10.4, 144x196x24 6.24/6.15,
// 64x64x576 19.6/18.6, 16x1024x144 21.6/27.1 (the one shape where sgemm is clearly ahead);
// products with fewer than 8 rows: sgemm 2-3x ahead and allocation-free (see gemm.cpp).

namespace minnow::kernels {
namespace {

using dnnl::memory;

// A logical [rows, cols] matrix stored row-major with leading dimension ld, or transposed
// (stored [cols, ld]).
memory::desc matrix_desc(int64_t rows, int64_t cols, int64_t ld, bool transposed) {
  memory::dims strides = transposed ? memory::dims{1, ld} : memory::dims{ld, 1};
  return memory::desc({rows, cols}, memory::data_type::f32, strides);
}

// Sets the OpenMP thread count of the calling thread for one scope (oneDNN reads it when a
// primitive is created).
class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(omp_get_max_threads()) {
    if (n > 0) omp_set_num_threads(n);
  }
  ~ThreadCount() { omp_set_num_threads(saved_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int saved_;
};

}  // namespace

MatmulPrim::MatmulPrim(const Spec& s, int slots) : spec_(s) {
  auto& eng = dnnl_glue::engine();
  const memory::desc ad = matrix_desc(s.m, s.k, s.lda, s.trans_a);
  const memory::desc bd = matrix_desc(s.k, s.n, s.ldb, s.trans_b);
  const memory::desc cd = matrix_desc(s.m, s.n, s.ldc, false);
  memory::desc biasd;
  if (s.bias == Spec::Bias::kPerColumn) {
    biasd = memory::desc({1, s.n}, memory::data_type::f32, memory::dims{s.n, 1});
  }
  dnnl::primitive_attr attr = dnnl_glue::user_scratchpad_attr();
  if (s.accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  {
    ThreadCount threads(s.threads);
    pd_ = dnnl::matmul::primitive_desc(dnnl::matmul::desc(ad, bd, biasd, cd), attr, eng);
    prim_ = dnnl::matmul(pd_);
  }
  slots_.resize(std::max(1, slots));
  for (Slot& sl : slots_) {
    // Handles are set on every run(); the bound arguments share these memory objects.
    sl.a = memory(ad, eng, DNNL_MEMORY_NONE);
    sl.b = memory(bd, eng, DNNL_MEMORY_NONE);
    sl.c = memory(cd, eng, DNNL_MEMORY_NONE);
    std::vector<std::pair<int, memory>> args{
        {DNNL_ARG_SRC, sl.a}, {DNNL_ARG_WEIGHTS, sl.b}, {DNNL_ARG_DST, sl.c}};
    if (s.bias != Spec::Bias::kNone) {
      sl.bias = memory(biasd, eng, DNNL_MEMORY_NONE);
      args.push_back({DNNL_ARG_BIAS, sl.bias});
    }
    sl.call = dnnl_glue::Call(prim_, args);  // adds the slot's own scratchpad
  }
}

bool MatmulPrim::is_reference() const { return std::strncmp(impl(), "ref", 3) == 0; }

void MatmulPrim::run(const float* a, const float* b, float* c, const float* bias, int slot) {
  Slot& sl = slots_[slot];
  sl.a.set_data_handle(const_cast<float*>(a));
  sl.b.set_data_handle(const_cast<float*>(b));
  sl.c.set_data_handle(c);
  if (spec_.bias != Spec::Bias::kNone) sl.bias.set_data_handle(const_cast<float*>(bias));
  sl.call();
}

}  // namespace minnow::kernels
