#include "passes/channels_last.h"

#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "core/op_groups.h"
#include "minnow/error.h"
#include "passes/fresh_names.h"

namespace minnow {
namespace {

// Which inputs of a channels-last-capable node carry the layout (output 0 always does).
std::vector<size_t> layout_inputs(const Node& n) {
  switch (n.op) {
    case OpKind::kConv2d:  // and its residual `sum`, when fused (passes/fuse_residual_add.h)
      if (n.inputs.size() > 3 && !n.inputs[3].empty()) return {0, 3};
      return {0};
    case OpKind::kQLinearConv:  // and its residual `sum` (passes/fuse_qlinear_residual.h)
      if (n.inputs.size() > 9 && !n.inputs[9].empty()) return {0, 9};
      return {0};
    case OpKind::kQLinearGlobalAvgPool:
    case OpKind::kGlobalAvgPool:
      return {0};
    case OpKind::kQLinearAdd:
      return {0, 3};
    case OpKind::kAdd:  // elementwise: any layout, when both inputs share it
      return {0, 1};
    case OpKind::kQLinearLookup:
      return {0};
    default:  // f32 activations, e.g. the ReLU after a residual Add
      if (is_elementwise_activation(n.op)) return {0};
      return {};
  }
}

// Ops that take the layout by attribute channels_last = 1; the others are elementwise.
bool has_layout_attribute(OpKind op) {
  return op == OpKind::kQLinearConv || op == OpKind::kQLinearGlobalAvgPool ||
         op == OpKind::kConv2d || op == OpKind::kGlobalAvgPool;
}

bool is_convolution(OpKind op) { return op == OpKind::kQLinearConv || op == OpKind::kConv2d; }

bool rank4(const std::map<std::string, ValueInfo>& info, const std::string& v) {
  auto it = info.find(v);
  return it != info.end() && it->second.shape.size() == 4;
}

// Bytes of one sample of `v` (the batch counts as 1): the unit of the cost comparison.
int64_t sample_bytes(const ValueInfo& v) {
  int64_t n = static_cast<int64_t>(dtype_size(v.dtype));
  for (size_t d = 1; d < v.shape.size(); ++d) n *= v.shape[d];
  return n;
}

bool capable(const Node& n, const std::map<std::string, ValueInfo>& info) {
  const std::vector<size_t> ports = layout_inputs(n);
  if (ports.empty() || n.attrs.get_int("channels_last", 0) != 0) return false;
  for (size_t p : ports) {
    if (p >= n.inputs.size() || n.inputs[p].empty() || !rank4(info, n.inputs[p])) return false;
  }
  // Float ops: f32 only (the NHWC kernels are f32), and an Add without broadcasting.
  if (!is_integer_op(n.op) && info.at(n.inputs[0]).dtype != DType::kF32) return false;
  if (n.op == OpKind::kAdd && info.at(n.inputs[0]).shape != info.at(n.inputs[1]).shape) {
    return false;
  }
  return n.outputs.size() == 1 && rank4(info, n.outputs[0]);
}

struct UnionFind {
  std::vector<size_t> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  size_t find(size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  }
  void join(size_t a, size_t b) { parent[find(a)] = find(b); }
};

class ChannelsLast {
 public:
  explicit ChannelsLast(Graph& g) : g_(g), names_(g), info_(g.infer_shapes()) {}

  ChannelsLastResult run() {
    const size_t count = g_.nodes.size();
    std::map<std::string, size_t> writer;
    std::map<std::string, std::vector<size_t>> readers;
    std::set<std::string> graph_outputs;
    for (const ValueInfo& v : g_.outputs) graph_outputs.insert(v.name);
    std::vector<char> is_capable(count, 0);
    for (size_t i = 0; i < count; ++i) {
      const Node& n = g_.nodes[i];
      is_capable[i] = capable(n, info_);
      for (const std::string& o : n.outputs) writer[o] = i;
      for (const std::string& v : n.inputs) {
        if (!v.empty()) readers[v].push_back(i);
      }
    }
    // Regions: capable nodes joined through the layout values they pass each other.
    UnionFind uf(count);
    for (size_t i = 0; i < count; ++i) {
      if (!is_capable[i]) continue;
      for (size_t p : layout_inputs(g_.nodes[i])) {
        auto w = writer.find(g_.nodes[i].inputs[p]);
        if (w != writer.end() && is_capable[w->second]) uf.join(i, w->second);
      }
    }
    // A value read in channels-last form by node i (a layout input of a capable node).
    auto reads_layout = [&](size_t i, const std::string& v) {
      if (!is_capable[i]) return false;
      for (size_t p : layout_inputs(g_.nodes[i])) {
        if (g_.nodes[i].inputs[p] == v) return true;
      }
      return false;
    };
    // Per region: the border values and the comparison of the two layouts' costs.
    struct Region {
      std::set<std::string> in, out;
      int64_t border_bytes = 0, reorder_bytes = 0;
      int nodes = 0;
    };
    std::map<size_t, Region> regions;
    for (size_t i = 0; i < count; ++i) {
      if (!is_capable[i]) continue;
      const Node& n = g_.nodes[i];
      Region& r = regions[uf.find(i)];
      ++r.nodes;
      for (size_t p : layout_inputs(n)) {
        const std::string& v = n.inputs[p];
        auto w = writer.find(v);
        if ((w == writer.end() || !is_capable[w->second]) && r.in.insert(v).second) {
          r.border_bytes += sample_bytes(info_.at(v));
        }
      }
      const std::string& y = n.outputs[0];
      bool leaves = graph_outputs.count(y) != 0;
      for (size_t k : readers[y]) leaves = leaves || !reads_layout(k, y);
      if (leaves && r.out.insert(y).second) r.border_bytes += sample_bytes(info_.at(y));
      if (is_convolution(n.op)) {
        // oneDNN reorders a plain NCHW tensor unless its image is 1x1 (then NCHW is NHWC); for
        // f32, minnow's own NCHW kernels are not as fast as oneDNN's NHWC ones either.
        for (const std::string* v : {&n.inputs[0], &y}) {
          const ValueInfo& vi = info_.at(*v);
          if (vi.shape[2] * vi.shape[3] > 1) r.reorder_bytes += sample_bytes(vi);
        }
      }
    }
    std::vector<char> convert(count, 0);
    std::set<std::string> into, out_of;
    ChannelsLastResult result;
    for (size_t i = 0; i < count; ++i) {
      if (!is_capable[i]) continue;
      const Region& r = regions.at(uf.find(i));
      if (r.border_bytes >= r.reorder_bytes) continue;
      convert[i] = 1;
      into.insert(r.in.begin(), r.in.end());
      out_of.insert(r.out.begin(), r.out.end());
    }
    for (const auto& [root, r] : regions) {
      if (r.border_bytes < r.reorder_bytes) {
        ++result.regions;
        result.nodes += r.nodes;
      }
    }
    if (result.regions == 0) return result;

    // Rewrite in order: a value entering a region is transposed just before its first
    // channels-last reader, one leaving it just after its writer, so the order stays
    // topological.
    std::map<std::string, std::string> nhwc_name;  // value -> its channels-last form's name
    std::vector<Node> nodes;
    nodes.reserve(count + into.size() + out_of.size());
    for (size_t i = 0; i < count; ++i) {
      Node n = std::move(g_.nodes[i]);
      if (!convert[i]) {
        nodes.push_back(std::move(n));
        continue;
      }
      for (size_t p : layout_inputs(n)) {
        std::string& v = n.inputs[p];
        if (into.count(v) && !nhwc_name.count(v)) {
          const std::string t = names_.value(v + "_nhwc");
          nodes.push_back(transpose(v, t, {0, 2, 3, 1}));
          ++result.transposes;
          nhwc_name[v] = t;
        }
        auto it = nhwc_name.find(v);
        if (it != nhwc_name.end()) v = it->second;
      }
      if (has_layout_attribute(n.op)) n.attrs.set("channels_last", int64_t{1});
      const std::string y = n.outputs[0];
      if (!out_of.count(y)) {
        nodes.push_back(std::move(n));
        continue;
      }
      const std::string t = names_.value(y + "_nhwc");
      nhwc_name[y] = t;
      n.outputs[0] = t;
      nodes.push_back(std::move(n));
      nodes.push_back(transpose(t, y, {0, 3, 1, 2}));
      ++result.transposes;
    }
    g_.nodes = std::move(nodes);
    return result;
  }

 private:
  Node transpose(const std::string& from, const std::string& to, std::vector<int64_t> perm) {
    Node t;
    t.name = names_.node(to + (perm[1] == 2 ? ".to_nhwc" : ".to_nchw"));
    t.op = OpKind::kTranspose;
    t.inputs = {from};
    t.outputs = {to};
    t.attrs.set("perm", std::move(perm));
    return t;
  }

  Graph& g_;
  FreshNames names_;
  const std::map<std::string, ValueInfo> info_;
};

}  // namespace

ChannelsLastResult channels_last(Graph& graph) {
  const ChannelsLastResult r = ChannelsLast(graph).run();
  if (r.regions > 0) graph.validate();
  return r;
}

}  // namespace minnow
