// The state of one ONNX import: the graph being built, what is known about every ONNX value
// (constant tensor, or minnow value with its inferred shape), and helpers the per-op converters
// share. Converters (import_ops_*.cpp) see one NodeProto at a time and emit minnow nodes.
#pragma once

#include <onnx/onnx_pb.h>

#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "minnow/error.h"
#include "minnow/graph.h"

namespace minnow::onnx {

// Thrown for valid ONNX that minnow cannot express (an op, dtype or attribute value it lacks).
// Still a minnow::Error; the importer collects these to list every unsupported op at once, and
// the conformance runner counts such models as skipped rather than failed.
class Unsupported : public Error {
 public:
  explicit Unsupported(const std::string& m) : Error(m) {}
};

// In folded shape arithmetic, an element equal to the symbolic batch (ONNX dim_param at dim 0).
inline constexpr int64_t kBatchDim = std::numeric_limits<int64_t>::min() + 11;

class ImportContext {
 public:
  ImportContext(Graph& g, int opset, std::string origin);

  Graph& graph() { return g_; }
  int opset() const { return opset_; }

  // The node being converted: its label for messages and a base for fresh value names.
  void begin_node(const ::onnx::NodeProto& n, size_t index);
  const std::string& node_label() const { return label_; }
  [[noreturn]] void fail(const std::string& what) const;
  [[noreturn]] void unsupported(const std::string& what) const;

  // --- values ---
  bool has_value(const std::string& onnx_name) const;
  bool is_const(const std::string& onnx_name) const;
  // The constant tensor of a value, or an Unsupported error naming the input's role.
  const Tensor& const_value(const std::string& onnx_name, const std::string& role) const;
  const Tensor* find_const(const std::string& onnx_name) const;
  // Shape and dtype of any value (constants included).
  ValueInfo info(const std::string& onnx_name) const;
  // The minnow value for an ONNX value: constants become initializers on first use.
  std::string value(const std::string& onnx_name);
  // Same, but a constant becomes a frozen (non-trainable) initializer: BN running statistics.
  std::string frozen_value(const std::string& onnx_name);

  void set_const(const std::string& onnx_name, Tensor t, bool trainable = false);
  // A zero-filled value whose shape involves the symbolic batch (PyTorch builds the zero initial
  // state of an RNN as ConstantOfShape(Concat(.., Shape(x)[0], ..))). Only consumers that
  // accept "zeros" (the recurrent converters: the default initial state) can read it.
  void set_symbolic_zeros(const std::string& onnx_name, ValueInfo info);
  bool is_symbolic_zeros(const std::string& onnx_name) const {
    return symbolic_zeros_.count(onnx_name) != 0;
  }
  // The ONNX value is the same as an existing minnow value (Identity, Dropout at inference).
  void alias(const std::string& onnx_name, const std::string& minnow_name);
  void add_input(const ValueInfo& v);

  // Appends a minnow node reading minnow values `inputs`, writing `outputs` (ONNX names, or
  // fresh ones when empty); returns the output names. Shapes are inferred at once.
  std::vector<std::string> emit(OpKind op, const std::vector<std::string>& inputs, Attrs attrs,
                                std::vector<std::string> outputs);
  std::string emit1(OpKind op, const std::vector<std::string>& inputs, Attrs attrs = {},
                    const std::string& output = "");
  // A new trainable-or-not initializer with a fresh name derived from `hint`.
  std::string add_initializer(const std::string& hint, Tensor t, bool trainable);
  std::string fresh(const std::string& hint);

  // --- the node's attributes ---
  const ::onnx::NodeProto& node() const { return *node_; }
  const ::onnx::AttributeProto* attr(const std::string& name) const;
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  double attr_float(const std::string& name, double fallback) const;
  std::string attr_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& name, std::vector<int64_t> fallback) const;
  std::vector<double> attr_floats(const std::string& name, std::vector<double> fallback) const;
  // Attributes the converter did not read and that are not at their default are unsupported:
  // call with the names the converter understands (anything else present is an error).
  void allow_attrs(std::initializer_list<const char*> names) const;

  // i-th input name ("" when absent or past the end) and output name.
  std::string in(int i) const;
  std::string out(int i) const;
  int num_outputs_used() const;  // outputs with non-empty names

  // Whether a value (by ONNX name) is a graph output (converters may not elide those).
  bool is_graph_output(const std::string& onnx_name) const {
    return graph_outputs_.count(onnx_name);
  }
  void set_graph_outputs(std::set<std::string> names) { graph_outputs_ = std::move(names); }
  // Whether any node or the graph output list reads the value (exporters name outputs that
  // nothing uses, e.g. PyTorch's LSTM Y_c).
  bool is_read(const std::string& onnx_name) const {
    return read_values_.count(onnx_name) || graph_outputs_.count(onnx_name);
  }
  void set_read_values(std::set<std::string> names) { read_values_ = std::move(names); }
  const std::map<std::string, ValueInfo>& infos() const { return info_; }

 private:
  Graph& g_;
  int opset_;
  std::string origin_;
  const ::onnx::NodeProto* node_ = nullptr;
  std::string label_;
  std::map<std::string, Tensor> consts_;
  std::map<std::string, ValueInfo> symbolic_zeros_;
  std::set<std::string> trainable_consts_;
  std::map<std::string, std::string> alias_;  // ONNX name -> minnow value name
  std::map<std::string, ValueInfo> info_;     // minnow value name -> inferred info
  std::set<std::string> used_names_;
  std::set<std::string> graph_outputs_;
  std::set<std::string> read_values_;
};

}  // namespace minnow::onnx
