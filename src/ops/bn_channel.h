// One BatchNorm channel's arithmetic, shared by the BatchNorm kernels (norm.cpp) and the fused
// BatchNorm -> depthwise convolution (bn_depthwise_conv.cpp), so both compute the same numbers:
// the statistics and the affine form y = x * a + sh forward, the parameter gradients and the
// coefficients of dx = k1 dy + k2 x + k3 backward.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace minnow::ops {

struct BnChannel {
  float mean = 0, inv = 1;  // inv = 1 / sqrt(var + eps)
  double var = 0;
  float a = 1, sh = 0;  // y = x * a + sh
};

// Training: statistics from t1 = sum (x - k) and t2 = sum (x - k)^2 over `count` values around
// the shift k (which keeps the cancellation small); moves the running statistics (unbiased
// variance). Eval (`batch_stats` false): the running statistics as they are.
inline BnChannel bn_channel(bool batch_stats, double t1, double t2, float k, int64_t count,
                            float gamma, float beta, double momentum, double eps,
                            float* running_mean, float* running_var) {
  BnChannel ch;
  if (batch_stats) {
    const double cnt = static_cast<double>(count);
    const double m1 = t1 / cnt;
    const float m = static_cast<float>(momentum);
    ch.var = std::max(0.0, t2 / cnt - m1 * m1);
    ch.mean = static_cast<float>(k + m1);
    *running_mean = (1 - m) * *running_mean + m * ch.mean;
    *running_var = (1 - m) * *running_var + m * static_cast<float>(ch.var * cnt / (cnt - 1));
  } else {
    ch.mean = *running_mean;
    ch.var = *running_var;
  }
  ch.inv = static_cast<float>(1.0 / std::sqrt(ch.var + eps));
  ch.a = gamma * ch.inv;
  ch.sh = beta - ch.mean * ch.a;
  return ch;
}

// Backward of one channel from sum_dy and sum_dy_xm = sum dy (x - mean) (dy already through the
// fused activation): writes d gamma and d beta (where asked), and with running statistics also
// their gradients (`d_running`, may be null), and returns {k1, k2, k3} of
// dx = k1 dy + k2 x + k3; with batch statistics k2 and k3 carry the mean and variance terms.
inline std::array<float, 3> bn_backward_channel(const BnChannel& ch, bool batch_stats,
                                                double sum_dy, double sum_dy_xm, int64_t count,
                                                float gamma, float* d_gamma, float* d_beta,
                                                float* d_running_mean, float* d_running_var) {
  const double cnt = static_cast<double>(count);
  const double inv = ch.inv, a = gamma * inv, sum_dy_xhat = sum_dy_xm * inv;
  if (d_gamma) *d_gamma = static_cast<float>(sum_dy_xhat);
  if (d_beta) *d_beta = static_cast<float>(sum_dy);
  double c2 = 0, c3 = 0;
  if (batch_stats) {
    c2 = -a * inv * sum_dy_xhat / cnt;
    c3 = -a * sum_dy / cnt - c2 * ch.mean;
  } else {
    if (d_running_mean) *d_running_mean = static_cast<float>(-a * sum_dy);
    if (d_running_var) *d_running_var = static_cast<float>(-0.5 * a * inv * sum_dy_xhat);
  }
  return {static_cast<float>(a), static_cast<float>(c2), static_cast<float>(c3)};
}

namespace bn_detail {
// s1 += sum (x - k), s2 += sum (x - k)^2 over n runs of s floats, `stride` apart (norm.cpp;
// compiled per ISA level, prefetching runs ahead).
void channel_stats(const float* x, int64_t n, int64_t stride, int64_t s, float k, double* s1,
                   double* s2);
// With g = dy where lo < x * a + sh < hi (the fused activation passed it), else 0:
// s1 = sum g, s2 = sum g * (x - m).
void channel_reduce_masked(const float* dy, const float* x, int64_t n, int64_t stride, int64_t s,
                           float m, float a, float sh, float lo, float hi, double* s1, double* s2);
}  // namespace bn_detail

}  // namespace minnow::ops
