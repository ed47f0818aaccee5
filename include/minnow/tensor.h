// Tensor: a dense, 64-byte aligned, reference-counted n-d array.
//
// Copies share storage (like a shared_ptr); clone() makes a deep copy. Quantized int8/uint8
// tensors carry their quantization parameters in `quant`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "minnow/dtype.h"

namespace minnow {

using Shape = std::vector<int64_t>;

// Marks the symbolic batch dimension in graph value shapes. Concrete tensors never hold it.
inline constexpr int64_t kDynamic = -1;

int64_t shape_numel(const Shape& s);    // product of dims; -1 if any dim is kDynamic
std::string shape_str(const Shape& s);  // "[N,1,28,28]" with N for kDynamic

struct QuantParams {
  std::vector<float> scale;         // one per tensor, or one per channel along `axis`
  std::vector<int32_t> zero_point;  // same length as scale
  int axis = -1;                    // -1: per tensor
  bool empty() const { return scale.empty(); }
};

class Tensor {
 public:
  Tensor() = default;
  // Allocates zero-filled storage. Throws minnow::Error for negative or absurd sizes.
  Tensor(DType dtype, Shape shape);
  // A tensor over existing storage (at least nbytes, suitably aligned), not copied and not
  // cleared; the shared_ptr keeps it alive (an aliasing shared_ptr can point into an arena).
  static Tensor wrap(DType dtype, Shape shape, std::shared_ptr<std::byte[]> storage);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + rank() : i]; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  void* raw() { return storage_.get(); }
  const void* raw() const { return storage_.get(); }
  template <class T>
  T* data() {
    check_type(sizeof(T), is_float_type<T>());
    return reinterpret_cast<T*>(storage_.get());
  }
  template <class T>
  const T* data() const {
    check_type(sizeof(T), is_float_type<T>());
    return reinterpret_cast<const T*>(storage_.get());
  }
  float* f32() { return data<float>(); }
  const float* f32() const { return data<float>(); }

  // Changes the shape; reallocates only if the new size exceeds the capacity. Contents are
  // unspecified afterwards. Used to reuse activation buffers across steps.
  void resize(const Shape& shape);
  // Same element count, new shape; shares storage.
  Tensor reshaped(const Shape& shape) const;
  Tensor clone() const;
  void fill_zero();

  QuantParams quant;

 private:
  template <class T>
  static constexpr bool is_float_type() {
    return std::is_floating_point_v<T>;
  }
  void check_type(size_t elem_size, bool is_float) const;

  std::shared_ptr<std::byte[]> storage_;
  size_t capacity_ = 0;  // bytes
  DType dtype_ = DType::kF32;
  Shape shape_;
  int64_t numel_ = 0;
};

}  // namespace minnow
