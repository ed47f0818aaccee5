#include "kernels/conv_gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <dnnl.hpp>
#include <string>

#include "kernels/conv_im2col.h"
#include "kernels/conv_vec.h"
#include "kernels/spin_team.h"
#include "minnow/error.h"

namespace minnow::kernels {
namespace {

// Largest batch of column matrices kept between forward and backward (floats; 128 MB).
constexpr int64_t kMaxSavedFloats = int64_t{32} << 20;
// Floats of dy and x packed per pointwise weight-gradient GEMM (256 KB: stays in L2).
constexpr int64_t kPackFloats = int64_t{64} << 10;
// Smallest product (MACs) that one sample's forward splits across threads.
constexpr int64_t kThreadedMacs = int64_t{512} << 10;

// Weight matrices up to this many entries (og x col_rows) take their gradient from
// small_weight_grad instead of one sgemm per sample (MobileNetV2's 16 x 9 stem at batch 64,
// backward in a training step: 0.40 -> 0.17 ms).
constexpr int64_t kSmallWeightGrad = 512;

// dw[o][t] += sum over p of dy[o][p] * col[t][p] ([og][n] and [k][n] matrices): the weight
// gradient of one sample when dw is tiny, where sgemm's per-call work dominates (a 16 x 9 x 784
// product is 113k multiply-adds).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void small_weight_grad(
    const float* dy, const float* col, int64_t og, int64_t k, int64_t n, float* dw) {
  for (int64_t o = 0; o < og; ++o) {
    const float* d = dy + o * n;
    for (int64_t t = 0; t < k; ++t) {
      const float* c = col + t * n;
      float acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t p = 0; p < n; ++p) acc += d[p] * c[p];
      dw[o * k + t] += acc;
    }
  }
}

}  // namespace

void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  note_openmp_team();
  dnnl_status_t st = dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success) {
    throw Error("dnnl_sgemm failed (status " + std::to_string(static_cast<int>(st)) + ") for " +
                std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k));
  }
}

ConvGemm::ConvGemm(const ConvGeometry& g) : g_(g) {
  reserve_scratch(std::max(1, omp_get_max_threads()));
  // Pointwise convolutions read x directly as the column matrix: nothing to save.
  can_save_ = !g_.is_pointwise() && g_.n * g_.group * col_size() <= kMaxSavedFloats;
  MatmulPrim::Spec spec;
  spec.m = g_.og();
  spec.n = g_.ohw();
  spec.k = g_.is_pointwise() ? g_.cg() : g_.col_rows();
  spec.lda = spec.k;
  spec.ldb = g_.is_pointwise() ? g_.h * g_.w : g_.ohw();
  spec.ldc = g_.ohw();
  // Samples split over threads: each product runs on its own thread. One sample: only
  // products of kThreadedMacs and more are split (2 threads, 1 sample: 6x784x25 1.5 us on one
  // thread vs 4.1 on two, 16x100x150 2.6 vs 3.2, 64x49x192 7.0 vs 5.6, 64x64x288 9.9 vs 7.1).
  const int threads = static_cast<int>(scratch_.size());
  spec.threads = g_.n >= threads || spec.m * spec.n * spec.k < kThreadedMacs ? 1 : threads;
  // No fused bias: a per-row bias sends oneDNN 2.6 to its reference matmul (ms, not us).
  try {
    fwd_gemm_ = std::make_unique<MatmulPrim>(spec, threads);
    if (fwd_gemm_->is_reference()) fwd_gemm_.reset();
  } catch (const dnnl::error&) {
    fwd_gemm_.reset();  // dnnl_sgemm computes every shape
  }
}

void ConvGemm::reserve_scratch(int threads) {
  if (static_cast<int>(scratch_.size()) >= threads) return;
  scratch_.resize(threads);
  for (int t = 0; t < threads; ++t) scratch_[t].slot = t;
  for (Scratch& s : scratch_) {
    s.col.get(col_size());
    s.dw.get(g_.o * g_.col_rows());
    s.db.get(g_.o);
    s.pad.get(std::max<int64_t>(1, im2col_scratch_size(g_)));
  }
}

template <class F>
int ConvGemm::run_chunks(F&& fn) {
  const int threads = std::max(1, omp_get_max_threads());
  if (threads > 1 && g_.n >= threads) {
    reserve_scratch(threads);
    int used = threads;
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      const int nt = omp_get_num_threads();
      if (t == 0) used = nt;
      fn(scratch_[t], g_.n * t / nt, g_.n * (t + 1) / nt);
    }
    return used;
  }
  fn(scratch_[0], 0, g_.n);
  return 1;
}

void ConvGemm::forward(const float* x, const float* w, const float* b, float* y, bool training) {
  const int64_t ohw = g_.ohw(), hw = g_.h * g_.w, og = g_.og(), cg = g_.cg();
  const int64_t k = g_.col_rows();
  const bool save = training && can_save_;
  if (save) saved_cols_.get(g_.n * g_.group * col_size());
  saved_for_ = nullptr;
  run_chunks([&](Scratch& s, int64_t n0, int64_t n1) {
    MatmulPrim* prim =
        !training && fwd_gemm_ && s.slot < fwd_gemm_->slots() ? fwd_gemm_.get() : nullptr;
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t gi = 0; gi < g_.group; ++gi) {
        const float* xs = x + (n * g_.c + gi * cg) * hw;
        float* ys = y + (n * g_.o + gi * og) * ohw;
        const float* wg = w + gi * og * k;
        if (prim) {
          const float* src = xs;
          if (!g_.is_pointwise()) {
            im2col(g_, xs, s.col.data(), ohw, s.pad.data());
            src = s.col.data();
          }
          prim->run(wg, src, ys, nullptr, s.slot);
        } else if (g_.is_pointwise()) {
          sgemm('N', 'N', og, ohw, cg, 1.0f, wg, cg, xs, hw, 0.0f, ys, ohw);
        } else {
          float* col = save ? saved_cols_.data() + (n * g_.group + gi) * col_size() : s.col.data();
          im2col(g_, xs, col, ohw, s.pad.data());
          sgemm('N', 'N', og, ohw, k, 1.0f, wg, k, col, ohw, 0.0f, ys, ohw);
        }
        if (b) {
          for (int64_t oc = 0; oc < og; ++oc) {
            add_scalar(ys + oc * ohw, ys + oc * ohw, b[gi * og + oc], ohw);
          }
        }
      }
    }
  });
  if (save) saved_for_ = x;
}

void ConvGemm::sample_backward_data(Scratch& s, int64_t n, const float* dy, const float* w,
                                    float* dx) {
  const int64_t ohw = g_.ohw(), hw = g_.h * g_.w, og = g_.og(), cg = g_.cg();
  const int64_t k = g_.col_rows();
  for (int64_t gi = 0; gi < g_.group; ++gi) {
    const float* wg = w + gi * og * k;
    const float* dys = dy + (n * g_.o + gi * og) * ohw;
    float* dxs = dx + (n * g_.c + gi * cg) * hw;
    if (g_.is_pointwise()) {
      sgemm('T', 'N', cg, ohw, og, 1.0f, wg, cg, dys, ohw, 0.0f, dxs, hw);
    } else {
      float* col = s.col.data();
      sgemm('T', 'N', k, ohw, og, 1.0f, wg, k, dys, ohw, 0.0f, col, ohw);
      col2im(g_, col, ohw, dxs, s.pad.data());
    }
  }
}

void ConvGemm::sample_backward_weights(Scratch& s, int64_t n, const float* x, const float* dy,
                                       bool saved, bool with_db) {
  const int64_t ohw = g_.ohw(), hw = g_.h * g_.w, og = g_.og(), cg = g_.cg();
  const int64_t k = g_.col_rows();
  for (int64_t gi = 0; gi < g_.group; ++gi) {
    float* dwg = s.dw.data() + gi * og * k;
    const float* dys = dy + (n * g_.o + gi * og) * ohw;
    const float* xs = x + (n * g_.c + gi * cg) * hw;
    if (g_.is_pointwise()) {
      sgemm('N', 'T', og, cg, ohw, 1.0f, dys, ohw, xs, hw, 1.0f, dwg, k);
      continue;
    }
    const float* col;
    if (saved) {
      col = saved_cols_.data() + (n * g_.group + gi) * col_size();
    } else {
      im2col(g_, xs, s.col.data(), ohw, s.pad.data());
      col = s.col.data();
    }
    if (og * k <= kSmallWeightGrad) {
      small_weight_grad(dys, col, og, k, ohw, dwg);
    } else {
      sgemm('N', 'T', og, k, ohw, 1.0f, dys, ohw, col, ohw, 1.0f, dwg, k);
    }
  }
  if (with_db) sample_bias_grad(s, n, dy);
}

void ConvGemm::sample_bias_grad(Scratch& s, int64_t n, const float* dy) {
  const int64_t ohw = g_.ohw();
  const float* d = dy + n * g_.o * ohw;
  float* dbp = s.db.data();
  for (int64_t oc = 0; oc < g_.o; ++oc) dbp[oc] += sum_floats(d + oc * ohw, ohw);
}

void ConvGemm::pointwise_backward(Scratch& s, int64_t n0, int64_t n1, const float* x,
                                  const float* dy, const float* w, float* dx) {
  const int64_t hw = g_.h * g_.w, cin = g_.c, cout = g_.o;
  const int64_t per_group = std::max<int64_t>(1, kPackFloats / ((cin + cout) * hw));
  float* pd = s.packed_dy.get(std::min(per_group, g_.n) * cout * hw);
  float* px = s.packed_x.get(std::min(per_group, g_.n) * cin * hw);
  for (int64_t n = n0; n < n1; n += per_group) {
    const int64_t count = std::min(per_group, n1 - n), ld = count * hw;
    // dx first, while the group's dy is read anyway; the packing below then hits the cache.
    if (dx) {
      for (int64_t i = 0; i < count; ++i) sample_backward_data(s, n + i, dy, w, dx);
    }
    if (count == 1) {
      // One sample's dy and x are already [channel][hw] rows: nothing to pack. (At 14x14 and
      // larger, mobilenet_v2's 1x1 layers pack one sample at a time: those copies were 5% of
      // its training time.)
      sgemm('N', 'T', cout, cin, hw, 1.0f, dy + n * cout * hw, hw, x + n * cin * hw, hw, 1.0f,
            s.dw.data(), cin);
      continue;
    }
    for (int64_t i = 0; i < count; ++i) {
      const float* d = dy + (n + i) * cout * hw;
      const float* xs = x + (n + i) * cin * hw;
      for (int64_t r = 0; r < cout; ++r) {
        std::memcpy(pd + r * ld + i * hw, d + r * hw, sizeof(float) * hw);
      }
      for (int64_t r = 0; r < cin; ++r) {
        std::memcpy(px + r * ld + i * hw, xs + r * hw, sizeof(float) * hw);
      }
    }
    sgemm('N', 'T', cout, cin, ld, 1.0f, pd, ld, px, ld, 1.0f, s.dw.data(), cin);
  }
}

void ConvGemm::reduce_weight_grads(int used, float* dw, float* db) {
  const int64_t wsize = g_.o * g_.col_rows();
  std::memcpy(dw, scratch_[0].dw.data(), sizeof(float) * wsize);
  for (int t = 1; t < used; ++t) {
    const float* p = scratch_[t].dw.data();
    for (int64_t i = 0; i < wsize; ++i) dw[i] += p[i];
  }
  if (db) {
    std::memcpy(db, scratch_[0].db.data(), sizeof(float) * g_.o);
    for (int t = 1; t < used; ++t) {
      const float* p = scratch_[t].db.data();
      for (int64_t i = 0; i < g_.o; ++i) db[i] += p[i];
    }
  }
}

void ConvGemm::backward_data(const float* dy, const float* w, float* dx) {
  run_chunks([&](Scratch& s, int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) sample_backward_data(s, n, dy, w, dx);
  });
}

void ConvGemm::backward_weights(const float* x, const float* dy, float* dw, float* db) {
  backward(x, dy, nullptr, nullptr, dw, db);
}

void ConvGemm::backward(const float* x, const float* dy, const float* w, float* dx, float* dw,
                        float* db) {
  const int64_t wsize = g_.o * g_.col_rows();
  const bool saved = saved_for_ == x && x != nullptr;
  const bool packed = g_.is_pointwise() && g_.group == 1;
  int used = run_chunks([&](Scratch& s, int64_t n0, int64_t n1) {
    std::memset(s.dw.data(), 0, sizeof(float) * wsize);
    std::memset(s.db.data(), 0, sizeof(float) * g_.o);
    if (packed) {
      pointwise_backward(s, n0, n1, x, dy, w, dx);
      if (db) {
        for (int64_t n = n0; n < n1; ++n) sample_bias_grad(s, n, dy);
      }
      return;
    }
    for (int64_t n = n0; n < n1; ++n) {
      if (dx) sample_backward_data(s, n, dy, w, dx);
      sample_backward_weights(s, n, x, dy, saved, db != nullptr);
    }
  });
  reduce_weight_grads(used, dw, db);
}

}  // namespace minnow::kernels
