// Small helpers for the activation, binary, layout and dropout op tests: build a node, run
// infer on (possibly symbolic) shapes, and run one kernel directly with chosen output gradients
// so tests can check hand-computed values of both forward and backward.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "core/op_registry.h"
#include "core/rng.h"
#include "minnow/error.h"
#include "minnow/graph.h"

namespace minnow::testing {

inline Node make_node(OpKind op,
                      std::initializer_list<std::pair<std::string, AttrValue>> attrs = {}) {
  Node n;
  n.name = "n";
  n.op = op;
  for (const auto& [k, v] : attrs) n.attrs.set(k, v);
  return n;
}

inline Tensor make_tensor(Shape shape, const std::vector<double>& values,
                          DType dtype = DType::kF32) {
  Tensor t(dtype, std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), values.size());
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::kF64) {
      t.data<double>()[i] = values[i];
    } else {
      t.data<float>()[i] = static_cast<float>(values[i]);
    }
  }
  return t;
}

inline std::vector<double> values_of(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    v[i] = t.dtype() == DType::kF64 ? t.data<double>()[i] : t.data<float>()[i];
  }
  return v;
}

// Output infos for inputs of the given dtype/shapes; throws minnow::Error as infer does.
inline std::vector<ValueInfo> infer_outputs(Node node, const std::vector<Shape>& shapes,
                                            int num_outputs = 1, DType dtype = DType::kF32) {
  std::vector<ValueInfo> in(shapes.size());
  InputInfos ptrs;
  node.inputs.clear();
  node.outputs.clear();
  for (size_t i = 0; i < shapes.size(); ++i) {
    in[i] = ValueInfo{"x" + std::to_string(i), dtype, shapes[i]};
    node.inputs.push_back(in[i].name);
  }
  for (ValueInfo& v : in) ptrs.push_back(&v);
  std::vector<ValueInfo> out(num_outputs);
  for (int i = 0; i < num_outputs; ++i) {
    out[i].name = "y" + std::to_string(i);
    node.outputs.push_back(out[i].name);
  }
  op_def(node.op).infer(node, ptrs, out);
  return out;
}

inline Shape infer_shape(Node node, const std::vector<Shape>& shapes) {
  return infer_outputs(std::move(node), shapes).at(0).shape;
}

struct KernelRun {
  std::vector<Tensor> outputs;
  std::vector<Tensor> grads;  // per input; empty when no backward was run
};

// Forward, then backward with `grad_out` when it is non-empty (undefined entries mean "no
// gradient for that output"). All inputs get a gradient.
inline KernelRun run_kernel(Node node, const std::vector<Tensor>& inputs,
                            const std::vector<Tensor>& grad_out = {}, int num_outputs = 1,
                            bool training = false, Rng* rng = nullptr,
                            KernelChoice choice = KernelChoice::kReference) {
  std::vector<Shape> shapes;
  for (const Tensor& t : inputs) shapes.push_back(t.shape());
  std::vector<ValueInfo> out_info =
      infer_outputs(node, shapes, num_outputs, inputs.empty() ? DType::kF32 : inputs[0].dtype());
  std::vector<ValueInfo> in_info;
  InputInfos in_ptrs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    in_info.push_back(ValueInfo{"x" + std::to_string(i), inputs[i].dtype(), inputs[i].shape()});
  }
  for (ValueInfo& v : in_info) in_ptrs.push_back(&v);
  auto kernel = make_kernel(node, in_ptrs, out_info, choice);
  KernelRun r;
  std::vector<Tensor> ins;
  std::vector<Tensor*> in_p, out_p;
  for (const Tensor& t : inputs) ins.push_back(t.clone());
  for (Tensor& t : ins) in_p.push_back(&t);
  for (const ValueInfo& v : out_info) r.outputs.emplace_back(v.dtype, v.shape);
  for (Tensor& t : r.outputs) out_p.push_back(&t);
  Rng default_rng(1);
  RunContext ctx{training, rng ? rng : &default_rng};
  kernel->forward(in_p, out_p, ctx);
  if (grad_out.empty()) return r;
  std::vector<Tensor> gout = grad_out;
  std::vector<Tensor*> gout_p, gin_p;
  for (Tensor& t : gout) gout_p.push_back(t.defined() ? &t : nullptr);
  for (const Tensor& t : inputs) r.grads.emplace_back(t.dtype(), t.shape());
  for (Tensor& t : r.grads) gin_p.push_back(&t);
  kernel->backward(in_p, out_p, gout_p, gin_p, ctx);
  return r;
}

inline void expect_values(const Tensor& t, const std::vector<double>& want, double tol,
                          const std::string& what) {
  std::vector<double> got = values_of(t);
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], tol) << what << " element " << i;
  }
}

}  // namespace minnow::testing
