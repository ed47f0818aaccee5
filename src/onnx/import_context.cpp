#include "onnx/import_context.h"

#include "core/op_registry.h"

namespace minnow::onnx {

using ::onnx::AttributeProto;

ImportContext::ImportContext(Graph& g, int opset, std::string origin)
    : g_(g), opset_(opset), origin_(std::move(origin)) {}

void ImportContext::begin_node(const ::onnx::NodeProto& n, size_t index) {
  node_ = &n;
  std::string name = n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name();
  label_ = "node '" + name + "' (" + n.op_type() + ")";
}

void ImportContext::fail(const std::string& what) const {
  throw Error(origin_ + ": " + label_ + ": " + what);
}

void ImportContext::unsupported(const std::string& what) const {
  throw Unsupported(origin_ + ": " + label_ + ": " + what);
}

bool ImportContext::has_value(const std::string& name) const {
  return consts_.count(name) || alias_.count(name) || info_.count(name) ||
         symbolic_zeros_.count(name);
}

void ImportContext::set_symbolic_zeros(const std::string& name, ValueInfo info) {
  info.name = name;
  symbolic_zeros_[name] = std::move(info);
}

bool ImportContext::is_const(const std::string& name) const { return consts_.count(name) != 0; }

const Tensor* ImportContext::find_const(const std::string& name) const {
  auto it = consts_.find(name);
  return it == consts_.end() ? nullptr : &it->second;
}

const Tensor& ImportContext::const_value(const std::string& name, const std::string& role) const {
  if (const Tensor* t = find_const(name)) return *t;
  if (!has_value(name)) fail(role + " '" + name + "' is not defined before this node");
  unsupported(role + " '" + name + "' must be a constant (an initializer or computable at import)");
}

ValueInfo ImportContext::info(const std::string& name) const {
  if (const Tensor* t = find_const(name)) return ValueInfo{name, t->dtype(), t->shape()};
  if (auto z = symbolic_zeros_.find(name); z != symbolic_zeros_.end()) return z->second;
  auto a = alias_.find(name);
  const std::string& m = a == alias_.end() ? name : a->second;
  auto it = info_.find(m);
  if (it == info_.end()) fail("input '" + name + "' is not defined before this node");
  return it->second;
}

std::string ImportContext::value(const std::string& name) {
  if (const Tensor* t = find_const(name)) {
    auto a = alias_.find(name);
    if (a != alias_.end()) return a->second;
    std::string m = used_names_.count(name) ? fresh(name) : name;
    used_names_.insert(m);
    g_.initializers[m] = Initializer{*t, trainable_consts_.count(name) != 0};
    info_[m] = ValueInfo{m, t->dtype(), t->shape()};
    alias_[name] = m;
    return m;
  }
  auto a = alias_.find(name);
  if (a != alias_.end()) return a->second;
  if (symbolic_zeros_.count(name)) {
    unsupported("'" + name + "' is a constant whose shape depends on the batch size");
  }
  if (!info_.count(name)) fail("input '" + name + "' is not defined before this node");
  return name;
}

std::string ImportContext::frozen_value(const std::string& name) {
  trainable_consts_.erase(name);
  return value(name);
}

void ImportContext::set_const(const std::string& name, Tensor t, bool trainable) {
  consts_[name] = std::move(t);
  if (trainable) trainable_consts_.insert(name);
}

void ImportContext::alias(const std::string& onnx_name, const std::string& minnow_name) {
  alias_[onnx_name] = minnow_name;
}

void ImportContext::add_input(const ValueInfo& v) {
  used_names_.insert(v.name);
  info_[v.name] = v;
  g_.inputs.push_back(v);
}

std::string ImportContext::fresh(const std::string& hint) {
  std::string base = hint.empty() ? "v" : hint;
  std::string name = base;
  for (int i = 1; used_names_.count(name) || consts_.count(name); ++i) {
    name = base + "_" + std::to_string(i);
  }
  used_names_.insert(name);
  return name;
}

std::vector<std::string> ImportContext::emit(OpKind op, const std::vector<std::string>& inputs,
                                             Attrs attrs, std::vector<std::string> outputs) {
  const OpDef& def = op_def(op);
  Node n;
  std::string base = node_ && !node_->name().empty() ? node_->name()
                     : node_                         ? node_->op_type()
                                                     : "node";
  n.name = base;
  for (int i = 1; g_.find_node(n.name); ++i) n.name = base + "_" + std::to_string(i);
  n.op = op;
  n.inputs = inputs;
  n.attrs = std::move(attrs);
  if (outputs.empty()) outputs.resize(def.num_outputs < 0 ? 1 : def.num_outputs);
  for (std::string& o : outputs) {
    if (o.empty()) {
      o = fresh(n.name + "/" + def.name);
    } else if (used_names_.count(o) || consts_.count(o)) {
      // An ONNX value name may already name a folded constant; keep minnow names unique.
      std::string onnx_name = o;
      o = fresh(o);
      alias_[onnx_name] = o;
    } else {
      used_names_.insert(o);
    }
  }
  n.outputs = outputs;
  InputInfos ins;
  std::vector<ValueInfo> outs(outputs.size());
  for (const std::string& i : inputs) {
    if (i.empty()) {
      ins.push_back(nullptr);
      continue;
    }
    auto it = info_.find(i);
    if (it == info_.end()) fail("internal: value '" + i + "' has no shape");
    ins.push_back(&it->second);
  }
  for (size_t i = 0; i < outs.size(); ++i) outs[i].name = outputs[i];
  try {
    def.infer(n, ins, outs);
  } catch (const Unsupported&) {
    throw;
  } catch (const Error& e) {
    fail(e.what());
  }
  for (ValueInfo& v : outs) info_[v.name] = v;
  g_.nodes.push_back(std::move(n));
  return outputs;
}

std::string ImportContext::emit1(OpKind op, const std::vector<std::string>& inputs, Attrs attrs,
                                 const std::string& output) {
  return emit(op, inputs, std::move(attrs), {output})[0];
}

std::string ImportContext::add_initializer(const std::string& hint, Tensor t, bool trainable) {
  std::string name = fresh(hint);
  info_[name] = ValueInfo{name, t.dtype(), t.shape()};
  g_.initializers[name] = Initializer{std::move(t), trainable};
  return name;
}

const AttributeProto* ImportContext::attr(const std::string& name) const {
  for (const AttributeProto& a : node_->attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

int64_t ImportContext::attr_int(const std::string& name, int64_t fallback) const {
  const AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (a->type() != AttributeProto::INT) fail("attribute '" + name + "' must be an int");
  return a->i();
}

double ImportContext::attr_float(const std::string& name, double fallback) const {
  const AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (a->type() != AttributeProto::FLOAT) fail("attribute '" + name + "' must be a float");
  return a->f();
}

std::string ImportContext::attr_string(const std::string& name, const std::string& fallback) const {
  const AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (a->type() != AttributeProto::STRING) fail("attribute '" + name + "' must be a string");
  return a->s();
}

std::vector<int64_t> ImportContext::attr_ints(const std::string& name,
                                              std::vector<int64_t> fallback) const {
  const AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (a->type() != AttributeProto::INTS) fail("attribute '" + name + "' must be a list of ints");
  return {a->ints().begin(), a->ints().end()};
}

std::vector<double> ImportContext::attr_floats(const std::string& name,
                                               std::vector<double> fallback) const {
  const AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (a->type() != AttributeProto::FLOATS)
    fail("attribute '" + name + "' must be a list of floats");
  return {a->floats().begin(), a->floats().end()};
}

void ImportContext::allow_attrs(std::initializer_list<const char*> names) const {
  for (const AttributeProto& a : node_->attribute()) {
    bool known = false;
    for (const char* n : names) known = known || a.name() == n;
    if (!known) unsupported("attribute '" + a.name() + "' is not supported");
  }
}

std::string ImportContext::in(int i) const {
  return i < node_->input_size() ? node_->input(i) : std::string();
}

std::string ImportContext::out(int i) const {
  return i < node_->output_size() ? node_->output(i) : std::string();
}

int ImportContext::num_outputs_used() const {
  int n = 0;
  for (const std::string& o : node_->output()) n += !o.empty();
  return n;
}

}  // namespace minnow::onnx
