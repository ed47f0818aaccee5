// Helpers for the quantized op tests (QuantizeLinear, DequantizeLinear, QLinearAdd,
// QLinearGlobalAvgPool, quantized MaxPool): integer tensors from literals, their values back,
// random quantized data, byte-exact comparison and errors that must name the node.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "dense_test_util.h"
#include "minnow/error.h"

namespace minnow::testing::quant_test {

// u8 / i8 / i32 tensor with the given values (stored unchecked: tests pick in-range values).
inline Tensor qtensor(DType dtype, Shape shape, const std::vector<int64_t>& values) {
  Tensor t(dtype, std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), values.size());
  for (int64_t i = 0; i < t.numel() && i < static_cast<int64_t>(values.size()); ++i) {
    switch (dtype) {
      case DType::kU8:
        static_cast<uint8_t*>(t.raw())[i] = static_cast<uint8_t>(values[i]);
        break;
      case DType::kI8:
        static_cast<int8_t*>(t.raw())[i] = static_cast<int8_t>(values[i]);
        break;
      case DType::kI32:
        static_cast<int32_t*>(t.raw())[i] = static_cast<int32_t>(values[i]);
        break;
      default:
        ADD_FAILURE() << "qtensor: not an integer dtype";
    }
  }
  return t;
}

inline Tensor ftensor(Shape shape, const std::vector<float>& values) {
  Tensor t(DType::kF32, std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), values.size());
  for (int64_t i = 0; i < t.numel() && i < static_cast<int64_t>(values.size()); ++i) {
    t.f32()[i] = values[i];
  }
  return t;
}

// Scalar ([]) scale and zero point.
inline Tensor scale(float s) { return ftensor({}, {s}); }
inline Tensor zp(DType dtype, int64_t v) { return qtensor(dtype, {}, {v}); }

inline std::vector<int64_t> ints_of(const Tensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype()) {
      case DType::kU8:
        v[i] = static_cast<const uint8_t*>(t.raw())[i];
        break;
      case DType::kI8:
        v[i] = static_cast<const int8_t*>(t.raw())[i];
        break;
      case DType::kI32:
        v[i] = static_cast<const int32_t*>(t.raw())[i];
        break;
      default:
        ADD_FAILURE() << "ints_of: not an integer dtype";
    }
  }
  return v;
}

inline std::vector<float> floats_of(const Tensor& t) {
  return std::vector<float>(t.f32(), t.f32() + t.numel());
}

// Uniform random integers in [lo, hi] of an integer dtype.
inline Tensor random_q(DType dtype, Shape shape, Rng& rng, int lo, int hi) {
  Tensor t(dtype, std::move(shape));
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (auto& x : v) x = lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo + 1)));
  return qtensor(dtype, t.shape(), v);
}

// Same dtype, shape and bytes.
inline void expect_identical(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  ASSERT_EQ(a.shape(), b.shape()) << what;
  if (std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0) return;
  const size_t es = dtype_size(a.dtype());
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (std::memcmp(static_cast<const char*>(a.raw()) + i * es,
                    static_cast<const char*>(b.raw()) + i * es, es) != 0) {
      ADD_FAILURE() << what << ": first difference at element " << i;
      return;
    }
  }
}

// Runs the node with the reference or the fast kernel; returns the single output.
inline Tensor run1(const Node& n, const std::vector<Tensor>& inputs,
                   KernelChoice choice = KernelChoice::kReference) {
  return dense::run(n, inputs, dense::opts().kernel(choice)).outputs[0];
}

// Expects a minnow::Error naming the node under test and containing `part`.
inline void expect_node_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected an Error containing '" << part << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("node_under_test"), std::string::npos)
        << "message does not name the node: " << msg;
    EXPECT_NE(msg.find(part), std::string::npos) << "message lacks '" << part << "': " << msg;
  }
}

}  // namespace minnow::testing::quant_test
