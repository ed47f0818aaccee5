#include "passes/fold_constants.h"

#include "core/op_registry.h"
#include "passes/graph_uses.h"

namespace minnow {

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

    std::vector<ValueInfo> in_info, out_info(n.outputs.size());
    std::vector<Tensor> in_values;
    for (const std::string& v : n.inputs) {
      const Tensor t = v.empty() ? Tensor() : graph.initializers.at(v).value;
      in_info.push_back({v, t.dtype(), t.shape()});
      in_values.push_back(t);  // shares storage; kernels do not write their inputs in eval
    }
    InputInfos infos;
    for (size_t k = 0; k < in_info.size(); ++k) {
      infos.push_back(n.inputs[k].empty() ? nullptr : &in_info[k]);
    }
    for (size_t k = 0; k < n.outputs.size(); ++k) out_info[k].name = n.outputs[k];
    op_def(n.op).infer(n, infos, out_info);
    std::vector<Tensor> outs;
    for (const ValueInfo& v : out_info) outs.emplace_back(v.dtype, v.shape);
    std::vector<Tensor*> in_ptrs, out_ptrs;
    for (Tensor& t : in_values) in_ptrs.push_back(t.defined() ? &t : nullptr);
    for (Tensor& t : outs) out_ptrs.push_back(&t);
    RunContext ctx;
    make_kernel(n, infos, out_info, KernelChoice::kReference)->forward(in_ptrs, out_ptrs, ctx);
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
