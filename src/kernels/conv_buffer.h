// A 64-byte aligned float scratch buffer that only grows (kernels allocate it once, up front).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace minnow::kernels {

class FloatBuffer {
 public:
  // At least n floats; contents are unspecified after a reallocation.
  float* get(int64_t n) {
    if (n > size_) {
      size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64;
      float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) throw std::bad_alloc();
      ptr_.reset(p);
      size_ = n;
    }
    return ptr_.get();
  }
  float* data() { return ptr_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> ptr_;
  int64_t size_ = 0;
};

}  // namespace minnow::kernels
