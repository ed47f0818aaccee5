// Convolution as im2col + oneDNN's sgemm (one GEMM per sample and group), parallel over the
// batch with OpenMP.
//
// Why not only oneDNN's convolution primitives: with plain NCHW tensors and few channels (LeNet,
// the first layer of most nets) the primitives fall back to their own gemm path with more
// overhead, or need blocked layouts and reorders around every call; see bench/bench_kernels.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/conv_algo.h"
#include "kernels/conv_buffer.h"
#include "kernels/conv_geometry.h"
#include "kernels/matmul_prim.h"

namespace minnow::kernels {

// Thin checked wrapper of dnnl_sgemm (row-major): C = alpha * op(A) op(B) + beta * C.
void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

class ConvGemm : public ConvAlgo {
 public:
  explicit ConvGemm(const ConvGeometry& g);

  // In training, the column matrices of the whole batch are kept (when they fit a budget) so
  // that backward_weights does not build them again. Inference runs the products on a prebuilt
  // matmul primitive, which allocates nothing per call; training keeps
  // dnnl_sgemm, the path its timings were tuned on.
  void forward(const float* x, const float* w, const float* b, float* y, bool training) override;
  void backward_data(const float* dy, const float* w, float* dx) override;
  void backward_weights(const float* x, const float* dy, float* dw, float* db) override;
  // Per sample: dx, then dw += (the sample's dy, still in cache).
  void backward(const float* x, const float* dy, const float* w, float* dx, float* dw,
                float* db) override;
  std::string name() const override { return "im2col+sgemm"; }

 private:
  struct Scratch {
    FloatBuffer col, dw, db, pad;
    FloatBuffer packed_dy, packed_x;  // pointwise weight gradient: several samples side by side
    int slot = 0;                     // this thread's slot of fwd_gemm_
  };
  // Calls fn(scratch, first_sample, end_sample) on each thread; one thread (with a threaded
  // sgemm) when the batch is too small to split. Returns the number of threads used.
  template <class F>
  int run_chunks(F&& fn);
  void reserve_scratch(int threads);
  int64_t col_size() const { return g_.col_rows() * g_.ohw(); }
  // One sample's backward-data / weight-gradient contributions (dw, db accumulated in s).
  void sample_backward_data(Scratch& s, int64_t n, const float* dy, const float* w, float* dx);
  void sample_backward_weights(Scratch& s, int64_t n, const float* x, const float* dy, bool saved,
                               bool with_db);
  // s.db += the sample's dy summed per output channel.
  void sample_bias_grad(Scratch& s, int64_t n, const float* dy);
  // Pointwise, one group, samples [n0, n1): dx when non-null, and s.dw += dy x^T as GEMMs whose
  // inner dimension spans several samples (copied side by side) instead of one short GEMM per
  // sample (MobileNetV2's 96 -> 24 projection: weight gradient 0.69 -> 0.44 ms, cold caches).
  void pointwise_backward(Scratch& s, int64_t n0, int64_t n1, const float* x, const float* dy,
                          const float* w, float* dx);
  // Sums the per-thread weight gradients of `used` threads into dw (and db when non-null).
  void reduce_weight_grads(int used, float* dw, float* db);

  ConvGeometry g_;
  std::vector<Scratch> scratch_;
  FloatBuffer saved_cols_;            // [n][group][col_rows][ohw] from the last training forward
  const float* saved_for_ = nullptr;  // the x those columns belong to (nullptr: none)
  bool can_save_ = false;
  std::unique_ptr<MatmulPrim> fwd_gemm_;  // null: oneDNN has no matmul for this shape
};

}  // namespace minnow::kernels
