// Helpers for the shape-op tests (test_shape_ops.cpp, test_slice_pad_gather.cpp): tensors of any
// dtype from doubles, a coordinate-by-coordinate oracle for ops that move elements, and a check
// that an Error names the node.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "elementwise_test_util.h"
#include "ops/dtype_dispatch.h"

namespace minnow::testing {

inline Tensor typed_tensor(Shape shape, const std::vector<double>& values, DType dtype) {
  Tensor t(dtype, std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), values.size());
  ops::dispatch_any(dtype, [&]<class T>() {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(values[i]);
  });
  return t;
}

inline std::vector<double> typed_values(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  ops::dispatch_any(t.dtype(), [&]<class T>() {
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = static_cast<double>(t.data<T>()[i]);
  });
  return v;
}

inline std::vector<double> iota_values(int64_t n, double start = 0) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i);
  return v;
}

// Maps output coordinates to input coordinates; returns false for "no input" (padding).
using CoordMap = std::function<bool(const std::vector<int64_t>& out, std::vector<int64_t>& in)>;

// Expected output values by visiting every output coordinate and reading the input there.
inline std::vector<double> naive_gather(const Tensor& x, const Shape& out, const CoordMap& map,
                                        double fill = 0) {
  const std::vector<double> xv = typed_values(x);
  const Shape& xs = x.shape();
  std::vector<double> y;
  std::vector<int64_t> o(out.size(), 0), i(xs.size(), 0);
  const int64_t n = shape_numel(out);
  for (int64_t k = 0; k < n; ++k) {
    if (map(o, i)) {
      int64_t off = 0;
      for (size_t d = 0; d < xs.size(); ++d) {
        EXPECT_TRUE(i[d] >= 0 && i[d] < xs[d]) << "oracle coordinate out of range";
        off = off * xs[d] + i[d];
      }
      y.push_back(xv[off]);
    } else {
      y.push_back(fill);
    }
    for (size_t d = out.size(); d-- > 0;) {
      if (++o[d] < out[d]) break;
      o[d] = 0;
    }
  }
  return y;
}

// Runs `f`, expecting a minnow::Error whose message names node "n" and contains `part`.
inline void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected an Error containing '" << part << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'n'"), std::string::npos) << "message does not name the node: " << msg;
    EXPECT_NE(msg.find(part), std::string::npos) << "message lacks '" << part << "': " << msg;
  }
}

// Infer with inputs of the given dtypes and shapes; returns the single output.
inline ValueInfo infer_one(Node node, const std::vector<ValueInfo>& inputs) {
  InputInfos ptrs;
  node.inputs.clear();
  for (const ValueInfo& v : inputs) {
    ptrs.push_back(&v);
    node.inputs.push_back(v.name);
  }
  node.outputs = {"y0"};
  std::vector<ValueInfo> out(1);
  out[0].name = "y0";
  op_def(node.op).infer(node, ptrs, out);
  return out[0];
}

}  // namespace minnow::testing
