// State shared by the ONNX exporter's op emitters: the GraphProto being written, the minnow
// graph's inferred value infos, and helpers that add nodes, attributes and constant tensors
// under names that cannot collide with the graph's own.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "minnow/graph.h"
#include "onnx/onnx_export.h"

namespace minnow::onnx {

class ExportContext {
 public:
  ExportContext(const Graph& g, const ExportOptions& opts, ::onnx::GraphProto* out);

  const Graph& graph() const { return g_; }
  const ExportOptions& opts() const { return opts_; }
  int opset() const { return opts_.opset; }

  // Inferred dtype and shape of a minnow value; throws naming the value if unknown.
  const ValueInfo& info(const std::string& value) const;
  // The initializer holding `value`, or nullptr when it is computed.
  const Tensor* initializer(const std::string& value) const;

  // A value name not used by the minnow graph nor by anything exported so far.
  std::string fresh(const std::string& base);

  ::onnx::NodeProto* add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                              const std::vector<std::string>& outputs, const std::string& name);
  // Adds a tensor as an initializer named fresh(base); returns the name.
  std::string add_constant(const Tensor& t, const std::string& base);
  std::string const_i64(const std::vector<int64_t>& v, const std::string& base);
  // A rank-0 tensor of float dtype `dt` (the dtype of the value it combines with).
  std::string const_scalar(DType dt, double v, const std::string& base);

 private:
  const Graph& g_;
  ExportOptions opts_;
  ::onnx::GraphProto* out_;
  std::map<std::string, ValueInfo> infos_;
  std::set<std::string> used_;
};

void set_attr(::onnx::NodeProto* n, const std::string& key, int64_t v);
void set_attr(::onnx::NodeProto* n, const std::string& key, double v);
void set_attr(::onnx::NodeProto* n, const std::string& key, const std::string& v);
void set_attr(::onnx::NodeProto* n, const std::string& key, const std::vector<int64_t>& v);
void set_attr(::onnx::NodeProto* n, const std::string& key, const std::vector<double>& v);

// "node 'name' (Op): what" — the exporter's error messages.
[[noreturn]] void export_fail(const Node& n, const std::string& what);

// Emitters: each writes the ONNX nodes for one minnow node (export_ops.cpp,
// export_sequence.cpp). `emit_node` dispatches on the op.
void emit_node(ExportContext& cx, const Node& n);
void emit_lstm_gru(ExportContext& cx, const Node& n);
// Whether `value` is read only as an LSTM / GRU weight (inputs 1, 2), which emit_lstm_gru writes
// itself in ONNX's gate order: the DequantizeLinear writing it is then not exported.
bool only_recurrent_weights_read(const Graph& g, const std::string& value);
void emit_attention(ExportContext& cx, const Node& n);
// QLinearConv / QLinearLinear as ONNX QLinearConv / QLinearMatMul (export_qoperator.cpp).
void emit_qoperator(ExportContext& cx, const Node& n);
// A Conv2d-like node's attributes (kernel_shape from weights shape `w`, strides, pads,
// dilations, group) on ONNX node `p` (Conv, QLinearConv).
void set_conv_attrs(::onnx::NodeProto* p, const Node& n, const Shape& w);
// Fused activation (attribute "activation" of Conv2d/Linear/BatchNorm): fused_output returns the
// name the op's ONNX node writes (a fresh one when there is an activation, else `out`);
// emit_fused_activation then adds the Relu / Clip(0, 6) from that name into `out`.
std::string fused_output(ExportContext& cx, const Node& n, const std::string& out);
void emit_fused_activation(ExportContext& cx, const Node& n, const std::string& raw,
                           const std::string& out);
// A weight W [out, in] (any dtype) as the right operand of a MatMul (x W^T): an initializer is
// stored transposed, a computed weight goes through a Transpose node. Returns the ONNX value name.
std::string transposed_weight(ExportContext& cx, const Node& n, const std::string& w);

}  // namespace minnow::onnx
