// Helpers for the dense, norm, softmax and loss op tests: build nodes and tensors, run infer on
// (possibly symbolic, mixed-dtype) inputs, and run one kernel with chosen output gradients,
// keeping the inputs as the kernel left them (batch norm updates its running statistics).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "core/op_registry.h"
#include "core/rng.h"
#include "minnow/error.h"
#include "minnow/graph.h"

namespace minnow::testing::dense {

inline Node node(OpKind op, std::initializer_list<std::pair<std::string, AttrValue>> attrs = {}) {
  Node n;
  n.name = "node_under_test";
  n.op = op;
  for (const auto& [k, v] : attrs) n.attrs.set(k, v);
  return n;
}

inline Tensor tensor(Shape shape, const std::vector<double>& values, DType dtype = DType::kF32) {
  Tensor t(dtype, std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), values.size());
  for (int64_t i = 0; i < t.numel() && i < static_cast<int64_t>(values.size()); ++i) {
    if (dtype == DType::kF64) {
      t.data<double>()[i] = values[i];
    } else if (dtype == DType::kF32) {
      t.data<float>()[i] = static_cast<float>(values[i]);
    } else {
      t.data<int64_t>()[i] = static_cast<int64_t>(values[i]);
    }
  }
  return t;
}

inline Tensor labels(const std::vector<int64_t>& v) {
  Tensor t(DType::kI64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

inline std::vector<double> values_of(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    v[i] = t.dtype() == DType::kF64 ? t.data<double>()[i] : t.data<float>()[i];
  }
  return v;
}

// Output infos of `n` for the given inputs (an empty name marks an absent optional input).
inline std::vector<ValueInfo> infer(Node n, std::vector<ValueInfo> in) {
  InputInfos ptrs;
  n.inputs.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].name.empty()) in[i].name = "x" + std::to_string(i);
    n.inputs.push_back(in[i].name);
    ptrs.push_back(in[i].name.empty() ? nullptr : &in[i]);
  }
  std::vector<ValueInfo> out(1);
  out[0].name = "y0";
  n.outputs = {"y0"};
  op_def(n.op).infer(n, ptrs, out);
  return out;
}

inline ValueInfo info(Shape s, DType dtype = DType::kF32) { return ValueInfo{"v", dtype, s}; }

struct Run {
  std::vector<Tensor> inputs;  // as the kernel left them
  std::vector<Tensor> outputs;
  std::vector<Tensor> grads;  // per input; undefined where not requested
};

// Built fluently, e.g. opts().kernel(KernelChoice::kFast).train().grads({dy}).
struct RunOptions {
  KernelChoice choice = KernelChoice::kReference;
  bool training = false;
  std::vector<Tensor> grad_out;  // empty: forward only; undefined entries: zero gradient
  std::vector<bool> want_grad;   // per input; empty: every float input

  RunOptions& kernel(KernelChoice c) {
    choice = c;
    return *this;
  }
  RunOptions& train(bool t = true) {
    training = t;
    return *this;
  }
  RunOptions& grads(std::vector<Tensor> g) {
    grad_out = std::move(g);
    return *this;
  }
  RunOptions& want(std::vector<bool> w) {
    want_grad = std::move(w);
    return *this;
  }
};
inline RunOptions opts() { return RunOptions(); }

// Builds the kernel for `inputs` (undefined tensors are absent optional inputs), runs forward
// and, when grad_out is given, backward.
inline Run run(Node n, const std::vector<Tensor>& inputs, const RunOptions& opt = {}) {
  std::vector<ValueInfo> in_info;
  for (const Tensor& t : inputs) {
    in_info.push_back(t.defined() ? ValueInfo{"v", t.dtype(), t.shape()} : ValueInfo{});
  }
  std::vector<ValueInfo> out_info = infer(n, in_info);
  InputInfos ptrs;
  n.inputs.clear();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].defined()) in_info[i].name = "x" + std::to_string(i);
    n.inputs.push_back(in_info[i].name);
    ptrs.push_back(inputs[i].defined() ? &in_info[i] : nullptr);
  }
  n.outputs = {"y0"};
  auto kernel = make_kernel(n, ptrs, out_info, opt.choice);
  Run r;
  std::vector<Tensor*> in_p, out_p;
  for (const Tensor& t : inputs) r.inputs.push_back(t.defined() ? t.clone() : Tensor());
  for (Tensor& t : r.inputs) in_p.push_back(t.defined() ? &t : nullptr);
  for (const ValueInfo& v : out_info) r.outputs.emplace_back(v.dtype, v.shape);
  for (Tensor& t : r.outputs) out_p.push_back(&t);
  Rng rng(1);
  RunContext ctx{opt.training, &rng};
  kernel->forward(in_p, out_p, ctx);
  if (opt.grad_out.empty()) return r;
  std::vector<Tensor> gout = opt.grad_out;
  std::vector<Tensor*> gout_p, gin_p;
  for (Tensor& t : gout) gout_p.push_back(t.defined() ? &t : nullptr);
  r.grads.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool want = opt.want_grad.empty()
                          ? inputs[i].defined() && dtype_is_float(inputs[i].dtype())
                          : opt.want_grad[i];
    if (want) r.grads[i] = Tensor(inputs[i].dtype(), inputs[i].shape());
    gin_p.push_back(want ? &r.grads[i] : nullptr);
  }
  kernel->backward(in_p, out_p, gout_p, gin_p, ctx);
  return r;
}

inline void expect_values(const Tensor& t, const std::vector<double>& want, double tol,
                          const std::string& what) {
  ASSERT_TRUE(t.defined()) << what;
  std::vector<double> got = values_of(t);
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << what << " element " << i;
  }
}

}  // namespace minnow::testing::dense
