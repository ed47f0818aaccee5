#include "minnow/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "minnow/error.h"

namespace minnow {
namespace {

// Upper bound on a single tensor allocation: protects against absurd sizes in untrusted files.
constexpr int64_t kMaxTensorBytes = int64_t{16} << 30;

std::shared_ptr<std::byte[]> allocate(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  return std::shared_ptr<std::byte[]>(static_cast<std::byte*>(p),
                                      [](std::byte* q) { std::free(q); });
}

int64_t checked_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("tensor shape " + shape_str(shape) + " has a negative dimension");
    if (d != 0 && n > kMaxTensorBytes / d) {
      throw Error("tensor shape " + shape_str(shape) + " is too large");
    }
    n *= d;
  }
  return n;
}

}  // namespace

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d == kDynamic) return -1;
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ",";
    out += s[i] == kDynamic ? std::string("N") : std::to_string(s[i]);
  }
  return out + "]";
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  numel_ = checked_numel(shape_);
  if (numel_ > kMaxTensorBytes / static_cast<int64_t>(dtype_size(dtype_))) {
    throw Error("tensor shape " + shape_str(shape_) + " is too large");
  }
  capacity_ = nbytes();
  storage_ = allocate(capacity_);
}

Tensor Tensor::wrap(DType dtype, Shape shape, std::shared_ptr<std::byte[]> storage) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = checked_numel(t.shape_);
  t.capacity_ = t.nbytes();
  t.storage_ = std::move(storage);
  return t;
}

void Tensor::check_type(size_t elem_size, bool is_float) const {
  bool ok = elem_size == dtype_size(dtype_) && is_float == dtype_is_float(dtype_);
  if (!ok)
    throw Error("tensor of dtype " + std::string(dtype_name(dtype_)) + " accessed as another type");
}

void Tensor::resize(const Shape& shape) {
  int64_t n = checked_numel(shape);
  size_t bytes = static_cast<size_t>(n) * dtype_size(dtype_);
  if (!storage_ || bytes > capacity_) {
    storage_ = allocate(bytes);
    capacity_ = bytes;
  }
  shape_ = shape;
  numel_ = n;
}

Tensor Tensor::reshaped(const Shape& shape) const {
  if (checked_numel(shape) != numel_) {
    throw Error("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  }
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  t.quant = quant;
  return t;
}

void Tensor::fill_zero() {
  if (storage_ && nbytes()) std::memset(storage_.get(), 0, nbytes());
}

}  // namespace minnow
