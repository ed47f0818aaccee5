// Whether a kernel's weights changed since it last prepared (packed) them.
//
// Weights are usually graph initializers. An inference session promises they never change
// (Kernel::set_constant_inputs); then a new address is the only change. Without that promise
// (a kernel run on its own, whose caller may rewrite the weights in place) the bytes are
// compared with a copy of those last prepared.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace minnow::kernels {

class WeightsWatch {
 public:
  explicit WeightsWatch(size_t bytes) : copy_(bytes) {}

  void set_constant(bool constant) { constant_ = constant; }

  // True on the first call and whenever w differs from the weights of the last call that
  // returned true; remembers w then.
  bool changed(const int8_t* w) {
    const bool changed =
        !seen_ || (constant_ ? w != address_ : std::memcmp(copy_.data(), w, copy_.size()) != 0);
    if (changed) {
      std::memcpy(copy_.data(), w, copy_.size());
      seen_ = true;
      address_ = w;
    }
    return changed;
  }
  // The weights of the last change (valid after the first call).
  const int8_t* copy() const { return copy_.data(); }

 private:
  std::vector<int8_t> copy_;
  bool constant_ = false, seen_ = false;
  const int8_t* address_ = nullptr;
};

}  // namespace minnow::kernels
