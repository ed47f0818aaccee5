// A 64-byte aligned scratch buffer that only grows (kernels allocate it once, up front).
// Aligned so that vector loads and stores never straddle two cache lines.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace minnow::kernels {

template <class T>
class AlignedBuffer {
 public:
  // At least n elements; contents are unspecified after a reallocation.
  T* get(int64_t n) {
    if (n > size_) {
      size_t bytes = (static_cast<size_t>(n) * sizeof(T) + 63) / 64 * 64;
      T* p = static_cast<T*>(std::aligned_alloc(64, bytes));
      if (!p) throw std::bad_alloc();
      ptr_.reset(p);
      size_ = n;
    }
    return ptr_.get();
  }
  T* data() { return ptr_.get(); }
  const T* data() const { return ptr_.get(); }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T[], Free> ptr_;
  int64_t size_ = 0;
};

using FloatBuffer = AlignedBuffer<float>;

}  // namespace minnow::kernels
