// Runs a two-output recurrent op (LSTM, GRU) with one kernel: the dense test runner infers a
// single output, these ops have y and h_last.
#pragma once

#include <string>
#include <vector>

#include "core/op_registry.h"
#include "core/rng.h"
#include "minnow/graph.h"

namespace minnow::testing::rnn {

struct Run {
  std::vector<Tensor> outputs;  // y, h_last
  std::vector<Tensor> grads;    // per input; undefined for lengths or when not requested
};

// grad_out: empty for forward only; an undefined entry is a null (zero) output gradient.
inline Run run(Node n, const std::vector<Tensor>& inputs, KernelChoice choice,
               const std::vector<Tensor>& grad_out = {}) {
  // An undefined tensor is an absent optional input (lengths before the int8 weights' scales).
  std::vector<ValueInfo> in_info;
  n.inputs.clear();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool present = inputs[i].defined();
    in_info.push_back(present
                          ? ValueInfo{"x" + std::to_string(i), inputs[i].dtype(), inputs[i].shape()}
                          : ValueInfo{});
    n.inputs.push_back(in_info.back().name);
  }
  InputInfos ptrs;
  for (size_t i = 0; i < in_info.size(); ++i) {
    ptrs.push_back(inputs[i].defined() ? &in_info[i] : nullptr);
  }
  n.outputs = {"y", "h_last"};
  std::vector<ValueInfo> out_info(2);
  out_info[0].name = "y";
  out_info[1].name = "h_last";
  op_def(n.op).infer(n, ptrs, out_info);
  auto kernel = make_kernel(n, ptrs, out_info, choice);
  Run r;
  std::vector<Tensor> ins;
  std::vector<Tensor*> in_p, out_p;
  for (const Tensor& t : inputs) ins.push_back(t.defined() ? t.clone() : Tensor());
  for (Tensor& t : ins) in_p.push_back(t.defined() ? &t : nullptr);
  for (const ValueInfo& v : out_info) r.outputs.emplace_back(v.dtype, v.shape);
  for (Tensor& t : r.outputs) out_p.push_back(&t);
  Rng rng(1);
  RunContext ctx{true, &rng};
  kernel->forward(in_p, out_p, ctx);
  if (grad_out.empty()) return r;
  std::vector<Tensor> gout = grad_out;
  std::vector<Tensor*> gout_p, gin_p;
  for (Tensor& t : gout) gout_p.push_back(t.defined() ? &t : nullptr);
  r.grads.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool want = inputs[i].defined() && dtype_is_float(inputs[i].dtype());
    if (want) r.grads[i] = Tensor(inputs[i].dtype(), inputs[i].shape());
    gin_p.push_back(want ? &r.grads[i] : nullptr);
  }
  kernel->backward(in_p, out_p, gout_p, gin_p, ctx);
  return r;
}

}  // namespace minnow::testing::rnn
