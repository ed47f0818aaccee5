// ONNX export driver: validates the graph, drops the losses when asked, writes the value infos
// (symbolic batch as dim_param "N"), every initializer as raw data, then each node through its
// emitter (export_ops.cpp, export_sequence.cpp).
#include "onnx/onnx_export.h"

#include <set>

#include "core/op_registry.h"
#include "io/atomic_file.h"
#include "minnow/error.h"
#include "onnx/export_context.h"
#include "onnx/onnx_tensor.h"
#include "passes/lower_qdq.h"

namespace minnow::onnx {
namespace {

constexpr int kMinOpset = 13;
constexpr int kMaxOpset = 18;

bool is_loss(OpKind k) {
  return k == OpKind::kSoftmaxCrossEntropy || k == OpKind::kMseLoss ||
         k == OpKind::kBceWithLogits || k == OpKind::kDistillationLoss;
}

// The graph without its losses and whatever only they needed (nodes, inputs such as labels).
Graph without_losses(const Graph& g) {
  Graph out = g;
  std::set<std::string> loss_values;
  for (const Node& n : g.nodes) {
    if (is_loss(n.op)) loss_values.insert(n.outputs.begin(), n.outputs.end());
  }
  std::erase_if(out.outputs, [&](const ValueInfo& v) { return loss_values.count(v.name) != 0; });
  if (out.outputs.empty()) {
    throw Error("ONNX export: graph '" + g.name +
                "' has only loss outputs; nothing is left to "
                "export without them");
  }
  // Keep the nodes the remaining outputs depend on, walking back from them.
  std::set<std::string> needed;
  for (const ValueInfo& v : out.outputs) needed.insert(v.name);
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    bool used = false;
    for (const std::string& o : n.outputs) used = used || needed.count(o);
    if (!used) continue;
    keep[i] = true;
    for (const std::string& in : n.inputs) {
      if (!in.empty()) needed.insert(in);
    }
  }
  out.nodes.clear();
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (keep[i]) out.nodes.push_back(g.nodes[i]);
  }
  std::erase_if(out.inputs, [&](const ValueInfo& v) { return needed.count(v.name) == 0; });
  std::erase_if(out.initializers, [&](const auto& kv) { return needed.count(kv.first) == 0; });
  return out;
}

void write_value_info(const ValueInfo& v, const ExportOptions& opts, ::onnx::ValueInfoProto* p) {
  p->set_name(v.name);
  ::onnx::TypeProto_Tensor* tt = p->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(dtype_to_onnx(v.dtype));
  ::onnx::TensorShapeProto* shape = tt->mutable_shape();
  for (int64_t d : v.shape) {
    ::onnx::TensorShapeProto_Dimension* dim = shape->add_dim();
    if (d != kDynamic) {
      dim->set_dim_value(d);
    } else if (opts.dynamic_batch) {
      dim->set_dim_param("N");
    } else {
      dim->set_dim_value(opts.static_batch);
    }
  }
}

int ir_version_for(int opset) { return opset <= 14 ? 7 : 8; }

}  // namespace

std::string export_onnx_bytes(const Graph& graph, const ExportOptions& opts) {
  if (opts.opset < kMinOpset || opts.opset > kMaxOpset) {
    throw Error("ONNX export: opset " + std::to_string(opts.opset) +
                " is not supported (expected " + std::to_string(kMinOpset) + ".." +
                std::to_string(kMaxOpset) + ")");
  }
  if (!opts.dynamic_batch && opts.static_batch < 1) {
    throw Error("ONNX export: static batch size must be >= 1, got " +
                std::to_string(opts.static_batch));
  }
  graph.validate();
  Graph g = opts.drop_losses ? without_losses(graph) : graph;
  if (opts.qoperator) lower_qdq(g, {.qoperator_only = true});

  ::onnx::ModelProto model;
  model.set_ir_version(ir_version_for(opts.opset));
  model.set_producer_name("minnow");
  model.set_producer_version("0.1.0");
  ::onnx::OperatorSetIdProto* op = model.add_opset_import();
  op->set_domain("");
  op->set_version(opts.opset);
  ::onnx::GraphProto* gp = model.mutable_graph();
  gp->set_name(g.name.empty() ? "minnow" : g.name);

  ExportContext cx(g, opts, gp);
  for (const ValueInfo& v : g.inputs) write_value_info(cx.info(v.name), opts, gp->add_input());
  for (const ValueInfo& v : g.outputs) write_value_info(cx.info(v.name), opts, gp->add_output());
  for (const Node& n : g.nodes) emit_node(cx, n);
  // The graph's initializers that the ONNX nodes still read: weights that were written in
  // another form (transposed for MatMul, gates reordered for LSTM/GRU) are not kept twice.
  std::set<std::string> read;
  for (const ::onnx::NodeProto& n : gp->node()) read.insert(n.input().begin(), n.input().end());
  for (const ValueInfo& v : g.outputs) read.insert(v.name);
  for (const auto& [name, init] : g.initializers) {
    if (read.count(name)) tensor_to_proto(init.value, name, gp->add_initializer());
  }

  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    throw Error("ONNX export: graph '" + g.name + "' could not be serialized (over 2 GB?)");
  }
  return bytes;
}

void export_onnx_file(const Graph& g, const std::string& path, const ExportOptions& opts) {
  io::write_file_atomic(path, export_onnx_bytes(g, opts));
}

}  // namespace minnow::onnx
