#include "passes/fuse_qlinear_residual.h"

#include <map>

#include "passes/graph_uses.h"

namespace minnow {
namespace {

// QLinearAdd's inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
// y_zero_point (ops/qlinear_add.cpp). QLinearConv's: x, x_scale, x_zero_point, w, w_scale,
// w_zero_point, y_scale, y_zero_point, B, then the residual's sum, sum_scale, sum_zero_point
// and the Add's out_scale, out_zero_point (ops/qlinear_params.h).
constexpr size_t kConvInputs = 9, kConvYScale = 6;

const std::string& at(const std::vector<std::string>& v, size_t i) {
  static const std::string none;
  return i < v.size() ? v[i] : none;
}

}  // namespace

int fuse_qlinear_residual(Graph& graph) {
  const GraphUses uses(graph);
  const std::map<std::string, ValueInfo> info = graph.infer_shapes();
  std::vector<char> removed(graph.nodes.size(), 0);
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& add = graph.nodes[i];
    // With y_zero_point absent the Add's output takes a's dtype: require it, so the fused op's
    // output dtype is y_zero_point's either way.
    if (add.op != OpKind::kQLinearAdd || at(add.inputs, 7).empty() || add.outputs.size() != 1) {
      continue;
    }
    for (size_t k = 0; k < 2; ++k) {
      const size_t mine = 3 * k, other = 3 * (1 - k);  // a at 0, b at 3
      const std::string& conv_out = add.inputs[mine];
      const std::string& residual = add.inputs[other];
      auto w = uses.writer.find(conv_out);
      if (conv_out == residual || w == uses.writer.end() || removed[w->second] ||
          !uses.only_internal_reader(conv_out)) {
        continue;
      }
      Node& conv = graph.nodes[w->second];
      // A convolution with a quantized output, no activation and no residual yet.
      if (conv.op != OpKind::kQLinearConv || conv.outputs.size() != 1 ||
          conv.inputs.size() > kConvInputs || at(conv.inputs, kConvYScale).empty() ||
          conv.attrs.has("activation")) {
        continue;
      }
      // The residual must exist when the convolution runs: a graph input, a constant, or the
      // output of an earlier node; and it must be what the Add reads, element for element.
      auto rw = uses.writer.find(residual);
      if (rw != uses.writer.end() && rw->second >= w->second) continue;
      const ValueInfo& r = info.at(residual);
      const ValueInfo& y = info.at(add.outputs[0]);
      if (r.shape != info.at(conv_out).shape || r.shape.size() != 4 ||
          (r.dtype != DType::kU8 && r.dtype != DType::kI8) || y.shape != r.shape) {
        continue;
      }
      // The convolution keeps its own output parameters (its rounding stays, so the fused op
      // computes what the two did) and takes the residual's and the Add's.
      conv.inputs.resize(kConvInputs + 5);  // an absent bias stays ""
      conv.inputs[kConvInputs] = residual;
      conv.inputs[kConvInputs + 1] = add.inputs[other + 1];
      conv.inputs[kConvInputs + 2] = at(add.inputs, other + 2);
      conv.inputs[kConvInputs + 3] = add.inputs[6];
      conv.inputs[kConvInputs + 4] = at(add.inputs, 7);
      if (add.attrs.has("activation")) {
        conv.attrs.set("activation", add.attrs.get_string("activation", ""));
      }
      conv.outputs[0] = add.outputs[0];
      removed[i] = 1;
      ++fused;
      break;
    }
  }
  if (fused) remove_nodes(graph, removed);
  return fused;
}

}  // namespace minnow
