#include "onnx/export_context.h"

#include <cmath>

#include "core/op_registry.h"
#include "minnow/error.h"
#include "onnx/onnx_tensor.h"

namespace minnow::onnx {

ExportContext::ExportContext(const Graph& g, const ExportOptions& opts, ::onnx::GraphProto* out)
    : g_(g),
      opts_(opts),
      out_(out),
      infos_(opts.dynamic_batch ? g.infer_shapes() : g.infer_shapes(opts.static_batch)) {
  for (const ValueInfo& v : g.inputs) used_.insert(v.name);
  for (const auto& [name, init] : g.initializers) used_.insert(name);
  for (const Node& n : g.nodes) {
    for (const std::string& o : n.outputs) used_.insert(o);
  }
}

const ValueInfo& ExportContext::info(const std::string& value) const {
  auto it = infos_.find(value);
  if (it == infos_.end()) throw Error("ONNX export: value '" + value + "' has no inferred shape");
  return it->second;
}

const Tensor* ExportContext::initializer(const std::string& value) const {
  auto it = g_.initializers.find(value);
  return it == g_.initializers.end() ? nullptr : &it->second.value;
}

std::string ExportContext::fresh(const std::string& base) {
  std::string name = base;
  for (int i = 1; used_.count(name); ++i) name = base + "_" + std::to_string(i);
  used_.insert(name);
  return name;
}

::onnx::NodeProto* ExportContext::add_node(const std::string& op_type,
                                           const std::vector<std::string>& inputs,
                                           const std::vector<std::string>& outputs,
                                           const std::string& name) {
  ::onnx::NodeProto* n = out_->add_node();
  n->set_op_type(op_type);
  n->set_name(name);
  for (const std::string& i : inputs) n->add_input(i);
  for (const std::string& o : outputs) n->add_output(o);
  return n;
}

std::string ExportContext::add_constant(const Tensor& t, const std::string& base) {
  const std::string name = fresh(base);
  tensor_to_proto(t, name, out_->add_initializer());
  return name;
}

std::string ExportContext::const_i64(const std::vector<int64_t>& v, const std::string& base) {
  Tensor t(DType::kI64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return add_constant(t, base);
}

std::string ExportContext::const_scalar(DType dt, double v, const std::string& base) {
  Tensor t(dt, {});
  if (dt == DType::kF64) {
    t.data<double>()[0] = v;
  } else if (dt == DType::kF32) {
    t.f32()[0] = static_cast<float>(v);
  } else {
    throw Error("ONNX export: a float constant '" + base + "' was asked for dtype " +
                std::string(dtype_name(dt)));
  }
  return add_constant(t, base);
}

namespace {

::onnx::AttributeProto* new_attr(::onnx::NodeProto* n, const std::string& key,
                                 ::onnx::AttributeProto::AttributeType type) {
  ::onnx::AttributeProto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(type);
  return a;
}

}  // namespace

void set_attr(::onnx::NodeProto* n, const std::string& key, int64_t v) {
  new_attr(n, key, ::onnx::AttributeProto::INT)->set_i(v);
}

void set_attr(::onnx::NodeProto* n, const std::string& key, double v) {
  new_attr(n, key, ::onnx::AttributeProto::FLOAT)->set_f(static_cast<float>(v));
}

void set_attr(::onnx::NodeProto* n, const std::string& key, const std::string& v) {
  new_attr(n, key, ::onnx::AttributeProto::STRING)->set_s(v);
}

void set_attr(::onnx::NodeProto* n, const std::string& key, const std::vector<int64_t>& v) {
  ::onnx::AttributeProto* a = new_attr(n, key, ::onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void set_attr(::onnx::NodeProto* n, const std::string& key, const std::vector<double>& v) {
  ::onnx::AttributeProto* a = new_attr(n, key, ::onnx::AttributeProto::FLOATS);
  for (double x : v) a->add_floats(static_cast<float>(x));
}

void export_fail(const Node& n, const std::string& what) {
  throw Error("ONNX export: node '" + n.name + "' (" + op_def(n.op).name + "): " + what);
}

std::string fused_output(ExportContext& cx, const Node& n, const std::string& out) {
  const std::string act = n.attrs.get_string("activation", "");
  if (act.empty()) return out;
  if (act != "relu" && act != "relu6") {
    export_fail(n, "attribute activation must be \"\", \"relu\" or \"relu6\", got \"" + act + "\"");
  }
  return cx.fresh(out + "_preact");
}

void emit_fused_activation(ExportContext& cx, const Node& n, const std::string& raw,
                           const std::string& out) {
  if (raw == out) return;
  const std::string act = n.attrs.get_string("activation", "");
  if (act == "relu") {
    cx.add_node("Relu", {raw}, {out}, n.name + "/relu");
    return;
  }
  const DType dt = cx.info(out).dtype;
  cx.add_node("Clip",
              {raw, cx.const_scalar(dt, 0.0, n.name + "/clip_min"),
               cx.const_scalar(dt, 6.0, n.name + "/clip_max")},
              {out}, n.name + "/relu6");
}

}  // namespace minnow::onnx
