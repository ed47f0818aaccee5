#include "passes/factorize.h"

#include <fnmatch.h>

#include <cmath>
#include <set>

#include "minnow/error.h"
#include "passes/graph_uses.h"
#include "passes/svd.h"

namespace minnow {
namespace {

// The weight of a node this pass can factorize, or null.
const Initializer* factorizable_weight(const Graph& g, const Node& n) {
  if (n.inputs.size() < 2 || n.outputs.size() != 1) return nullptr;
  auto it = g.initializers.find(n.inputs[1]);
  if (it == g.initializers.end()) return nullptr;
  const Tensor& w = it->second.value;
  if (w.dtype() != DType::kF32 && w.dtype() != DType::kF64) return nullptr;
  if (n.op == OpKind::kLinear) return w.rank() == 2 ? &it->second : nullptr;
  if (n.op == OpKind::kConv2d) {
    const bool one_by_one = w.rank() == 4 && w.dim(2) == 1 && w.dim(3) == 1;
    return one_by_one && n.attrs.get_int("group", 1) == 1 ? &it->second : nullptr;
  }
  return nullptr;
}

bool selected(const std::vector<std::string>& patterns, const std::string& name,
              std::vector<char>& pattern_used) {
  if (patterns.empty()) return true;
  bool any = false;
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (fnmatch(patterns[i].c_str(), name.c_str(), 0) == 0) {
      pattern_used[i] = 1;
      any = true;
    }
  }
  return any;
}

class Names {
 public:
  explicit Names(const Graph& g) {
    for (const auto& [name, init] : g.initializers) used_.insert(name);
    for (const Node& n : g.nodes) {
      used_.insert(n.name);
      used_.insert(n.inputs.begin(), n.inputs.end());
      used_.insert(n.outputs.begin(), n.outputs.end());
    }
    for (const ValueInfo& v : g.inputs) used_.insert(v.name);
    for (const ValueInfo& v : g.outputs) used_.insert(v.name);
  }
  // `base`, or `base.2`, `base.3`, ... : a name no node, value or initializer has.
  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int i = 2; used_.count(name); ++i) name = base + "." + std::to_string(i);
    used_.insert(name);
    return name;
  }

 private:
  std::set<std::string> used_;
};

std::vector<double> to_double(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::kF64) {
    const double* p = t.data<double>();
    out.assign(p, p + t.numel());
  } else {
    const float* p = t.f32();
    for (size_t i = 0; i < out.size(); ++i) out[i] = p[i];
  }
  return out;
}

Tensor from_double(DType dtype, const Shape& shape, const std::vector<double>& v) {
  Tensor t(dtype, shape);
  if (dtype == DType::kF64) {
    std::copy(v.begin(), v.end(), t.data<double>());
  } else {
    float* p = t.f32();
    for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<float>(v[i]);
  }
  return t;
}

int64_t choose_rank(const Svd& d, const FactorizeOptions& o, double* kept) {
  double total = 0;
  for (double s : d.s) total += s * s;
  int64_t r = 0;
  if (o.rank > 0) {
    r = std::min(o.rank, d.k);
  } else {
    double cum = 0;
    // The tolerance keeps energy 1.0 from demanding the numerically zero tail.
    while (r < d.k && cum < o.energy * total * (1 - 1e-12)) cum += d.s[r] * d.s[r], ++r;
    r = std::max<int64_t>(r, 1);
  }
  double cum = 0;
  for (int64_t i = 0; i < r; ++i) cum += d.s[i] * d.s[i];
  *kept = total > 0 ? cum / total : 1.0;
  return r;
}

Attrs attrs_without(const Attrs& a, const std::set<std::string>& drop) {
  Attrs out;
  for (const auto& [key, value] : a.all()) {
    if (!drop.count(key)) out.set(key, value);
  }
  return out;
}

}  // namespace

FactorizeResult factorize(Graph& graph, const FactorizeOptions& o) {
  if ((o.rank > 0) == (o.energy > 0)) {
    throw Error("factorize: give either a rank (> 0) or an energy fraction, not both or neither");
  }
  if (o.rank < 0) throw Error("factorize: rank must be > 0, got " + std::to_string(o.rank));
  if (o.energy < 0 || o.energy > 1) {
    throw Error("factorize: energy must be in (0, 1], got " + std::to_string(o.energy));
  }
  // Selection first, so that a bad pattern leaves the graph untouched.
  std::vector<char> pattern_used(o.layers.size(), 0), chosen(graph.nodes.size(), 0);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& n = graph.nodes[i];
    chosen[i] = factorizable_weight(graph, n) && selected(o.layers, n.name, pattern_used);
  }
  for (size_t i = 0; i < o.layers.size(); ++i) {
    if (!pattern_used[i]) {
      throw Error("factorize: layer pattern '" + o.layers[i] +
                  "' matches no Linear or 1x1 Conv2d node with a constant weight");
    }
  }
  FactorizeResult result;
  Names names(graph);
  std::vector<Node> nodes;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& n = graph.nodes[i];
    if (!chosen[i]) {
      nodes.push_back(std::move(n));
      continue;
    }
    const Initializer* w = factorizable_weight(graph, n);
    const Tensor& wt = w->value;
    const int64_t out = wt.dim(0), in = wt.dim(1);
    Svd d = svd(to_double(wt), out, in);
    double kept = 0;
    const int64_t r = choose_rank(d, o, &kept);
    if (r * (in + out) >= in * out) {
      result.skipped.push_back(n.name + ": rank " + std::to_string(r) + " of " +
                               std::to_string(out) + "x" + std::to_string(in) +
                               " would not reduce parameters");
      nodes.push_back(std::move(n));
      continue;
    }
    // W ~= (U_r S^1/2) (S^1/2 V_r^T).
    std::vector<double> wv(static_cast<size_t>(r * in)), wu(static_cast<size_t>(out * r));
    for (int64_t k = 0; k < r; ++k) {
      const double root = std::sqrt(d.s[k]);
      for (int64_t j = 0; j < in; ++j) wv[k * in + j] = root * d.vt[k * in + j];
      for (int64_t i = 0; i < out; ++i) wu[i * r + k] = d.u[i * d.k + k] * root;
    }
    const bool conv = n.op == OpKind::kConv2d;
    const Shape shape_v = conv ? Shape{r, in, 1, 1} : Shape{r, in};
    const Shape shape_u = conv ? Shape{out, r, 1, 1} : Shape{out, r};
    const std::string v_name = names.fresh(n.name + ".v"), u_name = names.fresh(n.name + ".u");
    const std::string v_weight = names.fresh(v_name + ".weight");
    const std::string u_weight = names.fresh(u_name + ".weight");
    const std::string mid = names.fresh(n.name + ".lowrank");
    const bool trainable = w->trainable;
    const DType dtype = wt.dtype();
    graph.initializers[v_weight] = Initializer{from_double(dtype, shape_v, wv), trainable};
    graph.initializers[u_weight] = Initializer{from_double(dtype, shape_u, wu), trainable};

    Node first{
        v_name, n.op, {n.inputs[0], v_weight}, {mid}, attrs_without(n.attrs, {"activation"})};
    Node second{u_name, n.op, n.inputs, n.outputs, n.attrs};
    second.inputs[0] = mid;
    second.inputs[1] = u_weight;
    if (conv) {
      second.attrs = attrs_without(n.attrs, {"strides", "pads", "dilations"});
    }
    result.factorized.push_back({n.name, in, out, r, kept, in * out, r * (in + out)});
    nodes.push_back(std::move(first));
    nodes.push_back(std::move(second));
  }
  graph.nodes = std::move(nodes);
  remove_unread_initializers(graph);
  return result;
}

}  // namespace minnow
