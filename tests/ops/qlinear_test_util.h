// Helpers for the QLinearConv / QLinearLinear tests: quantized random inputs, running one op
// with a chosen kernel, and comparing quantized outputs in steps.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "core/rng.h"

namespace minnow::testing {

inline Tensor random_q(DType dt, Shape shape, Rng& rng, int lo, int hi) {
  Tensor t(dt, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int v = lo + static_cast<int>(rng.below(static_cast<uint64_t>(hi - lo + 1)));
    if (dt == DType::kU8) {
      static_cast<uint8_t*>(t.raw())[i] = static_cast<uint8_t>(v);
    } else if (dt == DType::kI8) {
      static_cast<int8_t*>(t.raw())[i] = static_cast<int8_t>(v);
    } else {
      static_cast<int32_t*>(t.raw())[i] = v;
    }
  }
  return t;
}

inline Tensor f32_tensor(Shape shape, std::vector<float> v) {
  Tensor t(DType::kF32, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.f32()[i] = v[i];
  return t;
}

inline Tensor zp_tensor(DType dt, int v) {
  Tensor t(dt, {});
  if (dt == DType::kU8) {
    *static_cast<uint8_t*>(t.raw()) = static_cast<uint8_t>(v);
  } else {
    *static_cast<int8_t*>(t.raw()) = static_cast<int8_t>(v);
  }
  return t;
}

// Element i of an u8, i8, i32 or f32 tensor as a double.
inline double element(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kU8:
      return static_cast<const uint8_t*>(t.raw())[i];
    case DType::kI8:
      return static_cast<const int8_t*>(t.raw())[i];
    case DType::kI32:
      return static_cast<const int32_t*>(t.raw())[i];
    default:
      return static_cast<const float*>(t.raw())[i];
  }
}

// Runs `node` (inputs named by position, undefined tensors absent) with one kernel, once or
// `runs` times on the same kernel (later runs exercise the prepared state).
inline Tensor run_op(Node node, const std::vector<Tensor>& inputs, KernelChoice choice,
                     int runs = 1) {
  std::vector<ValueInfo> infos;
  node.inputs.clear();
  node.outputs = {"y"};
  if (node.name.empty()) node.name = "op_under_test";
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = inputs[i].defined() ? "in" + std::to_string(i) : "";
    node.inputs.push_back(name);
    infos.push_back(ValueInfo{name, inputs[i].dtype(), inputs[i].shape()});
  }
  InputInfos ptrs;
  for (size_t i = 0; i < inputs.size(); ++i)
    ptrs.push_back(inputs[i].defined() ? &infos[i] : nullptr);
  std::vector<ValueInfo> out(1);
  out[0].name = "y";
  op_def(node.op).infer(node, ptrs, out);
  auto kernel = make_kernel(node, ptrs, out, choice);
  Tensor y(out[0].dtype, out[0].shape);
  std::vector<Tensor*> in_ptrs, out_ptrs{&y};
  std::vector<Tensor> copies = inputs;
  for (Tensor& t : copies) in_ptrs.push_back(t.defined() ? &t : nullptr);
  RunContext ctx;
  for (int r = 0; r < runs; ++r) kernel->forward(in_ptrs, out_ptrs, ctx);
  return y;
}

// One kernel for `node` kept across calls (run_op makes a new one each time), with inputs shaped
// like `inputs` (named by position, undefined tensors absent) and the output it writes.
struct KernelUnderTest {
  std::unique_ptr<Kernel> kernel;
  Tensor y;

  KernelUnderTest(Node node, const std::vector<Tensor>& inputs, KernelChoice choice) {
    std::vector<ValueInfo> infos;
    node.inputs.clear();
    node.outputs = {"y"};
    if (node.name.empty()) node.name = "op_under_test";
    for (size_t i = 0; i < inputs.size(); ++i) {
      node.inputs.push_back(inputs[i].defined() ? "in" + std::to_string(i) : "");
      infos.push_back(ValueInfo{node.inputs[i], inputs[i].dtype(), inputs[i].shape()});
    }
    InputInfos ptrs;
    for (size_t i = 0; i < inputs.size(); ++i)
      ptrs.push_back(inputs[i].defined() ? &infos[i] : nullptr);
    std::vector<ValueInfo> out(1);
    op_def(node.op).infer(node, ptrs, out);
    kernel = make_kernel(node, ptrs, out, choice);
    y = Tensor(out[0].dtype, out[0].shape);
  }

  // Runs the kernel on `inputs` (the same shapes) into y.
  const Tensor& run(std::vector<Tensor>& inputs) {
    std::vector<Tensor*> in, out{&y};
    for (Tensor& t : inputs) in.push_back(t.defined() ? &t : nullptr);
    RunContext ctx;
    kernel->forward(in, out, ctx);
    return y;
  }
};

// Largest |a - b| over all elements (in quantization steps for integer outputs); counts of
// elements that differ at all go to `differing`.
inline double max_difference(const Tensor& a, const Tensor& b, int64_t* differing = nullptr) {
  EXPECT_EQ(a.shape(), b.shape());
  EXPECT_EQ(a.dtype(), b.dtype());
  double worst = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < a.numel() && a.numel() == b.numel(); ++i) {
    const double d = std::abs(element(a, i) - element(b, i));
    worst = std::max(worst, d);
    count += d > 0;
  }
  if (differing) *differing = count;
  return worst;
}

inline std::vector<float> dequantize(const Tensor& q, const std::vector<float>& scale,
                                     const std::vector<int>& zp, int64_t channel_stride,
                                     int64_t channels) {
  std::vector<float> out(static_cast<size_t>(q.numel()));
  for (int64_t i = 0; i < q.numel(); ++i) {
    const int64_t c = scale.size() == 1 ? 0 : (i / channel_stride) % channels;
    out[i] = static_cast<float>((element(q, i) - zp[scale.size() == 1 ? 0 : c]) * scale[c]);
  }
  return out;
}

}  // namespace minnow::testing
