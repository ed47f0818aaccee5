#include "onnx/onnx_import.h"

#include <climits>
#include <set>

#include "core/op_registry.h"
#include "io/atomic_file.h"
#include "onnx/import_ops.h"
#include "onnx/onnx_tensor.h"
#include "passes/graph_uses.h"

namespace minnow::onnx {

const ConverterTable& converters() {
  static const ConverterTable table = [] {
    ConverterTable t;
    add_nn_converters(t);
    add_tensor_converters(t);
    add_quant_converters(t);
    add_rnn_converters(t);
    return t;
  }();
  return table;
}

int64_t onnx_axis(ImportContext& cx, int64_t axis, int64_t rank, const char* what) {
  if (axis < -rank || axis >= rank) {
    cx.fail(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
            std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> const_ints(ImportContext& cx, const std::string& name,
                                const std::string& role) {
  const Tensor& t = cx.const_value(name, role);
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (t.dtype() == DType::kI64) {
      v.push_back(static_cast<const int64_t*>(t.raw())[i]);
    } else if (t.dtype() == DType::kI32) {
      v.push_back(static_cast<const int32_t*>(t.raw())[i]);
    } else {
      cx.fail(role + " '" + name + "' must be an integer tensor");
    }
  }
  return v;
}

double const_scalar(ImportContext& cx, const std::string& name, const std::string& role) {
  const Tensor& t = cx.const_value(name, role);
  if (t.numel() != 1) cx.fail(role + " '" + name + "' must hold one value");
  return element_as_double(t, 0);
}

namespace {

// Drops nodes whose outputs nothing reads (nor the caller), and then the initializers left
// unread: converters that fold a value at import (LSTM / GRU weights given as DequantizeLinear of
// constants) leave the nodes that computed it behind.
void remove_dead_nodes(Graph& g) {
  for (bool again = true; again;) {
    again = false;
    const GraphUses uses(g);
    std::vector<char> dead(g.nodes.size(), 0);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      bool read = false;
      for (const std::string& o : g.nodes[i].outputs) {
        read = read || (!o.empty() && (uses.readers.count(o) || uses.graph_outputs.count(o)));
      }
      dead[i] = !read;
      again = again || dead[i];
    }
    if (again) remove_nodes(g, dead);
  }
  remove_unread_initializers(g);
}

// Ops evaluated at import only (their results are always constants).
bool fold_only(const std::string& op) {
  return op == "Constant" || op == "Shape" || op == "Size" || op == "ConstantOfShape";
}

int default_opset(const ::onnx::ModelProto& m, const std::string& origin) {
  int64_t opset = -1;
  for (const auto& o : m.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  }
  if (opset < 0) throw Error(origin + ": the model imports no version of the default ONNX domain");
  if (opset < 7 || opset > 18) {
    throw Unsupported(origin + ": opset " + std::to_string(opset) +
                      " (minnow reads opsets 7-18; 11-17 are tested)");
  }
  return static_cast<int>(opset);
}

// One message listing every op minnow cannot import, with the nodes that use it.
void check_ops(const ::onnx::GraphProto& g, const std::string& origin) {
  std::map<std::string, std::vector<std::string>> missing;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    std::string op = n.op_type();
    const bool std_domain = n.domain().empty() || n.domain() == "ai.onnx";
    if (!std_domain) op = n.domain() + "." + op;
    if (std_domain && (converters().count(op) || fold_only(op))) continue;
    missing[op].push_back(n.name().empty() ? "#" + std::to_string(i) : n.name());
  }
  if (missing.empty()) return;
  std::string msg = origin + ": unsupported ONNX ops: ";
  bool first = true;
  for (const auto& [op, nodes] : missing) {
    msg += (first ? "" : "; ") + op + " (node" + (nodes.size() > 1 ? "s " : " ");
    for (size_t i = 0; i < nodes.size() && i < 5; ++i) msg += (i ? ", " : "") + nodes[i];
    if (nodes.size() > 5) msg += ", ... " + std::to_string(nodes.size()) + " in all";
    msg += ")";
    first = false;
  }
  throw Unsupported(msg);
}

ValueInfo input_info(const ::onnx::ValueInfoProto& v, const std::string& origin,
                     const ImportOptions& opts) {
  const std::string what = origin + ": input '" + v.name() + "'";
  if (!v.type().has_tensor_type()) throw Unsupported(what + " is not a tensor");
  const auto& tt = v.type().tensor_type();
  std::optional<DType> dt = dtype_from_onnx(tt.elem_type());
  if (!dt) throw Unsupported(what + " has element type " + onnx_type_name(tt.elem_type()));
  if (!tt.has_shape()) throw Unsupported(what + " has no shape");
  ValueInfo info{v.name(), *dt, {}};
  for (int i = 0; i < tt.shape().dim_size(); ++i) {
    const auto& d = tt.shape().dim(i);
    if (d.has_dim_value() && d.dim_value() >= 0 && !(i == 0 && opts.dynamic_batch)) {
      info.shape.push_back(d.dim_value());
    } else if (i == 0) {
      info.shape.push_back(kDynamic);
    } else {
      throw Unsupported(what + " has symbolic dimension " + std::to_string(i) + " ('" +
                        d.dim_param() +
                        "'); minnow needs every dimension but the "
                        "first (the batch) to be known");
    }
  }
  return info;
}

}  // namespace

Graph import_onnx_bytes(const void* data, size_t size, const std::string& origin,
                        const ImportOptions& opts) {
  if (size > static_cast<size_t>(INT_MAX)) throw Error(origin + ": file larger than 2 GB");
  ::onnx::ModelProto m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) {
    throw Error(origin + ": not a valid ONNX model (protobuf parse failed)");
  }
  if (!m.has_graph()) throw Error(origin + ": the model has no graph");
  const ::onnx::GraphProto& gp = m.graph();
  check_ops(gp, origin);
  const int opset = default_opset(m, origin);

  Graph g;
  g.name = gp.name().empty() ? "onnx_model" : gp.name();
  ImportContext cx(g, opset, origin);
  std::set<std::string> init_names;
  for (const auto& t : gp.initializer()) {
    if (t.name().empty()) throw Error(origin + ": an initializer has no name");
    if (!init_names.insert(t.name()).second) {
      throw Error(origin + ": initializer '" + t.name() + "' is defined twice");
    }
    Tensor v = tensor_from_proto(t, origin + ": initializer '" + t.name() + "'");
    cx.set_const(t.name(), std::move(v), dtype_is_float(dtype_from_onnx(t.data_type()).value()));
  }
  for (const auto& in : gp.input()) {
    if (init_names.count(in.name())) continue;  // IR < 4: initializers are listed as inputs too
    if (in.name().empty()) throw Error(origin + ": a graph input has no name");
    if (cx.has_value(in.name()))
      throw Error(origin + ": input '" + in.name() + "' is defined twice");
    cx.add_input(input_info(in, origin, opts));
  }
  if (g.inputs.empty()) throw Unsupported(origin + ": a model without inputs (all constant)");
  std::set<std::string> outputs;
  for (const auto& o : gp.output()) outputs.insert(o.name());
  cx.set_graph_outputs(outputs);
  std::set<std::string> read;
  for (const auto& n : gp.node())
    for (const std::string& in : n.input()) read.insert(in);
  cx.set_read_values(std::move(read));

  for (int i = 0; i < gp.node_size(); ++i) {
    const ::onnx::NodeProto& n = gp.node(i);
    cx.begin_node(n, static_cast<size_t>(i));
    for (const std::string& in : n.input()) {
      if (!in.empty() && !cx.has_value(in)) {
        cx.fail("reads '" + in +
                "', which no earlier node, input or initializer defines "
                "(a dangling name, a cycle, or nodes out of topological order)");
      }
    }
    for (const std::string& out : n.output()) {
      if (!out.empty() && cx.has_value(out)) cx.fail("redefines value '" + out + "'");
    }
    if (try_fold(cx)) continue;
    if (fold_only(n.op_type())) cx.unsupported("cannot evaluate this node at import");
    converters().at(n.op_type())(cx);
    for (const std::string& out : n.output()) {
      if (!out.empty() && cx.is_read(out) && !cx.has_value(out)) {
        cx.fail("internal: output '" + out + "' not produced");
      }
    }
  }

  for (const auto& o : gp.output()) {
    if (!cx.has_value(o.name()))
      throw Error(origin + ": graph output '" + o.name() + "' is never computed");
    std::string m_name = cx.value(o.name());
    const bool is_input = std::any_of(g.inputs.begin(), g.inputs.end(),
                                      [&](const ValueInfo& v) { return v.name == m_name; });
    if (m_name != o.name() || is_input || g.initializers.count(m_name)) {
      // Outputs keep their ONNX names: a value known under another name gets an Identity.
      OpKind identity;
      try {
        identity = op_kind_from_name("Identity");
      } catch (const Error&) {
        throw Unsupported(origin + ": output '" + o.name() + "' is a constant or an alias");
      }
      cx.emit1(identity, {m_name}, {}, o.name());
      m_name = o.name();
    }
    g.outputs.push_back(cx.infos().at(m_name));
  }
  remove_dead_nodes(g);
  g.validate();
  return g;
}

Graph import_onnx_file(const std::string& path, const ImportOptions& opts) {
  const std::string bytes = io::read_file(path);
  return import_onnx_bytes(bytes.data(), bytes.size(), path, opts);
}

}  // namespace minnow::onnx
