#include "kernels/conv_vec.h"

namespace minnow::kernels {
namespace {

typedef float V8 __attribute__((vector_size(32), aligned(4), may_alias));

}  // namespace

[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] float sum_floats(
    const float* p, int64_t n) {
  V8 a0{}, a1{}, a2{}, a3{};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 += *reinterpret_cast<const V8*>(p + i);
    a1 += *reinterpret_cast<const V8*>(p + i + 8);
    a2 += *reinterpret_cast<const V8*>(p + i + 16);
    a3 += *reinterpret_cast<const V8*>(p + i + 24);
  }
  for (; i + 8 <= n; i += 8) a0 += *reinterpret_cast<const V8*>(p + i);
  V8 a = (a0 + a1) + (a2 + a3);
  float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  for (; i < n; ++i) s += p[i];
  return s;
}

[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void add_scalar(
    float* d, const float* s, float b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = s[i] + b;
}

}  // namespace minnow::kernels
