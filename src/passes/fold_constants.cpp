#include "passes/fold_constants.h"

#include "core/op_registry.h"
#include "passes/graph_uses.h"

namespace minnow {

std::vector<Tensor> evaluate_node(const Node& n, std::vector<Tensor> inputs) {
  std::vector<ValueInfo> in_info, out_info(n.outputs.size());
  for (size_t k = 0; k < inputs.size(); ++k) {
    in_info.push_back(
        {k < n.inputs.size() ? n.inputs[k] : "", inputs[k].dtype(), inputs[k].shape()});
  }
  InputInfos infos;
  for (size_t k = 0; k < in_info.size(); ++k) {
    infos.push_back(inputs[k].defined() ? &in_info[k] : nullptr);
  }
  for (size_t k = 0; k < n.outputs.size(); ++k) out_info[k].name = n.outputs[k];
  op_def(n.op).infer(n, infos, out_info);
  std::vector<Tensor> outs;
  for (const ValueInfo& v : out_info) outs.emplace_back(v.dtype, v.shape);
  std::vector<Tensor*> in_ptrs, out_ptrs;
  for (Tensor& t : inputs) in_ptrs.push_back(t.defined() ? &t : nullptr);
  for (Tensor& t : outs) out_ptrs.push_back(&t);
  RunContext ctx;
  make_kernel(n, infos, out_info, KernelChoice::kReference)->forward(in_ptrs, out_ptrs, ctx);
  return outs;
}

int fold_constants(Graph& graph, bool keep_dequantize) {
  const GraphUses uses(graph);
  std::vector<char> removed(graph.nodes.size(), 0);
  int folded = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& n = graph.nodes[i];
    if (n.op == OpKind::kDropout || n.inputs.empty()) continue;
    if (keep_dequantize && n.op == OpKind::kDequantizeLinear) continue;
    bool constant = true, graph_output = false;
    for (const std::string& v : n.inputs) {  // absent optional inputs ("") are no obstacle
      constant = constant && (v.empty() || graph.initializers.count(v));
    }
    for (const std::string& v : n.outputs)
      graph_output = graph_output || uses.graph_outputs.count(v);
    if (!constant || graph_output) continue;

    std::vector<Tensor> in_values;
    for (const std::string& v : n.inputs) {
      // Shares storage; kernels do not write their inputs in eval mode.
      in_values.push_back(v.empty() ? Tensor() : graph.initializers.at(v).value);
    }
    std::vector<Tensor> outs = evaluate_node(n, std::move(in_values));
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      graph.initializers[n.outputs[k]] = Initializer{outs[k], false};
    }
    removed[i] = 1;
    ++folded;
  }
  if (folded == 0) return 0;
  remove_nodes(graph, removed);
  remove_unread_initializers(graph);  // constants only the folded nodes read
  return folded;
}

}  // namespace minnow
